// The dashboard's Contact view (docs/dashboard.md): one contact's profile, cart, views, orders
// and events. Runs after core.js, whose helpers it takes from window.GW; contactLink() is the way
// into it from the Live and Triggers views.
'use strict';
(function () {
  var GW = window.GW;
  var $ = GW.$, el = GW.el, clear = GW.clear, api = GW.api;
  var calendarDay = GW.calendarDay, dateTime = GW.dateTime;
  var section = GW.section, dl = GW.dl, table = GW.table, none = GW.none;

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

  GW.contactLink = contactLink;
  GW.views.contact = { show: showContact };
})();
