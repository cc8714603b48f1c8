/* Regulars console: every call carries the console's bearer session (no cookies, so no CSRF). */
(function () {
  'use strict';

  var body = document.body;
  var sessionToken = body.getAttribute('data-session-token');
  // The language the console was launched in (the user's helpdesk language): each answer too.
  var locale = body.getAttribute('data-locale');

  function call(method, url, formData) {
    if (locale) {
      url += (url.indexOf('?') === -1 ? '?' : '&') + 'locale=' + encodeURIComponent(locale);
    }
    return fetch(url, {
      method: method,
      headers: { Authorization: 'Bearer ' + sessionToken, Accept: 'text/html' },
      body: formData,
      credentials: 'omit',
      cache: 'no-store'
    });
  }

  function post(url, formData) {
    return call('POST', url, formData).then(function (response) {
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

  // Only admins see the connection; a supervisor's page has no such section.
  if (checkButton) {
    checkButton.addEventListener('click', runCheck);
    runCheck();
  }

  // The CSV import.
  var importForm = document.getElementById('import-form');
  var importReport = document.getElementById('import-report');
  if (importForm) {
    importForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var submit = importForm.querySelector('button[type="submit"]');
      var data = new FormData(importForm);
      // "Check file" (dry_run) says what an import would do and writes nothing.
      var checking = event.submitter && event.submitter.name === 'dry_run';
      if (checking) {
        data.append('dry_run', '1');
      }
      submit.disabled = true;
      importReport.setAttribute('aria-busy', 'true');
      importReport.textContent = checking ? 'Checking…' : 'Importing…';
      post(importForm.action, data).then(function (html) {
        show(importReport, html);
      }).catch(function () {
        unreachable(importReport);
      }).then(function () {
        importReport.setAttribute('aria-busy', 'false');
        submit.disabled = false;
      });
    });
  }

  // Sections that load a partial when the page opens (data-load-url) and put the service's
  // answer to each of their buttons and forms in its place: the list, a form, or the same
  // form with a message next to each field that needs a change (a 400).
  function regionOf(element) {
    return element.closest('[data-load-url]');
  }

  function focusAfterSwap(target) {
    var next = target.querySelector('[aria-invalid="true"]') ||
      target.querySelector('[data-focus]') ||
      target.querySelector('button, input, select, textarea');
    if (next) {
      next.focus();
    }
  }

  function offline(form) {
    var notice = form.querySelector('[data-offline]');
    if (!notice) {
      notice = document.createElement('p');
      notice.className = 'rg-form-summary';
      notice.setAttribute('role', 'alert');
      notice.setAttribute('data-offline', '');
      form.insertBefore(notice, form.firstChild);
    }
    notice.textContent = 'Regulars could not reach its service, so nothing was saved. Try again.';
  }

  function swapRegion(target, method, url, formData, form) {
    var buttons = form ? form.querySelectorAll('button') : [];
    Array.prototype.forEach.call(buttons, function (button) { button.disabled = true; });
    target.setAttribute('aria-busy', 'true');
    return call(method, url, formData).then(function (response) {
      return response.text();
    }).then(function (html) {
      show(target, html);
      enhance(target);
      if (form !== undefined) {
        focusAfterSwap(target);
      }
    }).catch(function () {
      if (form && form.isConnected) {
        offline(form);
      } else {
        unreachable(target);
      }
    }).then(function () {
      target.setAttribute('aria-busy', 'false');
      Array.prototype.forEach.call(buttons, function (button) { button.disabled = false; });
    });
  }

  // Persona conditions: offer only the comparisons a field allows, and its values.
  var LIST_OPERATORS = ['in', 'not_in'];

  function updateCondition(row, chosenNow) {
    var field = row.querySelector('[data-condition-field]');
    var operator = row.querySelector('[data-condition-operator]');
    var value = row.querySelector('[data-condition-value]');
    var option = field.options[field.selectedIndex];
    var allowed = option && option.getAttribute('data-operators');
    if (chosenNow) {
      var names = allowed ? allowed.split(' ') : null;
      Array.prototype.forEach.call(operator.options, function (choice) {
        var off = names !== null && choice.value !== '' && names.indexOf(choice.value) === -1;
        choice.disabled = off;
        choice.hidden = off;
      });
      if (names && names.indexOf(operator.value) === -1) {
        operator.value = names[0];
      }
    }
    var choices = option && option.getAttribute('data-choices');
    if (choices) {
      value.setAttribute('list', choices);
    } else {
      value.removeAttribute('list');
    }
    var isList = LIST_OPERATORS.indexOf(operator.value) !== -1;
    var isNumber = option && option.getAttribute('data-kind') === 'number';
    var placeholder = 'A value';
    if (isList) {
      placeholder = 'Values, separated by commas';
    } else if (isNumber) {
      placeholder = option.hasAttribute('data-currency') ? 'An amount' : 'A number';
    } else if (choices) {
      placeholder = 'Choose or type a value';
    }
    value.setAttribute('placeholder', placeholder);
    if (isNumber && !isList) {
      value.setAttribute('inputmode', 'decimal');
    } else {
      value.removeAttribute('inputmode');
    }
  }

  function enhance(target) {
    Array.prototype.forEach.call(target.querySelectorAll('[data-condition]'), function (row) {
      updateCondition(row, false);
    });
  }

  function addCondition(button) {
    var group = button.closest('[data-condition-group]');
    var list = group.querySelector('[data-condition-list]');
    var template = button.closest('form').querySelector('template[data-condition-template]');
    var index = Number(group.getAttribute('data-next-index'));
    group.setAttribute('data-next-index', String(index + 1));
    list.insertAdjacentHTML('beforeend', template.innerHTML
      .replace(/__group__/g, group.getAttribute('data-condition-group'))
      .replace(/__index__/g, String(index))
      .replace(/__number__/g, String(list.children.length + 1)));
    var row = list.lastElementChild;
    updateCondition(row, false);
    row.querySelector('[data-condition-field]').focus();
  }

  function removeCondition(button) {
    var group = button.closest('[data-condition-group]');
    button.closest('[data-condition]').remove();
    group.querySelector('[data-add-condition]').focus();
  }

  function useSuggestion(button) {
    var form = button.closest('form');
    Array.prototype.forEach.call(form.querySelectorAll('input[data-suggestion]'), function (input) {
      input.value = input.getAttribute('data-suggestion');
    });
    form.querySelector('[data-suggestion-status]').textContent =
      'Suggested values filled in. Save to apply them.';
    form.querySelector('button[type="submit"]').focus();
  }

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!form.matches('form[data-swap]')) {
      return;
    }
    event.preventDefault();
    var question = form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) {
      return;
    }
    // A button may send the form elsewhere (formaction) and show the answer in a part of the
    // page (data-swap-into), as the rule editor's Try and Replay do; its name and value go too.
    var submitter = event.submitter;
    var data = new FormData(form);
    if (submitter && submitter.name) {
      data.append(submitter.name, submitter.value);
    }
    var url = (submitter && submitter.getAttribute('formaction')) || form.getAttribute('action');
    var into = submitter && submitter.getAttribute('data-swap-into');
    var target = into ? document.getElementById(into) : regionOf(form);
    swapRegion(target, 'POST', url, data, form);
  });

  // Downloads (the rules export) need the bearer session too: fetch, then save the file.
  function download(button) {
    button.disabled = true;
    call('GET', button.getAttribute('data-download')).then(function (response) {
      if (!response.ok) {
        throw new Error(String(response.status));
      }
      return response.blob();
    }).then(function (blob) {
      var link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = button.getAttribute('data-filename') || 'download';
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    }).catch(function () {
      window.alert('Regulars could not prepare the file. Try again.');
    }).then(function () {
      button.disabled = false;
    });
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('button');
    if (!button || !regionOf(button)) {
      return;
    }
    if (button.hasAttribute('data-download')) {
      download(button);
    } else if (button.hasAttribute('data-get')) {
      swapRegion(regionOf(button), 'GET', button.getAttribute('data-get'), undefined, null);
    } else if (button.hasAttribute('data-add-condition')) {
      addCondition(button);
    } else if (button.hasAttribute('data-remove-condition')) {
      removeCondition(button);
    } else if (button.hasAttribute('data-use-suggestion')) {
      useSuggestion(button);
    }
  });

  document.addEventListener('change', function (event) {
    var row = event.target.closest('[data-condition]');
    if (row && event.target.matches('[data-condition-field], [data-condition-operator]')) {
      updateCondition(row, event.target.matches('[data-condition-field]'));
    }
  });

  Array.prototype.forEach.call(document.querySelectorAll('[data-load-url]'), function (region) {
    swapRegion(region, 'GET', region.getAttribute('data-load-url'));
  });
})();
