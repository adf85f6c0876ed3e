// The dashboard's Live view (docs/dashboard.md): the newest accepted events and refused requests.
// Runs after core.js, whose helpers it takes from window.GW.
'use strict';
(function () {
  var GW = window.GW;
  var $ = GW.$, el = GW.el, clear = GW.clear, api = GW.api, time = GW.time;
  var LIVE_MS = 1500; // the live tail is refreshed at least every 2 s
  var liveTimer = null;
  var liveItems = [];

  function showLive() {
    refreshLive();
    if (!liveTimer) liveTimer = setInterval(refreshLive, LIVE_MS);
  }

  function stopLive() {
    if (liveTimer) clearInterval(liveTimer);
    liveTimer = null;
  }

  function refreshLive() {
    if ($('f-pause').checked) return;
    api('/v1/debug/events?limit=200').then(function (answer) {
      if (answer.status === 401) return GW.showLogin('Unknown key: it no longer opens this gateway.');
      if (answer.status !== 200) {
        $('live-status').textContent = 'The gateway answered ' + answer.status + '; retrying…';
        return;
      }
      liveItems = answer.body.items;
      $('live-status').textContent = 'Updated ' + new Date().toLocaleTimeString([], { hour12: false });
      renderLive();
    }, function () {
      $('live-status').textContent = 'The gateway did not answer; retrying…';
    });
  }

  function liveMatches(item) {
    var type = $('f-type').value.trim().toLowerCase();
    var contact = $('f-contact').value.trim().toLowerCase();
    var name = (item.outcome === 'accepted' ? item.eventTypeKey : item.error) || '';
    if (type && name.toLowerCase().indexOf(type) < 0) return false;
    if (contact) {
      var hay = (item.contactId || '') + ' ' + JSON.stringify(item.event || {}) + ' ' + (item.body || '');
      if (hay.toLowerCase().indexOf(contact) < 0) return false;
    }
    return true;
  }

  function identifiers(event) {
    var names = ['email', 'phone', 'keyValue', 'externalCustomerId', 'contactKey', 'visitorId'];
    return names.filter(function (name) { return typeof event[name] === 'string'; })
      .map(function (name) { return event[name]; }).join(' · ');
  }

  function liveRow(item) {
    var accepted = item.outcome === 'accepted';
    var main;
    var more;
    if (accepted) {
      var who = identifiers(item.event || {});
      main = el('div', { cls: 'main' }, [
        el('span', { cls: 'what', text: item.eventTypeKey }),
        el('div', { cls: 'detail' }, [who ? who + ' · ' : '', GW.contactLink(item.contactId, 'contact ' + item.contactId.slice(0, 8))])
      ]);
      more = JSON.stringify(item.event, null, 2);
    } else {
      var where = [item.path, item.keyKind ? item.keyKind + ' key' : '', item.origin ? 'from ' + item.origin : '',
        item.index !== undefined ? 'event #' + item.index + ' of the batch' : ''].filter(Boolean).join(' · ');
      main = el('div', { cls: 'main' }, [
        el('span', { cls: 'what', text: item.error }),
        item.field ? el('span', { cls: 'detail', text: ' (' + item.field + ')' }) : null,
        el('div', { cls: 'reason', text: item.message }),
        el('div', { cls: 'detail', text: where })
      ]);
      more = item.body;
    }
    var children = [
      el('span', { cls: 'time', text: time(item.at) }),
      el('span', { cls: 'badge ' + item.outcome, text: accepted ? 'accepted' : 'refused ' + item.status }),
      main
    ];
    if (more) {
      children.push(el('details', {}, [el('summary', { text: accepted ? 'event' : 'body as sent' }), el('pre', { text: more })]));
    }
    return el('li', { cls: item.outcome, 'data-cursor': item.cursor }, children);
  }

  function renderLive() {
    var shown = liveItems.filter(liveMatches);
    var list = clear($('live-list'));
    shown.forEach(function (item) { list.appendChild(liveRow(item)); });
    var accepted = liveItems.filter(function (i) { return i.outcome === 'accepted'; }).length;
    var counts = clear($('live-counts'));
    if (liveItems.length) {
      counts.appendChild(el('span', { text: accepted + ' accepted' }));
      counts.appendChild(el('span', { text: (liveItems.length - accepted) + ' refused' }));
      counts.appendChild(el('span', { text: 'of the newest ' + liveItems.length }));
    }
    var types = {};
    liveItems.forEach(function (i) { types[i.eventTypeKey || i.error] = true; });
    var seen = clear($('seen-types'));
    Object.keys(types).sort().forEach(function (t) { seen.appendChild(el('option', { value: t })); });
    var empty = $('live-empty');
    if (!liveItems.length) {
      GW.snippetHelp(empty, 'No events yet in this tenant. Events appear here within two seconds of arriving, ' +
        'refused ones with the reason.');
    } else if (!shown.length) {
      clear(empty).appendChild(el('p', { text: 'Nothing among the newest ' + liveItems.length + ' matches the filters.' }));
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
  }
  ['f-type', 'f-contact'].forEach(function (id) { $(id).addEventListener('input', renderLive); });

  GW.views.live = { show: showLive, leave: stopLive };
})();
