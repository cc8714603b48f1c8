/* Regulars sidebar, the banner's write: loaded by static/js/sidebar.js when a banner says its
   profile is due to be stored (data-sync="due"), not on every view. */
(function () {
  'use strict';

  // What sidebar.js lends: the app's root, its bearer-session request, the agent's language,
  // how it shows a view.
  var sidebar = window.RegularsSidebar;
  var syncUrl = document.body.getAttribute('data-sync-url');

  // The view's GET stores nothing: when the shop or the helpdesk gave something not stored
  // yet, the banner says so and the page asks for the write, then shows the view it answers
  // (the banner and the cards, built from what is now stored) in place of the first.
  sidebar.sync = function (ticketId, requesterId) {
    var banner = sidebar.root.querySelector('[data-sync="due"]');
    if (!banner || !syncUrl) {
      return Promise.resolve();
    }
    var form = new URLSearchParams();
    form.set('ticket_id', ticketId);
    if (requesterId) {
      form.set('requester_id', requesterId);
    }
    return sidebar.send(sidebar.withLocale(syncUrl), form).then(function (response) {
      return response.text().then(function (html) {
        if (!response.ok) {
          return; // the banner shown stays: it is what is stored
        }
        return sidebar.showView(html); // built from what is now stored, the cards too
      });
    }).catch(function () {
      return undefined; // the banner shown stays; the next view asks again
    });
  };
})();
