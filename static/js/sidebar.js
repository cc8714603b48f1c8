/* Regulars sidebar: start the ZAF client, load the cards for the open ticket, fit the frame. */
(function () {
  'use strict';

  var body = document.body;
  var root = document.getElementById('regulars');
  // The page's settings (data-*) and its words in the agent's language (data-text-*): no
  // catalog ships in this file.
  function data(name) {
    return body.getAttribute('data-' + name);
  }
  function text(name) {
    return data('text-' + name);
  }
  var sessionToken = data('session-token');
  var viewUrl = data('view-url');

  // Every request goes with the bearer session, no cookie, and past any HTTP cache; a body
  // makes it a POST.
  function send(url, form) {
    return fetch(url, {
      method: form ? 'POST' : 'GET',
      headers: { Authorization: 'Bearer ' + sessionToken, Accept: 'text/html' },
      body: form,
      credentials: 'omit',
      cache: 'no-store'
    });
  }

  // A card's address: the ticket, the requester (only a hint that lets the service fetch
  // history in parallel; the ticket decides), then the page's fields and the locale.
  function cardUrl(url, ticketId, requesterId) {
    return url + '?ticket_id=' + encodeURIComponent(ticketId) +
      (requesterId ? '&requester_id=' + encodeURIComponent(requesterId) : '') + pageFields;
  }

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
    showMessage(text('outside'));
    return;
  }

  function resize() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    client.invoke('resize', { width: '100%', height: height + 'px' });
  }

  // For the scripts some parts load (static/js/sidebar-gestures.js, -actions.js, -sync.js).
  var sidebar = window.RegularsSidebar = {
    root: root,
    send: send,
    resize: resize,
    showCard: showCard,
    showView: showView,
    withLocale: withLocale,
    notSent: notSent,
    fields: function () {
      return pageFields;
    }
  };

  var MAX_RETRIES = 3;

  function load(ticketId, requesterId, attempt) {
    root.setAttribute('aria-busy', 'true');
    return send(cardUrl(viewUrl, ticketId, requesterId)).then(function (response) {
      var retryAfter = parseInt(response.headers.get('Retry-After') || '', 10);
      return response.text().then(showView).then(function () {
        if (response.status === 503 && retryAfter > 0 && attempt < MAX_RETRIES) {
          // The helpdesk was slow and nothing was cached yet; the fetch goes on server-side.
          return new Promise(function (resolve) {
            window.setTimeout(resolve, retryAfter * 1000);
          }).then(function () {
            return load(ticketId, requesterId, attempt + 1);
          });
        }
        root.setAttribute('aria-busy', 'false');
        // A banner whose profile is due to be stored (data-sync="due") needs
        // static/js/sidebar-sync.js, which stores it and shows the view the write answers.
        return response.ok && needs(root).then(function () {
          return sidebar.sync && sidebar.sync(ticketId, requesterId);
        });
      });
    }).catch(function () {
      showMessage(text('unreachable'));
      resize();
    });
  }

  // The view's answer: the banner (or why not), then each card in its holder, shown once what
  // it needs has come. Rendered by the service with autoescaping; nothing from the page goes in.
  function showView(html) {
    var view = document.createElement('template');
    view.innerHTML = html;
    var cards = Array.prototype.slice.call(view.content.querySelectorAll('.rg-suggestions-holder'));
    cards.forEach(function (holder) {
      holder.remove();
    });
    root.replaceChildren(view.content);
    resize();
    return Promise.all(cards.map(function (holder) {
      return showCard(holder.innerHTML, false, holder.id);
    }));
  }

  // A card's holder after the banner, made when the view's answer brings that card.
  function suggestionsHolder(id) {
    id = id || 'rg-suggestions';
    var holder = document.getElementById(id);
    if (!holder) {
      holder = document.createElement('div');
      holder.id = id;
      holder.className = 'rg-suggestions-holder';
      holder.setAttribute('aria-live', 'polite');
      root.appendChild(holder);
    }
    return holder;
  }

  // What only some parts use (the account review's styles, those of what shows after a click or
  // on some cards, the amount field's and the gestures' scripts) comes once per page, by the
  // name the page gives it (data-asset-*, the content's hash in it), when a part that declares
  // it (data-needs) first shows: a card waits for it, so it shows styled and working.
  var assets = {};
  function asset(name) {
    var url = data('asset-' + name);
    if (!assets[name] && url) {
      var css = name.slice(-4) === '-css';
      var element = document.createElement(css ? 'link' : 'script');
      assets[name] = new Promise(function (done) {
        element.onload = element.onerror = done;
      });
      if (css) {
        element.rel = 'stylesheet';
        element.href = url;
      } else {
        element.src = url;
      }
      document.head.appendChild(element);
    }
    return assets[name];
  }

  // What the parts in `scope` that show need; a closed <details> declares what its contents
  // need, which come when it opens (`opening`), as do its contents' own.
  function needs(scope, opening) {
    return Promise.all(Array.prototype.map.call(scope.querySelectorAll('[data-needs]'), function (part) {
      var closed = part.closest('details:not([open])');
      return closed && closed !== opening ? 0 : Promise.all(part.getAttribute('data-needs').split(' ').map(asset));
    }));
  }

  // A closed <details> whose contents need a file opens when it has come (a click, or Enter or
  // Space on its summary).
  root.addEventListener('click', function (event) {
    var details = event.target.closest('summary');
    details = details && details.parentNode;
    if (details && !details.open && details.hasAttribute('data-needs')) {
      event.preventDefault();
      needs(details.parentNode, details).then(function () {
        details.open = true;
      });
    }
  });

  function showCard(html, focus, id) {
    var holder = suggestionsHolder(id);
    // Rendered by the service with autoescaping; nothing from the page goes in.
    var card = document.createElement('template');
    card.innerHTML = html;
    return needs(card.content).then(function () {
      holder.replaceChildren(card.content);
      if (focus) {
        var target = holder.querySelector('[aria-invalid="true"]') || holder.querySelector('[data-result]');
        if (target) {
          target.focus();
        }
      }
      resize();
    });
  }

  function failure(name) {
    return '<p class="rg-error" role="alert">' + text(name) + '</p>';
  }

  // Under the form, or its offer, when the service was not reached.
  function notSent(form) {
    (form.closest('li') || form).insertAdjacentHTML('beforeend', failure('not-sent'));
    resize();
  }

  // Apply, dismiss, escalate and review checks: static/js/sidebar-actions.js sends them, which
  // comes with the first one.
  root.addEventListener('submit', function (event) {
    var form = event.target;
    var submitter = event.submitter;
    if (form.hasAttribute('data-rg-action')) {
      event.preventDefault();
      asset('actions-js').then(function () {
        return sidebar.submit ? sidebar.submit(form, submitter) : notSent(form);
      });
    }
  });

  // The ticket's fields as the page has them: the service shows the cards from them without
  // reading the ticket from the helpdesk's API (it reads it itself before recording anything).
  var FIELDS = { subject: 'ticket.subject', status: 'ticket.status', type: 'ticket.type',
    priority: 'ticket.priority', tags: 'ticket.tags', channel: 'ticket.via',
    description: 'ticket.description' };
  // Of the description only its start goes (where an order is named), to keep the URL short.
  var DESCRIPTION_CHARS = 300;
  var pageFields = '';
  var locale = '';

  // A posted form's answer is a card too: in the agent's language, as the fetched ones.
  function withLocale(url) {
    return locale ? url + (url.indexOf('?') < 0 ? '?' : '&') + 'locale=' + locale : url;
  }

  function fieldsQuery(answer) {
    return Object.keys(FIELDS).map(function (name) {
      var value = answer[FIELDS[name]];
      if (Array.isArray(value)) {
        value = value.join(' ');
      } else if (value && typeof value === 'object') {
        value = value.channel;
      } else if (name === 'description' && typeof value === 'string') {
        value = value.slice(0, DESCRIPTION_CHARS);
      }
      return value === undefined || value === null || typeof value === 'object' ? ''
        : '&' + name + '=' + encodeURIComponent(String(value));
    }).join('');
  }

  function loadCurrentTicket() {
    var paths = ['ticket.requester.id', 'currentUser.locale'].concat(Object.keys(FIELDS).map(function (name) {
      return FIELDS[name];
    }));
    return Promise.all([client.context(), client.get(paths)]).then(
      function (answers) {
        var context = answers[0];
        var requester = answers[1] || {};
        // The agent's language (ZAF currentUser.locale) goes with every card request.
        locale = encodeURIComponent(requester['currentUser.locale'] || '');
        pageFields = fieldsQuery(requester) + (locale ? '&locale=' + locale : '');
        if (!context || !context.ticketId) {
          showMessage(text('no-ticket'));
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
