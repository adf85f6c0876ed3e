// The dashboard (docs/dashboard.md). Plain scripts, no build step: this one first, then one per
// view (live.js, contact.js, triggers.js, charts.js), sharing window.GW. The server key lives in
// sessionStorage and travels only in the Authorization header of the API calls made by api().
'use strict';
(function () {
  var STORE = 'gw_dashboard_key';
  var key = sessionStorage.getItem(STORE);
  // Each view file adds itself: name (the tab's #hash) -> { show: fn, leave: fn or undefined }.
  var VIEWS = {};

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === 'text') node.textContent = attrs[name];
      else if (name === 'cls') node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function api(path) {
    return fetch(path, {
      headers: { Authorization: 'Bearer ' + key },
      cache: 'no-store',
      credentials: 'omit'
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        return { status: response.status, body: body };
      });
    });
  }

  function time(iso) {
    var moment = new Date(iso);
    return isNaN(moment) ? '' : moment.toLocaleTimeString([], { hour12: false });
  }

  function calendarDay(iso) {
    var moment = new Date(iso);
    return isNaN(moment) ? '' : moment.toLocaleDateString();
  }

  function dateTime(iso) {
    var moment = new Date(iso);
    return isNaN(moment) ? '' : moment.toLocaleString([], { hour12: false });
  }

  function section(title, body, wide) {
    return el('div', { cls: wide ? 'card wide' : 'card' }, [el('h3', { text: title }), body]);
  }

  function dl(pairs) {
    var list = el('dl');
    pairs.forEach(function (pair) {
      list.appendChild(el('dt', { text: pair[0] }));
      list.appendChild(el('dd', { text: String(pair[1]) }));
    });
    return list;
  }

  function table(head, rows, numeric) {
    var header = el('tr', {}, head.map(function (h, i) { return el('th', { cls: numeric[i] ? 'num' : '', text: h }); }));
    var body = rows.map(function (row) {
      return el('tr', {}, row.map(function (cell, i) { return el('td', { cls: numeric[i] ? 'num' : '', text: String(cell) }); }));
    });
    return el('div', { cls: 'table-wrap' }, [el('table', {}, [el('thead', {}, [header]), el('tbody', {}, body)])]);
  }

  function none(text) { return el('p', { cls: 'muted', text: text }); }

  function snippetHelp(container, what) {
    var origin = location.origin;
    clear(container).appendChild(el('p', { text: what }));
    container.appendChild(el('p', { text: 'Paste the tracker into every page\'s <head> (with your site key):' }));
    container.appendChild(el('pre', { text:
      '<script>window.gw=window.gw||function(){(gw.q=gw.q||[]).push(arguments)}</script>\n' +
      '<script async src="' + origin + document.body.dataset.trackerPath +
      '" data-key="YOUR_SITE_KEY"></script>' }));
    container.appendChild(el('p', { text: 'Or send a test event from a terminal:' }));
    container.appendChild(el('pre', { text:
      'curl -X POST ' + origin + document.body.dataset.collectPath + ' \\\n' +
      '  -H "Authorization: Bearer YOUR_SERVER_KEY" -H "Content-Type: application/json" \\\n' +
      '  -d \'{"eventTypeKey": "helloWorld", "keyValue": "test@example.com"}\'' }));
    container.hidden = false;
  }

  // Leaving a view (signing out, or another tab) stops what it refreshes.
  function leaveViews(except) {
    Object.keys(VIEWS).forEach(function (name) {
      if (name !== except && VIEWS[name].leave) VIEWS[name].leave();
    });
  }

  // Key entry --------------------------------------------------------------------------------
  function showLogin(message) {
    leaveViews(null);
    key = null;
    sessionStorage.removeItem(STORE);
    $('login').hidden = false;
    $('tabs').hidden = true;
    $('signout').hidden = true;
    document.querySelectorAll('.view').forEach(function (view) { view.hidden = true; });
    $('login-error').hidden = !message;
    $('login-error').textContent = message || '';
    $('key').focus();
  }

  function check(candidate) {
    key = candidate;
    return api('/v1/stats/events?minutes=1').then(function (answer) {
      if (answer.status === 200) {
        sessionStorage.setItem(STORE, candidate);
        $('login').hidden = true;
        $('tabs').hidden = false;
        $('signout').hidden = false;
        route();
      } else if (answer.status === 401) {
        showLogin('Unknown key: no tenant of this gateway has it. Copy a server key from the config.');
      } else if (answer.status === 403) {
        showLogin('That is a site key: the dashboard needs a server key.');
      } else {
        showLogin('The gateway answered ' + answer.status + '; try again shortly.');
      }
    }, function () {
      showLogin('The gateway did not answer; is it running?');
    });
  }

  $('login-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var candidate = $('key').value.trim();
    $('key').value = '';
    if (candidate) check(candidate);
  });
  $('signout').addEventListener('click', function () { showLogin(''); });

  // Views ------------------------------------------------------------------------------------
  function route() {
    if (!key) return;
    var name = location.hash.replace('#', '').split('/')[0];
    if (!VIEWS[name]) name = 'live';
    document.querySelectorAll('.view').forEach(function (view) { view.hidden = view.id !== name; });
    document.querySelectorAll('#tabs a').forEach(function (tab) {
      tab.classList.toggle('active', tab.dataset.view === name);
    });
    leaveViews(name);
    VIEWS[name].show();
  }
  window.addEventListener('hashchange', route);

  // Deferred scripts all run, in order, before DOMContentLoaded: by then every view has added
  // itself to VIEWS.
  document.addEventListener('DOMContentLoaded', function () {
    if (key) check(key); else showLogin('');
  });

  window.GW = {
    views: VIEWS,
    $: $,
    el: el,
    clear: clear,
    api: api,
    time: time,
    calendarDay: calendarDay,
    dateTime: dateTime,
    section: section,
    dl: dl,
    table: table,
    none: none,
    snippetHelp: snippetHelp,
    showLogin: showLogin
  };
})();
