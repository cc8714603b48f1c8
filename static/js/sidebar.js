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

  var MAX_RETRIES = 3;

  function load(ticketId, requesterId, attempt) {
    root.setAttribute('aria-busy', 'true');
    var url = bannerUrl + '?ticket_id=' + encodeURIComponent(ticketId);
    if (requesterId) {
      // Only a hint that lets the service fetch history in parallel; the ticket decides.
      url += '&requester_id=' + encodeURIComponent(requesterId);
    }
    return fetch(url, {
      headers: { Authorization: 'Bearer ' + sessionToken, Accept: 'text/html' },
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (response) {
      var retryAfter = parseInt(response.headers.get('Retry-After') || '', 10);
      return response.text().then(function (html) {
        // The service renders these partials with autoescaping; nothing from the page goes in.
        root.innerHTML = html;
        resize();
        if (response.status === 503 && retryAfter > 0 && attempt < MAX_RETRIES) {
          // The helpdesk was slow and nothing was cached yet; the fetch goes on server-side.
          return new Promise(function (resolve) {
            window.setTimeout(resolve, retryAfter * 1000);
          }).then(function () {
            return load(ticketId, requesterId, attempt + 1);
          });
        }
        root.setAttribute('aria-busy', 'false');
        return undefined;
      });
    }).catch(function () {
      showMessage('Regulars could not reach its service. Check your connection and reopen the app.');
      resize();
    });
  }

  function loadCurrentTicket() {
    return Promise.all([client.context(), client.get('ticket.requester.id')]).then(
      function (answers) {
        var context = answers[0];
        var requester = answers[1] || {};
        if (!context || !context.ticketId) {
          showMessage('Open a ticket to see who the customer is.');
          resize();
          return undefined;
        }
        return load(context.ticketId, requester['ticket.requester.id'], 0);
      }
    );
  }

  loadCurrentTicket();
  client.on('ticket.requester.id.changed', loadCurrentTicket);
})();
