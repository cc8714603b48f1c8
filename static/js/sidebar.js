/* Regulars sidebar: start the ZAF client, load the cards for the open ticket, fit the frame. */
(function () {
  'use strict';

  var body = document.body;
  var root = document.getElementById('regulars');
  var sessionToken = body.getAttribute('data-session-token');
  var bannerUrl = body.getAttribute('data-banner-url');
  var suggestionsUrl = body.getAttribute('data-suggestions-url');

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
        if (response.ok && suggestionsUrl) {
          return loadSuggestions(ticketId, requesterId);
        }
        return undefined;
      });
    }).catch(function () {
      showMessage('Regulars could not reach its service. Check your connection and reopen the app.');
      resize();
    });
  }

  // The suggestions card, loaded after the banner (the helpdesk's answers are cached by then).
  function suggestionsHolder() {
    var holder = document.getElementById('rg-suggestions');
    if (!holder) {
      holder = document.createElement('div');
      holder.id = 'rg-suggestions';
      holder.className = 'rg-suggestions-holder';
      holder.setAttribute('aria-live', 'polite');
      root.appendChild(holder);
    }
    return holder;
  }

  function showCard(html, focus) {
    var holder = suggestionsHolder();
    // Rendered by the service with autoescaping; nothing from the page goes in.
    holder.innerHTML = html;
    if (focus) {
      var target = holder.querySelector('[aria-invalid="true"]') || holder.querySelector('[data-result]');
      if (target) {
        target.focus();
      }
    }
    resize();
  }

  function loadSuggestions(ticketId, requesterId) {
    var url = suggestionsUrl + '?ticket_id=' + encodeURIComponent(ticketId);
    if (requesterId) {
      url += '&requester_id=' + encodeURIComponent(requesterId);
    }
    return fetch(url, {
      headers: { Authorization: 'Bearer ' + sessionToken, Accept: 'text/html' },
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (response) {
      return response.text().then(function (html) {
        showCard(html, false);
      });
    }).catch(function () {
      showCard('<section class="rg-card rg-problem" role="alert"><p>Suggestions could not be loaded.</p></section>', false);
    });
  }

  // Apply, dismiss and escalate: each form goes with the bearer session; the answer is the card.
  root.addEventListener('submit', function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-rg-action')) {
      return;
    }
    event.preventDefault();
    if (form.getAttribute('data-busy') === 'true') {
      return; // a second click while the first is on its way (the service would not record it twice)
    }
    var data = new FormData(form);
    var submitter = event.submitter;
    if (submitter && submitter.name) {
      data.set(submitter.name, submitter.value);
    }
    form.setAttribute('data-busy', 'true');
    Array.prototype.forEach.call(form.querySelectorAll('button'), function (button) {
      button.disabled = true;
    });
    fetch(form.action, {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + sessionToken, Accept: 'text/html' },
      body: data,
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (response) {
      return response.text().then(function (html) {
        showCard(html, true);
      });
    }).catch(function () {
      form.removeAttribute('data-busy');
      Array.prototype.forEach.call(form.querySelectorAll('button'), function (button) {
        button.disabled = false;
      });
      var note = document.createElement('p');
      note.className = 'rg-error';
      note.setAttribute('role', 'alert');
      note.textContent = 'Not sent: Regulars could not reach its service. Try again.';
      form.appendChild(note);
      resize();
    });
  });

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
