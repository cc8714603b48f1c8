/* Demo desk: show the open ticket's internal notes, and the ones the outbox delivers later,
   with the priority, group and tags a rule's ticket handling changed. */
(function () {
  'use strict';

  var view = document.getElementById('ticket-view');
  var slot = document.getElementById('ticket-notes');
  if (!view || !slot) {
    return;
  }
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.content : '';
  var urlTemplate = slot.getAttribute('data-notes-url-template');
  var idField = view.querySelector('[data-field="id"]');
  var REFRESH_MS = 3000;
  var shownFor = null;
  var shownHtml = '';

  function openTicketId() {
    if (view.hidden) {
      return null;
    }
    var id = (idField.textContent || '').replace(/^#/, '').trim();
    return id || null;
  }

  function refresh() {
    var id = openTicketId();
    if (!id) {
      return;
    }
    fetch(urlTemplate.replace('__ID__', encodeURIComponent(id)), {
      method: 'POST',
      credentials: 'same-origin',
      referrerPolicy: 'same-origin',
      headers: { 'X-CSRFToken': csrfToken, Accept: 'text/html' },
      cache: 'no-store'
    }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      // Rendered by the service with autoescaping; only replaced when it changed, so the
      // live region announces new notes and nothing else.
      if (html !== null && id === openTicketId() && html !== shownHtml) {
        shownHtml = html;
        slot.innerHTML = html;
        showFields(slot.querySelector('[data-ticket-now]'));
      }
    }).catch(function () { /* the next refresh tries again */ });
  }

  function showFields(now) {
    if (!now) {
      return;
    }
    var priority = now.getAttribute('data-priority');
    var row = document.querySelector('.ticket-item[data-ticket-id="' + openTicketId() + '"] .priority');
    [view.querySelector('[data-field="priority"]'), row].forEach(function (badge) {
      if (badge) {
        badge.textContent = priority.charAt(0).toUpperCase() + priority.slice(1) + ' priority';
        badge.className = 'priority priority-' + priority;
      }
    });
    view.querySelector('[data-field="group"]').textContent = now.getAttribute('data-group') || 'Unassigned';
    var tags = (now.getAttribute('data-tags') || '').split(' ').filter(Boolean);
    var list = view.querySelector('[data-field="tags"]');
    if (tags.length) {
      list.replaceChildren.apply(list, tags.map(function (tag) {
        var li = document.createElement('li');
        li.textContent = tag;
        return li;
      }));
    }
  }

  function onTicketChange() {
    var id = openTicketId();
    if (id !== shownFor) {
      shownFor = id;
      shownHtml = '';
      slot.textContent = '';
      refresh();
    }
  }

  new MutationObserver(onTicketChange).observe(view, {
    attributes: true, attributeFilter: ['hidden'], childList: true, characterData: true, subtree: true
  });
  window.setInterval(refresh, REFRESH_MS);
})();
