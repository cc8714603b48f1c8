/* Regulars sidebar, the banner's write: loaded by static/js/sidebar.js when a banner says its
   profile is due to be stored (data-sync="due"), not on every view. */
(function () {
  'use strict';

  // What sidebar.js lends: the app's root, its bearer-session request, the agent's language.
  var sidebar = window.RegularsSidebar;
  var syncUrl = document.body.getAttribute('data-sync-url');

  // The banner's GET stores nothing: when the shop or the helpdesk gave something not stored
  // yet, the banner says so and the page asks for the write, then shows the banner it answers
  // (built from what is now stored). Before the cards, which read the same stored profile.
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
        // Rendered by the service with autoescaping; nothing from the page goes in.
        var fresh = document.createElement('template');
        fresh.innerHTML = html;
        banner.replaceWith(fresh.content);
        sidebar.resize();
      });
    }).catch(function () {
      return undefined; // the banner shown stays; the next view asks again
    });
  };
})();
