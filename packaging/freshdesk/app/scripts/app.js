/*
 * Regulars in Freshdesk's ticket sidebar. One request-template call per ticket view:
 * Freshworks allows an app 50 request-method calls a minute per account, so the page asks
 * the service once (getSidebar), again only when the agent comes back to the app after a
 * minute, and retries once when the service says it is still fetching (503, Retry-After).
 * The service answers with the banner and the suggestions card as server-rendered,
 * autoescaped HTML, with the account review when the customer's segment calls for one.
 * Applying, dismissing or escalating a suggestion is one more call (postAction), checking a
 * review item one more (postReviewCheck), each answered with its card around the result.
 * The service stores nothing while showing: when the shop or Freshdesk gave something it has
 * not stored yet, the banner says so (data-sync="due") and the page makes one more call
 * (postSync), answered with the sidebar built again from what is now stored.
 */
(function () {
  'use strict';

  var root = document.getElementById('regulars');
  var REUSE_FOR_MS = 60 * 1000;
  var MAX_RETRIES = 1;
  var MAX_RETRY_WAIT_S = 10;
  var loadedAt = 0;
  var busy = false;
  var currentView = null; // the ids of the ticket view the page shows, for actions on it

  // The page's own words, in the agent's language (scripts/messages.js, built from the
  // service's catalogs): the browser's until Freshdesk says the agent's (loggedInUser).
  var MESSAGES = window.REGULARS_MESSAGES || {};
  var words = wordsFor(navigator.language);

  function wordsFor(tag) {
    var language = String(tag || '').toLowerCase().split(/[-_]/)[0];
    return MESSAGES[language] || MESSAGES.en || {};
  }

  function say(key, english) {
    return words[key] || english;
  }

  var loading = root && root.querySelector('[data-message="loading"]');
  if (loading) loading.textContent = say('loading', loading.textContent);

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
        // The agent's language in Freshdesk: the service answers in it (docs/i18n.md).
        locale: String((answers[2].loggedInUser.contact || {}).language || ''),
        domain: answers[3].domainName
      };
    }).then(function (body) {
      if (body.locale) words = wordsFor(body.locale);
      return body;
    });
  }

  function load(client, body, attempt) {
    return client.request.invokeTemplate('getSidebar', { body: JSON.stringify(body) }).then(
      function (answer) {
        root.innerHTML = answer.response;
        root.setAttribute('aria-busy', 'false');
        loadedAt = Date.now();
        currentView = body;
        fit(client);
        return syncIfDue(client, body);
      },
      function (failure) {
        // An error answer from the service carries its explanation as an HTML partial; one
        // from Freshworks' proxy itself (its rate limit, its timeout) does not.
        var fromService = failure && typeof failure.response === 'string' &&
          failure.errorSource !== 'PLATFORM' && failure.response.trim().charAt(0) === '<';
        if (!fromService) {
          showMessage(failure && failure.status === 429
            ? say('busy', 'Regulars has been opened very often in this helpdesk this minute. Reopen it in a minute.')
            : say('unreachable', 'Regulars could not reach its service. Reopen the app in a moment.'));
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

  // Only after getSidebar, never after postSync's own answer: one call per view at most.
  function syncIfDue(client, body) {
    if (!root.querySelector('[data-sync="due"]')) return undefined;
    return client.request.invokeTemplate('postSync', { body: JSON.stringify(body) }).then(
      function (answer) {
        root.innerHTML = answer.response;
        fit(client);
      },
      function () {
        return undefined; // the sidebar shown stays: it is what is stored
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
        showMessage(say('unreadable', 'Regulars could not read this ticket from Freshdesk. Reopen the app.'));
      })
      .then(function () { busy = false; });
  }

  // The suggestions card's forms: the card's fields go with the view's ids, and the answer
  // (the card around what was recorded, a refusal, or the form with its errors) replaces it.
  function showCard(client, html, holderId) {
    var holder = document.getElementById(holderId);
    if (!holder) return;
    holder.innerHTML = html;
    var target = holder.querySelector('[aria-invalid="true"]') || holder.querySelector('[data-result]');
    if (target) target.focus();
    fit(client);
  }

  // A form's buttons, those inside it and those joined to it by their form attribute.
  function buttons(form, disabled) {
    Array.prototype.forEach.call(form.elements, function (element) {
      if (element.tagName === 'BUTTON') element.disabled = disabled;
    });
  }

  function notSent(client, form, text) {
    form.removeAttribute('data-busy');
    buttons(form, false);
    var note = document.createElement('p');
    note.className = 'rg-error';
    note.setAttribute('role', 'alert');
    note.textContent = text;
    // An offer's apply form is hidden (its controls join it by their form attribute).
    (form.closest('li') || form).appendChild(note);
    fit(client);
  }

  function act(client, form, submitter) {
    var action = {};
    new FormData(form).forEach(function (value, name) { action[name] = String(value); });
    if (submitter && submitter.name) action[submitter.name] = submitter.value;
    form.setAttribute('data-busy', 'true');
    buttons(form, true);
    var body = Object.assign({}, currentView, { action: action });
    // The review card's checks go to their own endpoint; the suggestions' actions to theirs.
    var holderId = form.getAttribute('data-rg-holder') || 'rg-suggestions';
    var request = holderId === 'rg-review'
      ? client.request.invokeTemplate('postReviewCheck', { body: JSON.stringify(body) })
      : client.request.invokeTemplate('postAction', { body: JSON.stringify(body) });
    request.then(
      function (answer) { showCard(client, answer.response, holderId); },
      function (failure) {
        var fromService = failure && typeof failure.response === 'string' &&
          failure.errorSource !== 'PLATFORM' && failure.response.trim().charAt(0) === '<';
        if (fromService && failure.status !== 503) {
          showCard(client, failure.response, holderId);
        } else {
          notSent(client, form, say('not_sent', 'Not sent: Regulars could not reach its service. Try again.'));
        }
      }
    );
  }

  function listenForActions(client) {
    root.addEventListener('submit', function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-rg-action')) return;
      event.preventDefault();
      // A second click while the first is on its way (the service would not record it twice).
      if (form.getAttribute('data-busy') === 'true' || !currentView) return;
      act(client, form, event.submitter);
    });
    // As in the Zendesk page (static/js/sidebar-amount.js): an amount above the approval
    // threshold turns Apply into "Ask a supervisor: $N", and back, in the words and money
    // format the service put on the button for the agent's language.
    root.addEventListener('input', function (event) {
      var input = event.target;
      var above = input.getAttribute('data-approval-above');
      var go = above && document.getElementById(input.getAttribute('data-go'));
      var value = parseFloat(input.value);
      if (!go || isNaN(value)) return;
      var asks = value > parseFloat(above);
      go.value = asks ? 'escalate' : 'apply';
      var cents = value % 1 ? 2 : 0;
      go.textContent = asks ? go.getAttribute('data-ask').replace('{amount}', value.toLocaleString(
        go.getAttribute('data-locale'), { style: 'currency', currency: go.getAttribute('data-currency'),
          minimumFractionDigits: cents, maximumFractionDigits: cents })) : go.getAttribute('data-apply');
    });
  }

  // Gestures given in the shop (issue 18), as in the Zendesk page: while one is on its way its
  // list (data-poll) is asked for again every few seconds and replaced whole (the service
  // renders it with autoescaping); Copy puts a code on the clipboard.
  var GESTURE_POLL_MS = 2500;
  var gesturePolling = false;
  function pollGestures(client) {
    var list = root.querySelector('[data-rg-gestures][data-poll]');
    if (!list || gesturePolling || !currentView) return;
    gesturePolling = true;
    client.request.invokeTemplate('postGestures', { body: JSON.stringify(currentView) })
      .then(function (answer) {
        if (list.isConnected) {
          list.outerHTML = answer.response;
          fit(client);
        }
      }, function () {})
      .then(function () { gesturePolling = false; });
  }
  root.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('[data-rg-copy]');
    if (button && navigator.clipboard) {
      navigator.clipboard.writeText(button.getAttribute('data-rg-copy')).then(function () {
        button.textContent = button.getAttribute('data-copied') || say('copied', 'Copied');
      });
    }
  });

  if (!window.app || typeof window.app.initialized !== 'function') {
    showMessage(say('outside', 'Regulars runs inside Freshdesk: open it from a ticket.'));
    return;
  }
  window.app.initialized().then(function (client) {
    listenForActions(client);
    window.setInterval(function () { pollGestures(client); }, GESTURE_POLL_MS);
    client.events.on('app.activated', function () { refresh(client); });
  });
})();
