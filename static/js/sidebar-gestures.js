/* Regulars sidebar, gestures given in the shop (issue 18): loaded by static/js/sidebar.js when
   a card shows one on its way or a code to copy, not on every view. */
(function () {
  'use strict';

  // What sidebar.js lends: the app's root, its bearer-session request, the page's fields.
  var sidebar = window.RegularsSidebar;
  var root = sidebar.root;

  // While a gesture is on its way, its list (data-poll) is fetched again every few seconds
  // and replaced whole.
  var GESTURE_POLL_MS = 2500;
  var polling = false;
  window.setInterval(function () {
    var list = root.querySelector('[data-rg-gestures][data-poll]');
    if (!list || polling) {
      return;
    }
    polling = true;
    sidebar.send(list.getAttribute('data-poll') + sidebar.fields()).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      // Rendered by the service with autoescaping, as every card.
      if (html !== null && list.isConnected) {
        list.outerHTML = html;
        sidebar.resize();
      }
    }).catch(function () {}).then(function () {
      polling = false;
    });
  }, GESTURE_POLL_MS);

  // Copy puts a code on the clipboard.
  root.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('[data-rg-copy]');
    if (button && navigator.clipboard) {
      navigator.clipboard.writeText(button.getAttribute('data-rg-copy')).then(function () {
        button.textContent = button.getAttribute('data-copied');
      });
    }
  });
})();
