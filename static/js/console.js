/* Regulars console: run the connection check with the console's own bearer session. */
(function () {
  'use strict';

  var body = document.body;
  var sessionToken = body.getAttribute('data-session-token');
  var checkUrl = body.getAttribute('data-check-url');
  var target = document.getElementById('connection');
  var button = document.getElementById('run-check');

  function runCheck() {
    button.disabled = true;
    target.setAttribute('aria-busy', 'true');
    fetch(checkUrl, {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + sessionToken, Accept: 'text/html' },
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (response) {
      return response.text();
    }).then(function (html) {
      // Rendered by the service with autoescaping.
      target.innerHTML = html;
    }).catch(function () {
      target.textContent = 'Regulars could not reach its service. Check your connection.';
    }).then(function () {
      target.setAttribute('aria-busy', 'false');
      button.disabled = false;
    });
  }

  button.addEventListener('click', runCheck);
  runCheck();
})();
