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
  var bannerUrl = data('banner-url');
  var syncUrl = data('sync-url');
  var suggestionsUrl = data('suggestions-url');
  var reviewUrl = data('review-url');
  var ordersUrl = data('orders-url');

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

  // For the scripts some cards load (static/js/sidebar-gestures.js).
  window.RegularsSidebar = {
    root: root,
    send: send,
    resize: resize,
    fields: function () {
      return pageFields;
    }
  };

  var MAX_RETRIES = 3;

  function load(ticketId, requesterId, attempt) {
    root.setAttribute('aria-busy', 'true');
    return send(cardUrl(bannerUrl, ticketId, requesterId)).then(function (response) {
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
        if (!response.ok) {
          return undefined;
        }
        return syncIfDue(ticketId, requesterId).then(function () {
          if (suggestionsUrl) {
            suggestionsHolder();
            suggestionsHolder('rg-orders');
            return Promise.all([
              loadCard(suggestionsUrl, 'rg-suggestions', ticketId, requesterId,
                '<section class="rg-card rg-problem" role="alert"><p>Suggestions could not be loaded.</p></section>'),
              loadCard(ordersUrl, 'rg-orders', ticketId, requesterId, failure('orders-failed')),
              loadCard(reviewUrl, 'rg-review', ticketId, requesterId, failure('review-failed'))]);
          }
          return undefined;
        });
      });
    }).catch(function () {
      showMessage(text('unreachable'));
      resize();
    });
  }

  // The banner's GET stores nothing: when the shop or the helpdesk gave something not stored
  // yet, the banner says so and the page asks for the write, then shows the banner it answers
  // (built from what is now stored). Before the cards, which read the same stored profile.
  function syncIfDue(ticketId, requesterId) {
    var banner = root.querySelector('[data-sync="due"]');
    if (!banner || !syncUrl) {
      return Promise.resolve();
    }
    var form = new URLSearchParams();
    form.set('ticket_id', ticketId);
    if (requesterId) {
      form.set('requester_id', requesterId);
    }
    return send(withLocale(syncUrl), form).then(function (response) {
      return response.text().then(function (html) {
        if (!response.ok) {
          return; // the banner shown stays: it is what is stored
        }
        // Rendered by the service with autoescaping; nothing from the page goes in.
        var fresh = document.createElement('template');
        fresh.innerHTML = html;
        banner.replaceWith(fresh.content);
        resize();
      });
    }).catch(function () {
      return undefined; // the banner shown stays; the next view asks again
    });
  }

  // The suggestions card, loaded after the banner (the helpdesk's answers are cached by then).
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

  // What only some cards use comes when such a card first shows, once per page, by the name
  // the page gives it (data-asset-*, the content's hash in it). The account review's styles
  // are waited for, so the card shows styled; scripts start when they come.
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

  function showCard(html, focus, id) {
    var holder = suggestionsHolder(id);
    return Promise.resolve(html && id === 'rg-review' && asset('review-css')).then(function () {
      // Rendered by the service with autoescaping; nothing from the page goes in.
      holder.innerHTML = html;
      if (holder.querySelector('[data-approval-above]')) {
        asset('amount-js');
      }
      if (holder.querySelector('[data-rg-gestures][data-poll], [data-rg-copy]')) {
        asset('gestures-js');
      }
      if (focus) {
        var target = holder.querySelector('[aria-invalid="true"]') || holder.querySelector('[data-result]');
        if (target) {
          target.focus();
        }
      }
      resize();
    });
  }

  // A card in its holder: the suggestions, the orders, and the account review when the
  // customer calls for one (204: none); `failure` is what shows if the service is not reached.
  function loadCard(url, id, ticketId, requesterId, failure) {
    if (!url) {
      return undefined;
    }
    suggestionsHolder(id);
    return send(cardUrl(url, ticketId, requesterId)).then(function (response) {
      return response.text().then(function (html) {
        return showCard(response.status === 204 ? '' : html, false, id);
      });
    }).catch(function () {
      showCard(failure, false, id);
    });
  }

  function failure(name) {
    return '<p class="rg-error" role="alert">' + text(name) + '</p>';
  }

  // A form's buttons, those inside it and those joined to it by their form attribute.
  function buttons(form, disabled) {
    Array.prototype.forEach.call(form.elements, function (element) {
      if (element.tagName === 'BUTTON') {
        element.disabled = disabled;
      }
    });
  }

  // Apply, dismiss, escalate and review checks: each form goes with the bearer session; the
  // answer is its card (data-rg-holder names which).
  root.addEventListener('submit', function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-rg-action')) {
      return;
    }
    event.preventDefault();
    if (form.getAttribute('data-busy') === 'true') {
      return; // a second click while the first is on its way (the service would not record it twice)
    }
    var fields = new FormData(form);
    var submitter = event.submitter;
    if (submitter && submitter.name) {
      fields.set(submitter.name, submitter.value);
    }
    form.setAttribute('data-busy', 'true');
    buttons(form, true);
    send(withLocale(form.action), fields).then(function (response) {
      return response.text().then(function (html) {
        return showCard(html, true, form.getAttribute('data-rg-holder'));
      });
    }).catch(function () {
      form.removeAttribute('data-busy');
      buttons(form, false);
      var note = document.createElement('p');
      note.className = 'rg-error';
      note.setAttribute('role', 'alert');
      note.textContent = text('not-sent');
      (form.closest('li') || form).appendChild(note);
      resize();
    });
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
