/*
 * demo-freshworks.js: a stand-in for Freshworks' client script (the `{{{appclient}}}` of a
 * platform 2.3 app page), for the local /demo helpdesk only. The demo serves the packaged
 * Freshdesk app's page with this script in that place; in Freshdesk, Freshworks' own runs.
 *
 * It gives the page the part of the client the Regulars app uses:
 *   app.initialized() -> client
 *   client.data.get(name)                      ticket, contact, loggedInUser, domainName
 *   client.request.invokeTemplate(name, opts)  {status, headers, response} or a rejection
 *   client.events.on(name, callback)           app.activated
 *   client.instance.resize({height})
 *   client.interface.trigger(action, data)     showNotify
 * Each call goes to the host page (static/js/demo-host.js) as a postMessage object
 * {channel: 'freshworks', id, method, args}; the host answers {channel, id, result | error}
 * and sends events as {channel, event, data}. Only the parent page, on this origin, is heard.
 */
(function () {
  'use strict';

  const ORIGIN = window.location.origin;
  const CHANNEL = 'freshworks';
  const pending = new Map();
  const listeners = new Map();
  let lastId = 0;
  let initialized = null;

  function call(method, args) {
    return new Promise((resolve, reject) => {
      lastId += 1;
      pending.set(lastId, { resolve, reject });
      window.parent.postMessage({ channel: CHANNEL, id: lastId, method, args }, ORIGIN);
    });
  }

  window.addEventListener('message', (event) => {
    if (event.source !== window.parent || event.origin !== ORIGIN) return;
    const msg = event.data;
    if (!msg || typeof msg !== 'object' || msg.channel !== CHANNEL) return;
    if (typeof msg.event === 'string') {
      (listeners.get(msg.event) || []).forEach((callback) => callback(msg.data));
      return;
    }
    const waiting = pending.get(msg.id);
    if (!waiting) return;
    pending.delete(msg.id);
    if (Object.prototype.hasOwnProperty.call(msg, 'error')) waiting.reject(msg.error);
    else waiting.resolve(msg.result);
  });

  const client = {
    data: { get: (name) => call('data.get', [name]) },
    request: {
      invokeTemplate: (name, options) => call('request.invokeTemplate', [name, options || {}]),
    },
    events: {
      on: (name, callback) => {
        if (!listeners.has(name)) listeners.set(name, []);
        listeners.get(name).push(callback);
        return call('events.on', [name]);
      },
    },
    instance: { resize: (size) => call('instance.resize', [size]) },
    interface: { trigger: (action, data) => call('interface.trigger', [action, data]) },
  };

  window.app = {
    initialized() {
      if (!initialized) initialized = call('app.initialized', []).then(() => client);
      return initialized;
    },
  };
})();
