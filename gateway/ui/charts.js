// The dashboard's Charts view (docs/dashboard.md): events per minute, and the trigger funnel per
// day, drawn by uPlot (vendor/uPlot.iife.min.js, loaded before). Runs after core.js, whose
// helpers it takes from window.GW.
'use strict';
(function () {
  var GW = window.GW;
  var $ = GW.$, el = GW.el, clear = GW.clear, api = GW.api, table = GW.table;
  var COLORS = ['#3559e0', '#12805c', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d',
    '#475569', '#ea580c', '#4f46e5'];
  var charts = [];

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
        GW.snippetHelp(empty, 'No events in the last hour, so nothing to draw yet.');
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

  GW.views.charts = { show: showCharts };
})();
