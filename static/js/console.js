/* Regulars console: every call carries the console's bearer session (no cookies, so no CSRF). */
(function () {
  'use strict';

  var body = document.body;
  var sessionToken = body.getAttribute('data-session-token');

  function post(url, formData) {
    return fetch(url, {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + sessionToken, Accept: 'text/html' },
      body: formData,
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (response) {
      if (response.status === 413) {
        return '<p class="rg-import rg-import--failed" role="alert">The file is too large to ' +
          'upload here; import it with the flask data import command.</p>';
      }
      return response.text();
    });
  }

  function show(target, html) {
    // Rendered by the service with autoescaping.
    target.innerHTML = html;
  }

  function unreachable(target) {
    target.textContent = 'Regulars could not reach its service. Check your connection.';
  }

  // The connection check.
  var connection = document.getElementById('connection');
  var checkButton = document.getElementById('run-check');

  function runCheck() {
    checkButton.disabled = true;
    connection.setAttribute('aria-busy', 'true');
    post(body.getAttribute('data-check-url')).then(function (html) {
      show(connection, html);
    }).catch(function () {
      unreachable(connection);
    }).then(function () {
      connection.setAttribute('aria-busy', 'false');
      checkButton.disabled = false;
    });
  }

  checkButton.addEventListener('click', runCheck);
  runCheck();

  // The CSV import.
  var importForm = document.getElementById('import-form');
  var importReport = document.getElementById('import-report');
  if (importForm) {
    importForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var submit = importForm.querySelector('button[type="submit"]');
      submit.disabled = true;
      importReport.setAttribute('aria-busy', 'true');
      importReport.textContent = 'Importing…';
      post(importForm.action, new FormData(importForm)).then(function (html) {
        show(importReport, html);
      }).catch(function () {
        unreachable(importReport);
      }).then(function () {
        importReport.setAttribute('aria-busy', 'false');
        submit.disabled = false;
      });
    });
  }
})();
