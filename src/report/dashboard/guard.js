// Runs first: counts every error the page meets (a script error, a rejected
// promise, console.error, a resource or a load the content security policy
// blocked) on <html data-errors>, and lists them on the page, so that a
// headless browser's DOM dump shows whether the page worked.
(function () {
  'use strict';
  var errors = [];
  var root = document.documentElement;
  function show() {
    root.setAttribute('data-errors', String(errors.length));
    var list = document.getElementById('errors');
    if (list) {
      list.textContent = errors.join('\n');
      list.hidden = errors.length === 0;
    }
  }
  function fail(message) {
    errors.push(String(message));
    show();
  }
  window.addEventListener('error', function (e) {
    if (e.target && e.target !== window) {
      fail('cannot load ' + (e.target.src || e.target.href || e.target.tagName));
    } else {
      fail((e.message || 'error') + (e.lineno ? ' (line ' + e.lineno + ':' + e.colno + ')' : ''));
    }
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    fail('unhandled rejection: ' + e.reason);
  });
  document.addEventListener('securitypolicyviolation', function (e) {
    fail('blocked by the page policy: ' + e.violatedDirective + ' ' + e.blockedURI);
  });
  var consoleError = console.error;
  console.error = function () {
    fail(Array.prototype.map.call(arguments, String).join(' '));
    return consoleError.apply(console, arguments);
  };
  window.infergateFail = fail;
  window.addEventListener('DOMContentLoaded', show);
  show();
})();
