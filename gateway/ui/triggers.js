// The dashboard's Triggers view (docs/dashboard.md): the webhooks, the trigger feed with each
// webhook's delivery, and the dead letters. Runs after core.js, whose helpers it takes from
// window.GW.
'use strict';
(function () {
  var GW = window.GW;
  var $ = GW.$, el = GW.el, clear = GW.clear, api = GW.api, time = GW.time;
  var WEEK_MS = 7 * 86400000;
  // A trigger's state with one webhook (GET /v1/triggers, deliveries): its words and its look.
  var DELIVERY = {
    delivered: ['delivered', 'ok'],
    dead: ['dead', 'bad'],
    retrying: ['retrying', 'warn'],
    queued: ['queued', 'wait'],
    notSent: ['not sent: added later', 'wait']
  };

  function deliveryChip(d) {
    var look = DELIVERY[d.state] || [d.state, 'wait'];
    var more = [];
    if (d.state === 'retrying') more.push(d.attempts + (d.attempts === 1 ? ' try' : ' tries'));
    if (d.nextAttemptAt) more.push('next ' + time(d.nextAttemptAt));
    if (d.deadAt) more.push(time(d.deadAt));
    return el('li', { cls: 'delivery ' + look[1], title: d.webhook }, [
      el('span', { cls: 'state', text: look[0] + (more.length ? ' · ' + more.join(' · ') : '') }),
      el('span', { cls: 'hook', text: d.webhook })
    ]);
  }

  function triggerRow(t) {
    var contact = t.contact || {};
    var who = [contact.email, contact.phone].filter(Boolean).join(' · ');
    var detail = el('div', { cls: 'detail' }, [who ? who + ' · ' : '', contact.id ? GW.contactLink(contact.id, 'contact ' + contact.id.slice(0, 8)) : '']);
    var what = t.cart && t.cart.total !== undefined ? ' · cart ' + t.cart.total + ' ' + (t.cart.currencyCode || '') : '';
    var deliveries = t.deliveries || [];
    var shown = {};
    Object.keys(t).forEach(function (name) { if (name !== 'deliveries') shown[name] = t[name]; });
    return el('li', {}, [
      el('span', { cls: 'time', text: time(t.createdAt) }),
      el('span', { cls: 'badge accepted', text: 'trigger' }),
      el('div', { cls: 'main' }, [
        el('span', { cls: 'what', text: t.type + what }), detail,
        deliveries.length ? el('ul', { cls: 'deliveries', 'aria-label': 'webhook deliveries' }, deliveries.map(deliveryChip)) : null
      ]),
      el('details', {}, [el('summary', { text: 'trigger' }), el('pre', { text: JSON.stringify(shown, null, 2) })])
    ]);
  }

  function showWebhooks() {
    api('/v1/webhooks').then(function (answer) {
      var list = clear($('webhook-list'));
      var hooks = answer.status === 200 ? answer.body.webhooks : [];
      $('webhook-summary').hidden = !hooks.length;
      hooks.forEach(function (h) {
        function figure(name, value, cls) {
          return el('span', { cls: cls || '' }, [name + ' ', el('strong', { text: String(value) })]);
        }
        list.appendChild(el('li', { cls: h.dead ? 'has-dead' : '' }, [
          el('div', { cls: 'hook-url', text: h.webhook }),
          el('div', { cls: 'hook-figures' }, [
            figure('types', h.types ? h.types.join(', ') : 'all'),
            figure('scheduled', h.scheduled),
            figure('dead', h.dead, 'dead')
          ])
        ]));
      });
    });
  }

  function showTriggers() {
    showWebhooks();
    // Newest first: the newest 200, of which those of the last 7 days.
    api('/v1/triggers?limit=200&before=').then(function (answer) {
      var since = Date.now() - WEEK_MS;
      var found = answer.status === 200 ? answer.body.triggers.filter(function (t) {
        return Date.parse(t.createdAt) >= since;
      }) : [];
      var list = clear($('trigger-list'));
      found.forEach(function (t) { list.appendChild(triggerRow(t)); });
      var empty = $('trigger-empty');
      empty.hidden = found.length > 0;
      clear(empty).appendChild(el('p', { text: 'No triggers in the last 7 days. They are emitted when a visit closes ' +
        '(an abandoned cart, browse, category or visit of a reachable contact) and on every order change; ' +
        'send events of a contact with an email, then wait for the visit timeout.' }));
    });
    api('/v1/webhooks/dead?limit=50').then(function (answer) {
      var list = clear($('dead-list'));
      var dead = answer.status === 200 ? answer.body.dead : [];
      dead.forEach(function (d) {
        list.appendChild(el('li', { cls: 'refused' }, [
          el('span', { cls: 'time', text: time(d.deadAt) }),
          el('span', { cls: 'badge refused', text: d.attempts + ' tries' }),
          el('div', { cls: 'main' }, [el('span', { cls: 'what', text: (d.trigger && d.trigger.type) || d.triggerId }),
            el('div', { cls: 'reason', text: d.lastError }), el('div', { cls: 'detail', text: d.webhook })]),
          el('details', {}, [el('summary', { text: 'trigger' }), el('pre', { text: JSON.stringify(d.trigger, null, 2) })])
        ]));
      });
      var empty = $('dead-empty');
      empty.hidden = dead.length > 0;
      clear(empty).appendChild(el('p', { text: 'No dead letters: every webhook delivery succeeded or is still being retried.' }));
    });
  }

  GW.views.triggers = { show: showTriggers };
})();
