/* Regulars sidebar, the cards' forms sent (apply, dismiss, escalate, undo, review checks):
   loaded by static/js/sidebar.js when the agent sends the first one, not on every view. */
(function () {
  'use strict';

  // What sidebar.js lends: its bearer-session request, how it shows a card, its note.
  var sidebar = window.RegularsSidebar;

  // A form's buttons, those inside it and those joined to it by their form attribute.
  function buttons(form, disabled) {
    Array.prototype.forEach.call(form.elements, function (element) {
      if (element.tagName === 'BUTTON') {
        element.disabled = disabled;
      }
    });
  }

  // Each form goes with the bearer session; the answer is its card (data-rg-holder names which).
  sidebar.submit = function (form, submitter) {
    if (form.getAttribute('data-busy') === 'true') {
      return; // a second click while the first is on its way (the service would not record it twice)
    }
    var fields = new FormData(form);
    if (submitter && submitter.name) {
      fields.set(submitter.name, submitter.value);
    }
    form.setAttribute('data-busy', 'true');
    buttons(form, true);
    sidebar.send(sidebar.withLocale(form.action), fields).then(function (response) {
      return response.text().then(function (html) {
        return sidebar.showCard(html, true, form.getAttribute('data-rg-holder'));
      });
    }).catch(function () {
      form.removeAttribute('data-busy');
      buttons(form, false);
      sidebar.notSent(form);
    });
  };
})();
