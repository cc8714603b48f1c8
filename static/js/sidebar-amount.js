/* Regulars sidebar, the amount field: loaded by static/js/sidebar.js when a card shows an
   amount with an approval threshold, not on every view. */
(function () {
  'use strict';

  // An amount above the rule's approval threshold asks a supervisor: the button says so as
  // the agent types, and sends an escalation; at or below it, it is the agent's own Apply.
  document.getElementById('regulars').addEventListener('input', function (event) {
    var input = event.target;
    var above = input.getAttribute('data-approval-above');
    var go = above && document.getElementById(input.getAttribute('data-go'));
    var value = parseFloat(input.value);
    if (!go || isNaN(value)) {
      return;
    }
    var asks = value > parseFloat(above);
    go.value = asks ? 'escalate' : 'apply';
    var cents = value % 1 ? 2 : 0;
    go.textContent = asks ? go.getAttribute('data-ask').replace('{amount}', value.toLocaleString(
      go.getAttribute('data-locale'), { style: 'currency', currency: go.getAttribute('data-currency'),
        minimumFractionDigits: cents, maximumFractionDigits: cents })) : go.getAttribute('data-apply');
  });
})();
