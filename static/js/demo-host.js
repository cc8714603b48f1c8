/*
 * demo-host.js: the *host* half of the Zendesk Apps Framework (ZAF v2) protocol,
 * for the local /demo helpdesk only. Zendesk plays this role in production.
 *
 * Opening a ticket POSTs to the demo API, which returns a signed-URL JWT plus the
 * context/metadata/data Zendesk would hold. We then load the sidebar the way Zendesk
 * does (a form POST of `token` into a named iframe, with `origin` and `app_guid` in the
 * query string) and answer the SDK (npm zendesk_app_framework_sdk 2.0.x, lib/client.js)
 * over postMessage. All messages are JSON strings:
 *   iframe -> host  {key: 'iframe.handshake', message: {version}, appGuid, instanceGuid}
 *   host -> iframe  {key: 'zaf.app.registered', message: {context, metadata}}
 *   iframe -> host  {id, request: 'get'|'set'|'invoke', params, appGuid, instanceGuid}
 *   host -> iframe  {id, result: {<path>: value, errors: {<path>: {message, name, path}}}}
 *   iframe -> host  {key: 'iframe.on:<event>' | 'iframe.off:<event>', message: {subscriberCount}}
 *   host -> iframe  {key: 'zaf.<event>', message: data}
 *   iframe -> host  {key: 'request:N', message: options}  (answered with zaf.request:N.fail)
 * The desk's "Admin console" nav button does the same for the console (Zendesk's nav_bar
 * location): a token signed for the demo's admin, POSTed into a full-width iframe.
 *
 * In the Freshdesk-style view (/demo/freshdesk) this page plays Freshworks instead: the frame
 * loads the packaged Freshdesk app's own page, whose client is a stand-in
 * (static/js/demo-freshworks.js) that asks this host over postMessage, with objects
 *   iframe -> host  {channel: 'freshworks', id, method, args}
 *   host -> iframe  {channel: 'freshworks', id, result} | {channel: 'freshworks', id, error}
 *   host -> iframe  {channel: 'freshworks', event: 'app.activated', data}
 * for `app.initialized`, `data.get` (ticket, contact, loggedInUser, domainName),
 * `events.on`, `instance.resize`, `interface.trigger` and `request.invokeTemplate`. Template
 * calls go to the demo's stand-in for Freshworks' request proxy, which fills in the
 * installation's secret on the server; the page never sees it.
 * Nothing here is used when the app runs inside the real Zendesk or Freshdesk.
 */
(function () {
  'use strict';

  const ORIGIN = window.location.origin;
  const HELPDESK = document.body.dataset.helpdesk === 'freshdesk' ? 'freshdesk' : 'zendesk';
  const FRESHWORKS = 'freshworks';
  const MIN_HEIGHT = 80;
  const MAX_HEIGHT = 2000;
  const HANDSHAKE_WAIT_MS = 4000; // after the iframe's page has loaded
  const UNSOLVED = ['new', 'open', 'pending'];
  const STATUSES = ['new', 'open', 'pending', 'solved', 'closed'];
  const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
  const CHANNELS = { email: 'Email', chat: 'Chat', voice: 'Phone' };
  // Freshdesk has no "new" status and calls solved tickets resolved.
  const STATUS_LABELS = HELPDESK === 'freshdesk' ? { new: 'Open', solved: 'Resolved' } : {};
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const byId = (id) => document.getElementById(id);
  const has = (obj, key) => obj !== null && typeof obj === 'object' &&
    Object.prototype.hasOwnProperty.call(obj, key);
  const capitalize = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : '');

  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.content : '';
  const openUrlTemplate = document.body.dataset.openUrlTemplate || '';
  const consoleUrl = document.body.dataset.consoleUrl || '';
  const workspace = byId('workspace');
  const list = byId('ticket-list');
  const ticketPane = byId('ticket-pane');
  const ticketView = byId('ticket-view');
  const appsBody = byId('apps-body');
  const appsToggle = byId('apps-toggle');
  const appSlot = byId('app-slot');
  const appStatus = byId('app-status');

  /* ---------- Ticket list: views, channel filter, keyboard ---------- */

  let view = 'unsolved';
  let channel = 'all';

  function applyFilters() {
    const counts = { unsolved: 0, all: 0 };
    let shown = 0;
    list.querySelectorAll('li.ticket-row').forEach((row) => {
      const inChannel = channel === 'all' || row.dataset.channel === channel;
      const unsolved = UNSOLVED.includes(row.dataset.status);
      if (inChannel) { counts.all += 1; if (unsolved) counts.unsolved += 1; }
      row.hidden = !(inChannel && (view === 'all' || unsolved));
      if (!row.hidden) shown += 1;
    });
    document.querySelectorAll('[data-count]').forEach((el) => {
      el.textContent = String(counts[el.dataset.count]);
    });
    document.querySelectorAll('.view-btn').forEach((btn) => {
      btn.setAttribute('aria-pressed', String(btn.dataset.view === view));
    });
    const title = view === 'all' ? 'All tickets' : 'Your unsolved tickets';
    byId('queue-title').textContent = channel === 'all' ? title : `${title} · ${CHANNELS[channel]}`;
    byId('queue-empty').hidden = shown > 0;
  }

  document.querySelectorAll('.view-btn').forEach((btn) => {
    btn.addEventListener('click', () => { view = btn.dataset.view; applyFilters(); });
  });
  byId('channel-filter').addEventListener('change', (event) => {
    channel = event.target.value;
    applyFilters();
  });

  list.addEventListener('click', (event) => {
    const button = event.target.closest('button.ticket-item');
    if (button) openTicket(button);
  });
  // Up/Down/Home/End move between visible tickets; Enter/Space open them (native button).
  list.addEventListener('keydown', (event) => {
    const keys = ['ArrowDown', 'ArrowUp', 'Home', 'End'];
    if (!keys.includes(event.key)) return;
    const buttons = Array.from(list.querySelectorAll('li:not([hidden]) button.ticket-item'));
    if (!buttons.length) return;
    const at = buttons.indexOf(document.activeElement);
    let next = event.key === 'Home' ? 0 : event.key === 'End' ? buttons.length - 1
      : at + (event.key === 'ArrowDown' ? 1 : -1);
    next = Math.max(0, Math.min(buttons.length - 1, next));
    event.preventDefault();
    buttons[next].focus();
  });

  /* ---------- Opening a ticket ---------- */

  let openSeq = 0;

  function setLoading(loading) {
    byId('ticket-loading').hidden = !loading;
    ticketPane.setAttribute('aria-busy', String(loading));
  }

  function showError(message) {
    const box = byId('ticket-error');
    box.textContent = message;
    box.hidden = false;
  }

  // POST to the demo API; resolves to {response, payload}, either null when unreachable.
  async function postDemoApi(url, body) {
    let response = null;
    let payload = null;
    try {
      response = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        referrerPolicy: 'same-origin', // Flask-WTF checks the Referer of POSTs over HTTPS
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrfToken },
        body: JSON.stringify(body || {}),
      });
      payload = await response.json().catch(() => null);
    } catch (err) {
      payload = null;
    }
    return { response, payload };
  }

  function failureReason(response, payload) {
    if (payload && payload.error) return payload.error;
    return response ? `The server answered HTTP ${response.status}.` : 'The server could not be reached.';
  }

  async function openTicket(button) {
    const seq = ++openSeq;
    list.querySelectorAll('button[aria-current]').forEach((b) => b.removeAttribute('aria-current'));
    button.setAttribute('aria-current', 'true');
    byId('ticket-error').hidden = true;
    setLoading(true);
    const url = openUrlTemplate.replace('__ID__', encodeURIComponent(button.dataset.ticketId));
    const { response, payload } = await postDemoApi(url);
    if (seq !== openSeq) return; // a newer click won
    setLoading(false);
    const launchable = payload && (HELPDESK === 'freshdesk' ? payload.app_url : payload.token);
    if (!response || !response.ok || !launchable || !payload.ticket) {
      showError(`Could not open this ticket. ${failureReason(response, payload)}`);
      ticketView.hidden = true; // don't leave another ticket (and its app) on show
      unloadApp();
      return;
    }
    renderTicket(payload.ticket);
    if (HELPDESK === 'freshdesk') loadFreshworksApp(payload); else loadApp(payload);
    if (window.matchMedia('(max-width: 900px)').matches) {
      ticketPane.scrollIntoView({ block: 'start' });
    }
  }

  function channelIcon(name) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'icon');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const use = document.createElementNS(SVG_NS, 'use');
    use.setAttribute('href', `#icon-${has(CHANNELS, name) ? name : 'email'}`);
    svg.appendChild(use);
    return svg;
  }

  function renderTicket(ticket) {
    const requester = ticket.requester || {};
    const channelLabel = CHANNELS[ticket.channel] || capitalize(ticket.channel || 'web');
    const text = {
      id: `#${ticket.id}`,
      type: capitalize(ticket.ticket_type || 'ticket'),
      created: ticket.created_label || '',
      subject: ticket.subject || '(no subject)',
      status: STATUS_LABELS[ticket.status] || capitalize(ticket.status),
      priority: `${capitalize(ticket.priority || 'normal')} priority`,
      'requester-name': requester.name || 'Unknown requester',
      'requester-email': requester.email || 'No email',
      'requester-phone': requester.phone || '',
      'requester-initial': (requester.name || '?').charAt(0).toUpperCase(),
      'channel-label': channelLabel,
      description: ticket.description || '',
      group: ticket.group || 'Unassigned',
    };
    Object.keys(text).forEach((field) => {
      ticketView.querySelectorAll(`[data-field="${field}"]`).forEach((el) => { el.textContent = text[field]; });
    });
    const status = STATUSES.includes(ticket.status) ? ticket.status : 'unknown';
    ticketView.querySelector('[data-field="status"]').className = `status-pill status-${status}`;
    const priority = PRIORITIES.includes(ticket.priority) ? ticket.priority : 'normal';
    ticketView.querySelector('[data-field="priority"]').className = `priority priority-${priority}`;
    const badge = ticketView.querySelector('[data-field="channel"]');
    const label = document.createElement('span');
    label.textContent = channelLabel;
    badge.replaceChildren(channelIcon(ticket.channel), label);
    ticketView.querySelector('[data-row="phone"]').hidden = !requester.phone;
    const tags = ticketView.querySelector('[data-field="tags"]');
    tags.replaceChildren(...(ticket.tags || []).map((tag) => {
      const li = document.createElement('li');
      li.textContent = tag;
      return li;
    }));
    if (!tags.children.length) {
      const li = document.createElement('li');
      li.className = 'tags-none';
      li.textContent = 'No tags';
      tags.appendChild(li);
    }
    byId('ticket-placeholder').hidden = true;
    ticketView.hidden = false;
    document.title = `${text.subject} · Demo helpdesk`;
  }

  /* ---------- Loading the sidebar like Zendesk ---------- */

  let app = null; // the one app instance: {iframe, guid, context, metadata, data, subs, ...}

  function newGuid() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    const b = window.crypto.getRandomValues(new Uint8Array(16)); // http on a LAN address
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function setAppStatus(message, state) {
    appStatus.textContent = message;
    appStatus.dataset.state = state || '';
  }

  function unloadApp() {
    if (app) { clearTimeout(app.handshakeTimer); app.iframe.remove(); }
    app = null;
    byId('app-empty').hidden = false;
    setAppStatus('Not loaded', '');
  }

  function loadApp(payload) {
    const guid = newGuid();
    unloadApp();
    byId('app-empty').hidden = true;
    const iframe = document.createElement('iframe');
    iframe.name = `zaf-${guid}`;
    iframe.title = 'Regulars app';
    iframe.className = 'app-frame';
    appSlot.appendChild(iframe);
    app = {
      iframe,
      guid,
      context: Object.assign({}, payload.context, { instanceGuid: guid }),
      metadata: payload.metadata || {},
      data: payload.data || {},
      subs: new Map(),
      registered: false,
      activated: false,
    };
    const current = app;
    iframe.addEventListener('load', () => { // the 401/500 pages of a server land here too
      clearTimeout(current.handshakeTimer);
      current.handshakeTimer = setTimeout(() => {
        if (!current.registered) {
          setAppStatus('The page loaded but did not connect (no ZAF handshake). See the message in the frame.', 'warn');
        }
      }, HANDSHAKE_WAIT_MS);
    });
    setAppStatus('Loading…', 'loading');
    postIntoFrame(iframe, payload.sidebar_path || '/sidebar', payload.token, guid);
  }

  // Zendesk's way of opening an app location: a form POST of the signed token into the
  // (named) iframe, with the host page's origin and the instance's guid in the query string.
  function postIntoFrame(iframe, path, token, guid) {
    const action = `${path}${path.includes('?') ? '&' : '?'}origin=${encodeURIComponent(ORIGIN)}` +
      `&app_guid=${encodeURIComponent(guid)}`;
    const form = document.createElement('form');
    form.method = 'post';
    form.action = action;
    form.target = iframe.name;
    form.hidden = true;
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = 'token';
    input.value = token;
    form.appendChild(input);
    document.body.appendChild(form);
    form.submit();
    form.remove();
  }

  /* ---------- The ZAF host protocol ---------- */

  function post(msg) {
    if (!app || !app.iframe.contentWindow) return;
    // ZAF's messages are JSON strings; the Freshworks stand-in's are objects.
    const data = app.kind === FRESHWORKS ? Object.assign({ channel: FRESHWORKS }, msg) : JSON.stringify(msg);
    app.iframe.contentWindow.postMessage(data, ORIGIN);
  }

  function appVisible() {
    return !appsBody.hidden && !workspace.hidden && document.visibilityState === 'visible';
  }

  // Emit a framework event, only if the iframe subscribed to it (as Zendesk and Freshworks do).
  function emit(name, data) {
    if (!app || !app.registered || !app.subs.has(name)) return;
    post(app.kind === FRESHWORKS ? { event: name, data } : { key: `zaf.${name}`, message: data });
  }

  function activate() {
    if (!app || !app.registered || !appVisible()) return;
    emit('app.activated', { firstLoad: !app.activated });
    app.activated = true;
  }

  // Exact key first; else walk the dotted path from the longest key that exists.
  function resolvePath(path) {
    const data = app.data;
    if (has(data, path)) return { found: true, value: data[path] };
    if (path === 'instances') return { found: true, value: { [app.guid]: app.context } };
    if (path === `instances.${app.guid}`) return { found: true, value: app.context };
    const parts = path.split('.');
    for (let i = parts.length - 1; i > 0; i -= 1) {
      const key = parts.slice(0, i).join('.');
      if (!has(data, key)) continue;
      let value = data[key];
      const rest = parts.slice(i);
      while (rest.length && has(value, rest[0])) value = value[rest.shift()];
      if (!rest.length) return { found: true, value };
    }
    return { found: false };
  }

  function apiError(path, message) {
    return { message, name: 'APIUnavailable', path };
  }

  function parseHeight(arg) {
    const raw = arg !== null && typeof arg === 'object' ? arg.height : arg;
    const match = /^\s*(\d+(?:\.\d+)?)\s*(px)?\s*$/.exec(String(raw));
    if (!match) return null;
    return Math.round(Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Number(match[1]))));
  }

  function answerRequest(msg) {
    const result = { errors: {} };
    const params = msg.params;
    if (msg.request === 'get' && Array.isArray(params)) {
      params.forEach((path) => {
        const found = typeof path === 'string' ? resolvePath(path) : { found: false };
        if (found.found) result[path] = found.value;
        else result.errors[path] = apiError(path, 'is not available in the demo helpdesk');
      });
    } else if (msg.request === 'set' && params && typeof params === 'object') {
      Object.keys(params).forEach((key) => {
        result.errors[key] = apiError(key, 'cannot be set: the demo helpdesk is read-only');
      });
    } else if (msg.request === 'invoke' && params && typeof params === 'object') {
      Object.keys(params).forEach((name) => {
        const args = Array.isArray(params[name]) ? params[name] : [params[name]];
        const height = name === 'resize' ? parseHeight(args[0]) : null;
        if (height !== null) {
          app.iframe.style.height = `${height}px`;
        } else if (name === 'resize') {
          result.errors[name] = apiError(name, 'needs a height in pixels, such as {height: "240px"}');
        } else {
          result.errors[name] = apiError(name, 'is not supported by the demo helpdesk');
        }
      });
    } else {
      post({ id: msg.id, error: { name: 'Error', message: `Unknown request "${msg.request}"` } });
      return;
    }
    post({ id: msg.id, result });
  }

  function handleEvent(msg) {
    const key = msg.key;
    const message = msg.message || {};
    if (key === 'iframe.handshake') {
      // A (re)loaded page inside the iframe: fresh subscriptions, register it.
      clearTimeout(app.handshakeTimer);
      app.subs.clear();
      app.activated = false;
      app.registered = true;
      post({ key: 'zaf.app.registered', message: { context: app.context, metadata: app.metadata } });
      setAppStatus(`Connected · ZAF SDK ${message.version || ''}`.trim(), 'ok');
    } else if (key.startsWith('iframe.on:')) {
      const name = key.slice('iframe.on:'.length);
      app.subs.set(name, message.subscriberCount || 1);
      if (name === 'app.activated' && !app.activated) activate();
    } else if (key.startsWith('iframe.off:')) {
      const name = key.slice('iframe.off:'.length);
      if (!message.subscriberCount) app.subs.delete(name);
    } else if (/^request:\d+$/.test(key)) {
      const text = 'The demo helpdesk does not proxy client.request(): call your own server directly.';
      const xhr = { status: 501, statusText: 'Not Implemented', responseText: JSON.stringify({ error: text }), responseJSON: { error: text } };
      post({ key: `zaf.${key}.fail`, message: { responseArgs: [xhr, 'error', text] } });
    }
  }

  window.addEventListener('message', (event) => {
    if (!app || event.source !== app.iframe.contentWindow || event.origin !== ORIGIN) return;
    if (app.kind === FRESHWORKS) {
      if (has(event.data, 'channel') && event.data.channel === FRESHWORKS) answerFreshworks(event.data);
      return;
    }
    if (typeof event.data !== 'string') return;
    let msg;
    try { msg = JSON.parse(event.data); } catch (err) { return; }
    if (!msg || typeof msg !== 'object' || (msg.appGuid && msg.appGuid !== app.guid)) return;
    if (typeof msg.request === 'string' && msg.id !== undefined) {
      if (app.registered) answerRequest(msg);
    } else if (typeof msg.key === 'string') {
      handleEvent(msg);
    }
  });

  /* ---------- Loading the app like Freshdesk (Freshworks platform 2.3) ---------- */

  // Freshdesk loads a packaged app's page from its own servers; the demo serves the built
  // package's page, with the stand-in client where the page asks for Freshworks' one.
  function loadFreshworksApp(payload) {
    unloadApp();
    byId('app-empty').hidden = true;
    const iframe = document.createElement('iframe');
    iframe.title = 'Regulars app';
    iframe.className = 'app-frame';
    app = {
      kind: FRESHWORKS,
      iframe,
      data: payload.data || {},
      invokeUrl: payload.invoke_url,
      subs: new Set(),
      registered: false,
      activated: false,
    };
    const current = app;
    iframe.addEventListener('load', () => {
      clearTimeout(current.handshakeTimer);
      current.handshakeTimer = setTimeout(() => {
        if (!current.registered) {
          setAppStatus('The page loaded but did not call app.initialized(). See the message in the frame.', 'warn');
        }
      }, HANDSHAKE_WAIT_MS);
    });
    appSlot.appendChild(iframe);
    setAppStatus('Loading…', 'loading');
    iframe.src = payload.app_url;
  }

  // Freshworks' request proxy answers {status, headers, response (the body as a string)};
  // an error status rejects with the same, marked as the app's server's (errorSource APP).
  async function invokeTemplate(name, options) {
    const opts = options && typeof options === 'object' ? options : {};
    const { response, payload } = await postDemoApi(app.invokeUrl, {
      template: name, context: opts.context || {}, body: opts.body || '',
    });
    if (!response || !response.ok || !payload) {
      throw { status: response ? response.status : 502, errorSource: 'PLATFORM', response: failureReason(response, payload) };
    }
    const answer = { status: payload.status, headers: payload.headers || {}, response: payload.response };
    if (answer.status >= 200 && answer.status < 300) return answer;
    throw Object.assign(answer, { errorSource: 'APP' });
  }

  function answerFreshworks(msg) {
    const current = app;
    const reply = (body) => { if (app === current) post(Object.assign({ id: msg.id }, body)); };
    const args = Array.isArray(msg.args) ? msg.args : [];
    switch (msg.method) {
      case 'app.initialized':
        clearTimeout(app.handshakeTimer);
        app.registered = true;
        setAppStatus('Connected · Freshworks client stand-in', 'ok');
        reply({ result: true });
        break;
      case 'data.get': {
        const name = String(args[0]);
        if (has(app.data, name)) reply({ result: { [name]: app.data[name] } });
        else reply({ error: { status: 404, message: `${name} is not available in the demo helpdesk` } });
        break;
      }
      case 'events.on':
        app.subs.add(String(args[0]));
        reply({ result: true });
        if (args[0] === 'app.activated' && !app.activated) activate();
        break;
      case 'instance.resize': {
        const height = parseHeight(args[0]);
        if (height !== null) app.iframe.style.height = `${height}px`;
        reply(height !== null ? { result: true } : { error: { message: 'resize needs {height: "240px"}' } });
        break;
      }
      case 'interface.trigger': {
        const data = args[1] && typeof args[1] === 'object' ? args[1] : {};
        if (args[0] === 'showNotify' && data.message) setAppStatus(String(data.message), data.type === 'danger' ? 'warn' : 'ok');
        reply({ result: true });
        break;
      }
      case 'request.invokeTemplate':
        invokeTemplate(String(args[0]), args[1]).then(
          (result) => reply({ result }),
          (error) => reply({ error }),
        );
        break;
      default:
        reply({ error: { message: `${msg.method} is not supported by the demo helpdesk` } });
    }
  }

  /* ---------- Apps panel: show/hide emits app.activated / app.deactivated ---------- */

  function setAppsShown(shown) {
    appsBody.hidden = !shown;
    appsToggle.setAttribute('aria-expanded', String(shown));
    appsToggle.textContent = shown ? 'Hide' : 'Show';
    if (shown) activate(); else emit('app.deactivated', {});
  }

  appsToggle.addEventListener('click', () => setAppsShown(appsBody.hidden));
  // A tab opened in the background activates its app on first view only.
  document.addEventListener('visibilitychange', () => {
    if (app && !app.activated) activate();
  });

  /* ---------- The admin console: Zendesk's nav_bar location, full width ---------- */

  const consoleView = byId('console-view');
  const consoleSlot = byId('console-slot');
  const consoleTitle = byId('console-view-title');
  const navInbox = byId('nav-inbox');
  const navConsole = byId('nav-console');
  const skipLink = document.querySelector('.skip-link');
  let consoleSeq = 0;
  let deskTitle = document.title;

  // Swap the ticket workspace for the console (or back), as Zendesk's nav bar does; the
  // ticket, and its sidebar, stay loaded underneath and are deactivated meanwhile.
  function showConsoleView(shown) {
    if (shown === !consoleView.hidden) return;
    if (shown) deskTitle = document.title;
    const sidebarWasVisible = appVisible();
    workspace.hidden = shown;
    skipLink.hidden = shown;
    document.body.classList.toggle('console-open', shown);
    consoleView.hidden = !shown;
    (shown ? navInbox : navConsole).removeAttribute('aria-current');
    (shown ? navConsole : navInbox).setAttribute('aria-current', 'page');
    document.title = shown ? 'Admin console · Demo helpdesk' : deskTitle;
    if (shown && sidebarWasVisible) emit('app.deactivated', {});
    if (!shown) activate();
  }

  function setConsoleLoading(loading) {
    byId('console-loading').hidden = !loading;
    consoleView.setAttribute('aria-busy', String(loading));
  }

  function unloadConsole() {
    consoleSlot.replaceChildren();
  }

  async function openConsole(as) {
    const seq = ++consoleSeq;
    showConsoleView(true);
    unloadConsole();
    byId('console-error').hidden = true;
    setConsoleLoading(true);
    consoleTitle.focus();
    const { response, payload } = await postDemoApi(consoleUrl, { as: as || 'admin' });
    if (seq !== consoleSeq) return; // reopened, or closed, meanwhile
    setConsoleLoading(false);
    if (!response || !response.ok || !payload || !payload.token) {
      const box = byId('console-error');
      box.textContent = `Could not open the admin console. ${failureReason(response, payload)}`;
      box.hidden = false;
      return;
    }
    const user = payload.user || {};
    if (user.name) {
      byId('console-as').textContent = user.role === 'supervisor'
        ? `Opened as ${user.name} (supervisor), the demo's supervisor: an agent whose ` +
          'helpdesk role the admin named as supervisors.'
        : `Opened as ${user.name} (${user.role || 'admin'}), ` +
          "the demo's admin: the console is for helpdesk admins and the supervisors they name.";
    }
    const guid = newGuid();
    const iframe = document.createElement('iframe');
    iframe.name = `zaf-${guid}`;
    iframe.title = 'Regulars admin console';
    iframe.className = 'console-frame';
    consoleSlot.appendChild(iframe);
    postIntoFrame(iframe, payload.console_path || '/console', payload.token, guid);
  }

  function closeConsole(focusAfter) {
    consoleSeq += 1; // forget a launch still on its way
    setConsoleLoading(false);
    unloadConsole();
    showConsoleView(false);
    focusAfter.focus();
  }

  navConsole.addEventListener('click', () => openConsole('admin'));
  byId('nav-console-supervisor').addEventListener('click', () => openConsole('supervisor'));
  navInbox.addEventListener('click', () => { if (!consoleView.hidden) closeConsole(navInbox); });
  byId('console-back').addEventListener('click', () => closeConsole(navConsole));

  applyFilters();
})();
