/* Regulars sidebar: start the ZAF client, load the cards for the open ticket, fit the frame. */
(function () {
  'use strict';

  var body = document.body;
  var root = document.getElementById('regulars');
  var sessionToken = body.getAttribute('data-session-token');
  var bannerUrl = body.getAttribute('data-banner-url');

  function showMessage(text) {
    var card = document.createElement('section');
    card.className = 'rg-card rg-problem';
    card.setAttribute('role', 'alert');
    var p = document.createElement('p');
    p.textContent = text;
    card.appendChild(p);
    root.replaceChildren(card);
    root.setAttribute('aria-busy', 'false');
  }

  var client = window.ZAFClient ? window.ZAFClient.init() : false;
  if (!client) {
    showMessage('Regulars runs inside the helpdesk: open it from a ticket.');
    return;
  }

  function resize() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    client.invoke('resize', { width: '100%', height: height + 'px' });
  }

  function load(ticketId) {
    root.setAttribute('aria-busy', 'true');
    var url = bannerUrl + '?ticket_id=' + encodeURIComponent(ticketId);
    return fetch(url, {
      headers: { Authorization: 'Bearer ' + sessionToken, Accept: 'text/html' },
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (response) {
      return response.text();
    }).then(function (html) {
      // The service renders these partials with autoescaping; nothing from the page goes in.
      root.innerHTML = html;
      root.setAttribute('aria-busy', 'false');
      resize();
    }).catch(function () {
      showMessage('Regulars could not reach its service. Check your connection and reopen the app.');
      resize();
    });
  }

  function loadCurrentTicket() {
    return client.context().then(function (context) {
      if (!context || !context.ticketId) {
        showMessage('Open a ticket to see who the customer is.');
        resize();
        return undefined;
      }
      return load(context.ticketId);
    });
  }

  loadCurrentTicket();
  client.on('ticket.requester.id.changed', loadCurrentTicket);
})();
