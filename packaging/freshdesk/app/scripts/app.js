/*
 * Regulars in Freshdesk's ticket sidebar. One request-template call per ticket view:
 * Freshworks allows an app 50 request-method calls a minute per account, so the page asks
 * the service once (getSidebar), again only when the agent comes back to the app after a
 * minute, and retries once when the service says it is still fetching (503, Retry-After).
 * The service answers with the banner as server-rendered, autoescaped HTML.
 */
(function () {
  'use strict';

  var root = document.getElementById('regulars');
  var REUSE_FOR_MS = 60 * 1000;
  var MAX_RETRIES = 1;
  var MAX_RETRY_WAIT_S = 10;
  var loadedAt = 0;
  var busy = false;

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

  function fit(client) {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (!client.instance || !client.instance.resize) return;
    Promise.resolve(client.instance.resize({ height: height + 'px' })).catch(function () {
      return undefined; // the frame keeps its height: the banner scrolls instead
    });
  }

  function header(headers, name) {
    if (!headers) return '';
    return String(headers[name] || headers[name.toLowerCase()] || '');
  }

  // What the page knows of this view; the service checks all of it with Freshdesk.
  function viewBody(client) {
    return Promise.all([
      client.data.get('ticket'),
      // The requester is only a hint that lets the service fetch their history early.
      client.data.get('contact').catch(function () { return { contact: {} }; }),
      client.data.get('loggedInUser'),
      client.data.get('domainName')
    ]).then(function (answers) {
      var ticket = answers[0].ticket || {};
      var contact = answers[1].contact || {};
      return {
        ticket_id: String(ticket.display_id || ticket.id),
        requester_id: String(contact.id || ticket.requester_id || ''),
        agent_id: String(answers[2].loggedInUser.id),
        domain: answers[3].domainName
      };
    });
  }

  function load(client, body, attempt) {
    return client.request.invokeTemplate('getSidebar', { body: JSON.stringify(body) }).then(
      function (answer) {
        root.innerHTML = answer.response;
        root.setAttribute('aria-busy', 'false');
        loadedAt = Date.now();
        fit(client);
      },
      function (failure) {
        // An error answer from the service carries its explanation as an HTML partial; one
        // from Freshworks' proxy itself (its rate limit, its timeout) does not.
        var fromService = failure && typeof failure.response === 'string' &&
          failure.errorSource !== 'PLATFORM' && failure.response.trim().charAt(0) === '<';
        if (!fromService) {
          showMessage(failure && failure.status === 429
            ? 'Regulars has been opened very often in this helpdesk this minute. Reopen it in a minute.'
            : 'Regulars could not reach its service. Reopen the app in a moment.');
          fit(client);
          return undefined;
        }
        root.innerHTML = failure.response;
        fit(client);
        var wait = parseInt(header(failure.headers, 'Retry-After'), 10);
        if (failure.status === 503 && wait > 0 && attempt < MAX_RETRIES) {
          // The helpdesk was slow and nothing was cached yet; the fetch goes on server-side.
          return new Promise(function (resolve) {
            window.setTimeout(resolve, Math.min(wait, MAX_RETRY_WAIT_S) * 1000);
          }).then(function () {
            return load(client, body, attempt + 1);
          });
        }
        root.setAttribute('aria-busy', 'false');
        return undefined;
      }
    );
  }

  function refresh(client) {
    if (busy || Date.now() - loadedAt < REUSE_FOR_MS) return;
    busy = true;
    root.setAttribute('aria-busy', 'true');
    viewBody(client)
      .then(function (body) { return load(client, body, 0); })
      .catch(function () {
        showMessage('Regulars could not read this ticket from Freshdesk. Reopen the app.');
      })
      .then(function () { busy = false; });
  }

  if (!window.app || typeof window.app.initialized !== 'function') {
    showMessage('Regulars runs inside Freshdesk: open it from a ticket.');
    return;
  }
  window.app.initialized().then(function (client) {
    client.events.on('app.activated', function () { refresh(client); });
  });
})();
