// The dashboard (docs/dashboard.md). Plain script, no build step. The server key lives in
// sessionStorage and travels only in the Authorization header of the API calls below.
'use strict';
(function () {
  var STORE = 'gw_dashboard_key';
  var LIVE_MS = 1500; // the live tail is refreshed at least every 2 s
  var COLORS = ['#3559e0', '#12805c', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d',
    '#475569', '#ea580c', '#4f46e5'];
  var key = sessionStorage.getItem(STORE);
  var liveTimer = null;
  var liveItems = [];
  var charts = [];

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

  // Key entry --------------------------------------------------------------------------------
  function showLogin(message) {
    stopLive();
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
  var VIEWS = { live: showLive, contact: showContact, triggers: showTriggers, charts: showCharts };

  function route() {
    if (!key) return;
    var name = location.hash.replace('#', '').split('/')[0];
    if (!VIEWS[name]) name = 'live';
    document.querySelectorAll('.view').forEach(function (view) { view.hidden = view.id !== name; });
    document.querySelectorAll('#tabs a').forEach(function (tab) {
      tab.classList.toggle('active', tab.dataset.view === name);
    });
    if (name !== 'live') stopLive();
    VIEWS[name]();
  }
  window.addEventListener('hashchange', route);

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

  // Live -------------------------------------------------------------------------------------
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
      if (answer.status === 401) return showLogin('Unknown key: it no longer opens this gateway.');
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

  function contactLink(id, label) {
    var link = el('a', { cls: 'contact-link', href: '#contact', text: label || id });
    link.addEventListener('click', function (event) {
      event.preventDefault();
      $('contact-id').value = id;
      location.hash = '#contact';
      lookUp(id);
    });
    return link;
  }

  function liveRow(item) {
    var accepted = item.outcome === 'accepted';
    var main;
    var more;
    if (accepted) {
      var who = identifiers(item.event || {});
      main = el('div', { cls: 'main' }, [
        el('span', { cls: 'what', text: item.eventTypeKey }),
        el('div', { cls: 'detail' }, [who ? who + ' · ' : '', contactLink(item.contactId, 'contact ' + item.contactId.slice(0, 8))])
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
      snippetHelp(empty, 'No events yet in this tenant. Events appear here within two seconds of arriving, ' +
        'refused ones with the reason.');
    } else if (!shown.length) {
      clear(empty).appendChild(el('p', { text: 'Nothing among the newest ' + liveItems.length + ' matches the filters.' }));
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
  }
  ['f-type', 'f-contact'].forEach(function (id) { $(id).addEventListener('input', renderLive); });

  // Contact ----------------------------------------------------------------------------------
  function showContact() {
    if (!$('contact-out').firstChild) {
      clear($('contact-out')).appendChild(el('div', { cls: 'empty' }, [
        el('p', { text: 'Look up a contact by email, phone, contactId or any identifier your site sends ' +
          '(or click a contact in the Live view) to see its profile, cart, recent views, orders and events.' })
      ]));
    }
  }

  $('contact-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var id = $('contact-id').value.trim();
    if (id) lookUp(id);
  });

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

  function orderTotal(order) {
    return order.totalCost === undefined ? '' : order.totalCost + ' ' + (order.currency || '');
  }

  function lookUp(id) {
    var out = clear($('contact-out'));
    out.appendChild(none('Looking up ' + id + '…'));
    var path = encodeURIComponent(id);
    Promise.all([api('/v1/contacts/' + path), api('/v1/events?limit=50&contact=' + path),
      api('/v1/contacts/' + path + '/orders')]).then(function (answers) {
      var contact = answers[0];
      clear(out);
      if (contact.status === 404) {
        out.appendChild(el('div', { cls: 'empty' }, [el('p', { text: 'No contact with that identifier. Try the email, ' +
          'the phone in international form, or a contactId from the Live view.' })]));
        return;
      }
      if (contact.status !== 200) {
        out.appendChild(el('p', { cls: 'error', text: (contact.body && contact.body.message) || 'The gateway answered ' + contact.status }));
        return;
      }
      var c = contact.body;
      var ids = [['contactId', c.id]];
      Object.keys(c.identifiers).forEach(function (kind) { ids.push([kind, c.identifiers[kind].join(', ')]); });
      ids.push(['first seen', dateTime(c.createdAt)], ['last seen', dateTime(c.updatedAt)]);
      var cart = c.cart && c.cart.products && c.cart.products.length ? el('div', {}, [
        table(['product', 'qty', 'price'], c.cart.products.map(function (p) { return [p.productId, p.quantity, p.price]; }), [false, true, true]),
        el('p', { text: 'Total ' + c.cart.total + ' ' + (c.cart.currencyCode || '') })
      ]) : none('No cart.');
      var views = c.recentProducts.length ? table(['product', 'price', 'viewed'], c.recentProducts.map(function (p) {
        return [p.productId, p.price === undefined ? '' : p.price, dateTime(p.viewedAt)];
      }), [false, true, false]) : none('No product views.');
      var orders = c.orders || {};
      var listed = answers[2].status === 200 ? answers[2].body.orders : [];
      var orderRows = listed.length ? table(['order', 'status', 'total', 'date'], listed.map(function (o) {
        return [o.externalOrderId, o.status, orderTotal(o.order), calendarDay(o.order.date || o.createdAt)];
      }), [false, false, true, false]) : none('No orders.');
      var events = answers[1].status === 200 ? answers[1].body.events : [];
      var eventRows = events.length ? table(['type', 'received'], events.map(function (e) {
        return [e.eventTypeKey, dateTime(e.receivedAt)];
      }), [false, false]) : none('No events kept.');
      out.appendChild(el('div', { cls: 'grid' }, [
        section('Profile', dl(ids)),
        section('Cart', cart),
        section('Orders (newest first)', orderRows, true),
        section('Delivered orders', dl([['orders', orders.count || 0], ['revenue', orders.revenue || 0],
          ['average check', orders.averageCheck || 0],
          ['last order', orders.lastOrderDate ? calendarDay(orders.lastOrderDate) : '—']])),
        section('Recent product views', views),
        section('Recent categories', c.recentCategories.length ? dl(c.recentCategories.map(function (v) {
          return [v.productCategoryId, dateTime(v.viewedAt)];
        })) : none('No category views.')),
        section('Events (newest first)', eventRows)
      ]));
    }, function () { clear(out).appendChild(el('p', { cls: 'error', text: 'The gateway did not answer.' })); });
  }

  // Triggers ---------------------------------------------------------------------------------
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
    var detail = el('div', { cls: 'detail' }, [who ? who + ' · ' : '', contact.id ? contactLink(contact.id, 'contact ' + contact.id.slice(0, 8)) : '']);
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

  // Charts -----------------------------------------------------------------------------------
  function destroyCharts() {
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
  }

  function chartWidth(container) { return Math.max(260, container.clientWidth - 20); }

  function plot(container, series, data, height, extraAxes) {
    var chart = new uPlot({
      width: chartWidth(container),
      height: height,
      series: [{}].concat(series),
      axes: [{}, { size: 50 }].concat(extraAxes || []),
      legend: { live: false }
    }, data, container);
    charts.push(chart);
    return chart;
  }

  function showCharts() {
    destroyCharts();
    api('/v1/stats/events?minutes=60').then(function (answer) {
      var box = clear($('chart-events'));
      if (answer.status !== 200) return;
      var minutes = answer.body.minutes;
      var types = {};
      var refused = false;
      minutes.forEach(function (m) {
        Object.keys(m.accepted).forEach(function (t) { types[t] = true; });
        if (Object.keys(m.refused).length) refused = true;
      });
      var names = Object.keys(types).sort();
      var xs = minutes.map(function (m) { return Date.parse(m.at) / 1000; });
      var data = [xs];
      var series = names.map(function (name, i) {
        data.push(minutes.map(function (m) { return m.accepted[name] || 0; }));
        return { label: name, stroke: COLORS[i % COLORS.length], width: 2, points: { show: false } };
      });
      if (refused) {
        data.push(minutes.map(function (m) {
          return Object.keys(m.refused).reduce(function (sum, code) { return sum + m.refused[code]; }, 0);
        }));
        series.push({ label: 'refused', stroke: '#b42318', width: 2, dash: [6, 4], points: { show: false } });
      }
      var empty = $('events-empty');
      box.hidden = series.length === 0;
      if (!series.length) {
        snippetHelp(empty, 'No events in the last hour, so nothing to draw yet.');
        return;
      }
      empty.hidden = true;
      plot(box, series, data, 280);
    });
    showTriggerCharts();
  }

  function day(offset) {
    return new Date(Date.now() - offset * 86400000).toISOString().slice(0, 10);
  }

  function showTriggerCharts() {
    var days = [];
    for (var i = 13; i >= 0; i--) days.push(day(i));
    Promise.all(days.map(function (d) { return api('/v1/triggers/stats?from=' + d + '&to=' + d); })).then(function (answers) {
      var box = clear($('chart-triggers'));
      var empty = $('triggers-empty');
      var perType = {};
      answers.forEach(function (answer, index) {
        if (answer.status !== 200 || !answer.body || !answer.body.types) return;
        Object.keys(answer.body.types).forEach(function (type) {
          perType[type] = perType[type] || [];
          perType[type][index] = answer.body.types[type];
        });
      });
      var types = Object.keys(perType).sort();
      if (!types.length) {
        var missing = answers.every(function (a) { return a.status === 404; });
        clear(empty).appendChild(el('p', { text: missing
          ? 'This gateway does not report trigger statistics yet (GET /v1/triggers/stats): upgrade it to see ' +
            'each trigger type emitted → delivered → converted, with the revenue it brought back.'
          : 'No triggers in the last 14 days. Each trigger type appears here once one is emitted: ' +
            'emitted, delivered to your webhooks, converted into an order, and the revenue per day.' }));
        empty.hidden = false;
        return;
      }
      empty.hidden = true;
      var xs = days.map(function (d) { return Date.parse(d + 'T00:00:00Z') / 1000; });
      types.forEach(function (type) {
        var rows = days.map(function (_, i) { return perType[type][i] || {}; });
        function column(name) { return rows.map(function (r) { return r[name] || 0; }); }
        var holder = el('div', { cls: 'chart' }, [el('p', { cls: 'chart-title', text: type })]);
        box.appendChild(holder);
        var revenue = {};
        rows.forEach(function (r) {
          Object.keys(r.revenue || {}).forEach(function (cur) { revenue[cur] = (revenue[cur] || 0) + r.revenue[cur]; });
        });
        var currencies = Object.keys(revenue).sort();
        // Each step of the funnel narrower than the one before: where they are equal (every
        // trigger delivered and converted) the lines lie inside each other and all show.
        // Revenue per day on its own scale (right axis), one dashed line per currency.
        var series = [
          { label: 'emitted', stroke: 'rgba(53, 89, 224, 0.35)', width: 8, points: { show: false } },
          { label: 'delivered', stroke: '#0891b2', width: 4, points: { show: false } },
          { label: 'converted', stroke: '#12805c', width: 1.5 }
        ].concat(currencies.map(function (cur, i) {
          return { label: 'revenue ' + cur, stroke: COLORS[(i + 2) % COLORS.length], width: 2, dash: [5, 4], scale: 'money' };
        }));
        var data = [xs, column('emitted'), column('delivered'), column('converted')].concat(currencies.map(function (cur) {
          return rows.map(function (r) { return (r.revenue || {})[cur] || 0; });
        }));
        plot(holder, series, data, 220, currencies.length ? [{ scale: 'money', side: 1, size: 60, grid: { show: false } }] : []);
        var sums = ['emitted', 'delivered', 'converted'].map(function (name) {
          return column(name).reduce(function (a, b) { return a + b; }, 0);
        });
        var money = currencies.map(function (cur) { return revenue[cur].toFixed(2) + ' ' + cur; }).join(', ') || '0';
        holder.appendChild(table(['emitted', 'delivered', 'converted', 'revenue'], [sums.concat([money])], [true, true, true, true]));
      });
    });
  }

  window.addEventListener('resize', function () {
    charts.forEach(function (chart) {
      chart.setSize({ width: chartWidth(chart.root.parentNode), height: chart.height });
    });
  });

  if (key) check(key); else showLogin('');
})();
