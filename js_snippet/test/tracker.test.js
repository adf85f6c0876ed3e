'use strict';

const assert = require('node:assert/strict');
const { after, before, beforeEach, describe, test } = require('node:test');
const { SCRIPTS, gatewayStandIn, page, params, until } = require('./harness.js');

const PRODUCT = { productId: 'WS01-L-Green', price: 45.5, isInStock: 1 };

for (const [kind, script] of Object.entries(SCRIPTS)) {
  describe(`tracker (${kind})`, () => {
    let gateway;
    before(async () => (gateway = await gatewayStandIn()));
    after(() => gateway.close());

    // Every test gets its own site key, so late requests of earlier tests' pages are not seen.
    let tests = 0;
    beforeEach(() => {
      gateway.key = `pk_test_${++tests}`;
      gateway.requests = [];
      gateway.reply = () => [200, { accepted: 1, duplicates: 0, failed: [] }];
    });

    // A page of the shop on the stand-in gateway.
    function open(options = {}) {
      const dataset = { key: gateway.key, ...options.dataset };
      return page({ script, endpoint: gateway.url, ...options, dataset });
    }

    test('replays calls made before it loaded, in order, in the SPEC 5.1 shape', async () => {
      const p = open({
        stubCalls: [
          ['identify', { email: 'Ann@Example.com', phone: '+380 (50) 123-45-67' }],
          ['productViewed', PRODUCT, { currencyCode: 'USD' }],
          ['productCategoryViewed', 'Mugs'],
        ],
      });
      await until(() => gateway.requests.length === 1);
      const [request] = gateway.requests;
      assert.equal(request.path, '/v1/events');
      assert.equal(request.key, gateway.key);
      assert.equal(request.contentType, 'text/plain;charset=UTF-8');
      const types = request.events.map((e) => e.eventTypeKey);
      assert.deepEqual(types, ['productViewed', 'productCategoryViewed', 'pageViewed']);
      const [viewed, category, pageView] = request.events;
      assert.deepEqual(viewed.params, [
        { name: 'email', value: 'Ann@Example.com' },
        { name: 'phone', value: '+380501234567' },
        { name: 'product', value: '{"productId":"WS01-L-Green","price":45.5,"isInStock":1}' },
        { name: 'currencyCode', value: 'USD' },
      ]);
      assert.equal(params(category).category, '{"productCategoryId":"Mugs"}');
      assert.equal(params(pageView).page, '{"location":"https://shop.example/p/1"}');
      for (const event of request.events) {
        assert.equal(event.keyValue, 'Ann@Example.com');
        assert.equal(event.visitorId, request.events[0].visitorId);
        assert.ok(!Number.isNaN(Date.parse(event.occurredAt)));
      }
      assert.equal(new Set(request.events.map((e) => e.eventId)).size, 3);
      assert.match(viewed.visitorId, /^[0-9a-f-]{36}$/);
      await until(() => p.queue().length === 0);
    });

    test('cartUpdated makes a new recycleStateId for every change and keeps it', async () => {
      const p = open();
      p.gw('cartUpdated', [{ productId: 'A', quantity: 2, price: 3 }], { currencyCode: 'EUR' });
      const first = p.gw('recycleStateId');
      p.gw('cartUpdated', []);
      const second = p.gw('recycleStateId');
      assert.match(first, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.notEqual(first, second);
      assert.equal(p.cookies.get('gw_rsid'), second);
      await until(() => gateway.events().length === 3);
      const carts = gateway.events().filter((e) => e.eventTypeKey === 'cartUpdated');
      assert.deepEqual(params(carts[0]), {
        products: '[{"productId":"A","quantity":2,"price":3}]',
        recycleStateId: first,
        currencyCode: 'EUR',
      });
      assert.deepEqual(params(carts[1]), { products: '[]', recycleStateId: second });
      const reloaded = open({ storage: p.storage, cookies: p.cookies });
      assert.equal(reloaded.gw('recycleStateId'), second);
      await until(() => reloaded.queue().length === 0);
    });

    test('custom events, gw(fn) after load, and params that override identity', async () => {
      const p = open({ dataset: { autoPageviews: 'false' } });
      p.gw('identify', { email: 'a@b.example', pushToken: 'tok-1' });
      let ran = 0;
      p.gw(() => (ran = p.gw('recycleStateId') === undefined));
      p.gw('track', 'wishlistAdded', { productId: 'WS01', EMAIL: 'other@b.example', n: 2 });
      await until(() => gateway.events().length === 1);
      const [event] = gateway.events();
      assert.equal(ran, true);
      assert.equal(event.eventTypeKey, 'wishlistAdded');
      assert.deepEqual(event.params, [
        { name: 'EMAIL', value: 'other@b.example' },
        { name: 'pushToken', value: 'tok-1' },
        { name: 'productId', value: 'WS01' },
        { name: 'n', value: '2' },
      ]);
    });

    test('identify normalises phones and drops identifiers the gateway would refuse', async () => {
      const p = open({
        dataset: { autoPageviews: 'false' },
        stubCalls: [['identify', { email: 'poison@example.com', phone: ' 050/123 45 67' }]],
      });
      p.gw('track', 'one');
      p.gw('identify', { sms: '+38 050 123', phone: 'n/a', contactId: 'x'.repeat(257), n: 'Ann' });
      p.gw('identify', { about: 'y'.repeat(257) }); // any field over 256 characters
      p.gw('track', 'two');
      await until(() => gateway.events().length === 2);
      const [one, two] = gateway.events();
      assert.deepEqual(params(one), { email: 'poison@example.com', phone: '0501234567' });
      assert.deepEqual(params(two), { email: 'poison@example.com', sms: '+38050123', n: 'Ann' });
      assert.equal(p.warnings.length, 1);
      assert.match(p.warnings[0], /phone dropped/);
      // One stored by an earlier tracker would have every event refused: it goes on the next load.
      p.storage.setItem('gw_id', '{"email":"a@b.example","phone":"050/123 45 67","sms":"n/a"}');
      open({ storage: p.storage, cookies: p.cookies });
      await until(() => gateway.events().length === 3);
      const { page: _, ...ids } = params(gateway.events()[2]);
      assert.deepEqual(ids, { email: 'a@b.example', phone: '0501234567' });
    });

    test('the visitorId survives reloads; reset() starts a new anonymous visitor', async () => {
      const p = open();
      await until(() => gateway.events().length === 1);
      const visitor = gateway.events()[0].visitorId;
      const again = open({ storage: p.storage, cookies: p.cookies });
      again.gw('identify', { email: 'a@b.example' });
      again.gw('reset');
      again.gw('pageViewed', 'https://shop.example/after-logout');
      await until(() => gateway.events().length === 3);
      const [, reloaded, afterReset] = gateway.events();
      assert.equal(reloaded.visitorId, visitor);
      assert.notEqual(afterReset.visitorId, visitor);
      assert.equal(afterReset.keyValue, undefined);
      assert.deepEqual(Object.keys(params(afterReset)), ['page']);
    });

    test('in a sandboxed frame (storage and cookies throw) it works from memory', async () => {
      const p = open({ sandboxed: true });
      p.gw('identify', { email: 'a@b.example' });
      p.gw('cartUpdated', []);
      const rsid = p.gw('recycleStateId');
      assert.match(rsid, /^[0-9a-f-]{36}$/);
      await until(() => gateway.events().length === 2);
      const [view, cart] = gateway.events();
      assert.equal(view.visitorId, cart.visitorId);
      assert.deepEqual(params(cart), { email: 'a@b.example', products: '[]', recycleStateId: rsid });
      p.gw('reset');
      assert.deepEqual(p.warnings, []);
    });

    test('503 and 429 keep the events and retry them with backoff, same eventIds', async () => {
      const answers = [503, 429, 200];
      const p = open();
      gateway.reply = () => [answers.shift(), { accepted: 1, duplicates: 0, failed: [] }];
      await until(() => gateway.requests.length === 1);
      assert.equal(p.queue().length, 1);
      await until(() => gateway.requests.length === 3, 6000);
      const ids = gateway.requests.map((r) => r.events[0].eventId);
      assert.equal(new Set(ids).size, 1);
      await until(() => p.queue().length === 0);
      assert.deepEqual(p.warnings, []);
    });

    test('coming back online retries at once instead of waiting for the backoff', async () => {
      const answers = [503, 200];
      gateway.reply = () => [answers.shift(), { accepted: 1, duplicates: 0, failed: [] }];
      const p = open();
      await until(() => gateway.requests.length === 1);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the failure is handled
      p.dispatch('online');
      await until(() => gateway.requests.length === 2, 500);
      await until(() => p.queue().length === 0);
    });

    test('a request that is never answered is given up after 15 s and retried', async () => {
      let stalled = 0;
      gateway.reply = () => (stalled++ ? [200, { accepted: 1, duplicates: 0, failed: [] }] : null);
      const p = open({ clock: (ms) => (ms === 15e3 ? 200 : ms) });
      await until(() => gateway.requests.length === 1);
      p.gw('track', 'after');
      await until(() => gateway.events().length === 2, 3000);
      await until(() => p.queue().length === 0);
    });

    test('a gateway that is down: events are kept and sent by the next page', async () => {
      const down = page({ script, endpoint: 'http://127.0.0.1:9', dataset: { key: gateway.key } });
      down.gw('productViewed', PRODUCT);
      await until(() => down.queue().length === 2);
      down.dispatch('pagehide');
      assert.equal(down.beacons.length, 1);
      assert.equal(down.beacons[0].url, `http://127.0.0.1:9/v1/events?key=${gateway.key}`);
      assert.deepEqual(JSON.parse(down.beacons[0].body), down.queue());
      down.hide(); // mobile browsers may never fire pagehide
      assert.equal(down.beacons.length, 2);
      const queued = down.queue().map((e) => e.eventId);
      open({ storage: down.storage, cookies: down.cookies });
      await until(() => gateway.events().length === 3);
      assert.deepEqual(gateway.events().slice(0, 2).map((e) => e.eventId), queued);
    });

    test('a batch over 64 KiB of bytes (not characters) is sent without keepalive', async () => {
      // 20 x 1,500 CJK characters: ~31,000 UTF-16 units of JSON but ~91,000 bytes of UTF-8.
      const name = '\u9676\u74f7\u9a6c\u514b\u676f'.repeat(300);
      const stubCalls = [];
      for (let i = 0; i < 20; i++) stubCalls.push(['productViewed', { productId: `P${i}`, name }]);
      const p = open({ stubCalls, dataset: { autoPageviews: 'false' } });
      p.gw('track', 'later');
      await until(() => gateway.events().length === 21);
      assert.equal(JSON.parse(params(gateway.events()[0]).product).name, name);
      await until(() => p.queue().length === 0);
    });

    test('on page close all that is queued goes in beacons of at most 20 events, 64 KiB', async () => {
      const dataset = { key: gateway.key, autoPageviews: 'false' };
      const down = page({ script, endpoint: 'http://127.0.0.1:9', dataset });
      // Every fifth event has 30,000 bytes of text: two of them fill a beacon.
      for (let i = 0; i < 45; i++) down.gw('track', 'tick', { i, pad: i % 5 ? '' : '\u00e9'.repeat(15e3) });
      down.dispatch('pagehide');
      const handed = down.beacons.map((b) => JSON.parse(b.body));
      assert.deepEqual(handed.flat(), down.queue()); // the harness refuses a beacon over 64 KiB
      assert.equal(down.queue().length, 45);
      assert.ok(handed.every((events) => events.length <= 20));
      assert.ok(handed.length > 3);
    });

    test("another tab's write of the shared queue does not lose this page's events", async () => {
      const answers = [503];
      gateway.reply = () => [answers.shift() || 200, { accepted: 1, duplicates: 0, failed: [] }];
      const p = open({ dataset: { autoPageviews: 'false' } });
      p.gw('track', 'mine');
      await until(() => gateway.requests.length === 1); // 503: it waits for the retry
      // Another tab writes the queue as it read it before 'mine' was added (its own event only).
      const theirs = { ...p.queue()[0], eventId: 'theirs', eventTypeKey: 'theirs' };
      p.storage.setItem('gw_q', JSON.stringify([theirs]));
      p.gw('track', 'later');
      assert.deepEqual(p.queue().map((e) => e.eventTypeKey), ['theirs', 'mine', 'later']);
      await until(() => gateway.requests.length === 2, 3000);
      assert.deepEqual(gateway.requests[1].events.map((e) => e.eventTypeKey), ['mine', 'later']);
      // Delivered events leave the stored queue; the other tab's stays there for it.
      await until(() => p.queue().length === 1);
      assert.equal(p.queue()[0].eventId, 'theirs');
    });

    test('while the gateway cannot be reached the newest 100 events are kept', async () => {
      const p = page({ script, endpoint: 'http://127.0.0.1:9', dataset: { key: 'pk_test' } });
      for (let i = 0; i < 120; i++) p.gw('track', 'tick', { i });
      await until(() => p.queue().length === 100); // the first send failed
      assert.equal(params(p.queue()[0]).i, '20');
      p.gw('track', 'tick', { i: 120 });
      const queue = p.queue();
      assert.equal(queue.length, 100);
      assert.equal(params(queue[0]).i, '21');
      assert.equal(params(queue[99]).i, '120');
    });

    test('a burst of events while a batch is in flight is all sent', async () => {
      const p = open({ dataset: { autoPageviews: 'false' } });
      for (let i = 0; i < 150; i++) p.gw('track', 'impression', { i });
      await until(() => p.queue().length === 0);
      const sent = gateway.events().map((e) => Number(params(e).i));
      assert.deepEqual(sent, [...Array(150).keys()]);
    });

    test('other 4xx answers drop the events and are reported once', async () => {
      const p = open();
      gateway.reply = () => [400, { error: 'invalid_field', message: 'params.product is bad' }];
      await until(() => gateway.requests.length === 1 && p.queue().length === 0);
      gateway.reply = () => [200, { accepted: 0, duplicates: 0, failed: [{ index: 0 }] }];
      p.gw('productViewed', { price: 1 });
      await until(() => gateway.requests.length === 2 && p.queue().length === 0);
      assert.equal(p.warnings.length, 1);
      assert.match(p.warnings[0], /events refused \(400\) params\.product is bad/);
    });

    test('413 sends the batch in halves; an event refused alone is dropped', async () => {
      const stored = [];
      gateway.reply = (r) => {
        if (r.events.length > 3 || r.events.some((e) => params(e).big)) {
          return [413, { error: 'body_too_large', message: 'body over max_body_bytes' }];
        }
        stored.push(...r.events.map((e) => params(e).i));
        return [200, { accepted: r.events.length, duplicates: 0, failed: [] }];
      };
      const stubCalls = [];
      for (let i = 0; i < 10; i++) stubCalls.push(['track', 'tick', { i, big: i === 4 || null }]);
      const p = open({ stubCalls, dataset: { autoPageviews: 'false' } });
      await until(() => p.queue().length === 0);
      assert.deepEqual(stored, ['0', '1', '2', '3', '5', '6', '7', '8', '9']);
      assert.equal(p.warnings.length, 1);
      assert.match(p.warnings[0], /events refused \(413\) body over max_body_bytes/);
      // Once the queue is empty, batches are whole again.
      gateway.requests = [];
      for (let i = 0; i < 3; i++) p.gw('track', 'tick', { i });
      await until(() => p.queue().length === 0);
      assert.deepEqual(gateway.requests.map((r) => r.events.length), [1, 2]);
    });

    test('history navigations send page views; data-auto-pageviews="false" stops them', async () => {
      const p = open();
      p.context.history.pushState({}, '', '/cart');
      p.context.history.pushState({}, '', '/cart');
      p.location.href = 'https://shop.example/p/1';
      p.dispatch('popstate');
      await until(() => gateway.events().length === 3);
      const locations = gateway.events().map((e) => JSON.parse(params(e).page).location);
      assert.deepEqual(locations, [
        'https://shop.example/p/1',
        'https://shop.example/cart',
        'https://shop.example/p/1',
      ]);
      gateway.requests = [];
      const manual = open({ dataset: { autoPageviews: 'false' } });
      manual.context.history.pushState({}, '', '/other');
      manual.gw('pageViewed');
      await until(() => gateway.events().length === 1);
      assert.equal(params(gateway.events()[0]).page, '{"location":"https://shop.example/other"}');
    });

    test('page views: a relative location is resolved, one over 4096 characters cut', async () => {
      const p = open({ href: `https://shop.example/search?q=${'x'.repeat(5000)}#top` });
      p.gw('pageViewed', '/product/42');
      const path = `https://shop.example/p/${'y'.repeat(5000)}`;
      p.context.history.pushState({}, '', path);
      p.dispatch('popstate'); // the same location: no second view
      await until(() => gateway.events().length === 3);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const locations = gateway.events().map((e) => JSON.parse(params(e).page).location);
      assert.deepEqual(locations, [
        'https://shop.example/search', // the query string goes first
        'https://shop.example/product/42',
        path.slice(0, 4096),
      ]);
    });

    test('never throws into the page', async () => {
      const p = open({ dataset: { autoPageviews: 'false' } });
      const loop = {};
      loop.self = loop;
      assert.equal(p.gw('noSuchMethod'), undefined);
      assert.equal(p.gw('track', 'x', loop), undefined);
      assert.equal(p.warnings.length, 2);
      assert.deepEqual(p.queue(), []);
      // Without fetch it does nothing: the stub keeps buffering, nothing is sent.
      const old = open({ fetch: null, stubCalls: [['pageViewed']] });
      assert.equal(old.context.gw.q.length, 1);
      old.gw('pageViewed');
      assert.equal(old.context.gw.q.length, 2);
      // Without a key it says so and sends nothing.
      const keyless = open({ dataset: { key: '' } });
      assert.match(keyless.warnings[0], /data-key/);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(gateway.requests.length, 0);
    });

    test('calls that cannot be a method name do not throw, also before it loaded', async () => {
      const hostile = [Symbol('x'), Object.create(null), { toString: () => { throw Error(); } }];
      const p = open({
        dataset: { autoPageviews: 'false' },
        stubCalls: [...hostile.map((method) => [method]), ['track', 'after']],
      });
      for (const method of hostile) assert.equal(p.gw(method), undefined);
      assert.equal(p.warnings.length, 6);
      assert.match(p.warnings[0], /gw\(\) failed Symbol\(x\)/);
      await until(() => gateway.events().length === 1);
      assert.equal(gateway.events()[0].eventTypeKey, 'after');
      // A page whose console throws gets nothing thrown either.
      p.context.console.warn = () => {
        throw Error('console');
      };
      assert.equal(p.gw(Symbol('y')), undefined);
    });

    // What a page of the site holds: its localStorage items and cookies.
    const held = (p) => [...p.storage.items.keys(), ...p.cookies.keys()];
    const quiet = (ms = 100) => new Promise((resolve) => setTimeout(resolve, ms));

    test('data-consent="required": nothing sent or stored until granted, then all of it', async () => {
      const email = 'ann@example.com';
      const p = open({
        dataset: { consent: 'required' },
        stubCalls: [['identify', { email }], ['productViewed', PRODUCT]],
      });
      p.gw('cartUpdated', [{ productId: 'A', quantity: 1, price: 3 }]);
      assert.equal(p.gw('recycleStateId'), undefined);
      p.context.history.pushState({}, '', '/cart');
      p.dispatch('pagehide');
      await quiet();
      assert.equal(gateway.requests.length, 0);
      assert.deepEqual(p.beacons, []);
      assert.deepEqual(held(p), []);

      p.gw('consent', 'granted');
      await until(() => gateway.events().length === 4);
      assert.equal(gateway.requests.length, 1); // what waited leaves in one request, in order
      const events = gateway.events();
      assert.deepEqual(
        events.map((e) => e.eventTypeKey),
        ['productViewed', 'pageViewed', 'cartUpdated', 'pageViewed'],
      );
      assert.equal(params(events[3]).page, '{"location":"https://shop.example/cart"}');
      for (const event of events) assert.equal(event.keyValue, email);
      const rsid = p.gw('recycleStateId');
      assert.equal(params(events[2]).recycleStateId, rsid);
      assert.equal(p.storage.getItem('gw_vid'), events[0].visitorId);
      assert.equal(p.cookies.get('gw_rsid'), rsid);
      await until(() => p.queue().length === 0);
      // Once granted, calls go as without data-consent.
      p.gw('track', 'later');
      await until(() => gateway.events().length === 5);
    });

    test('consent is asked again on every page: a grant in the stub goes first', async () => {
      const first = open({ dataset: { consent: 'required' }, stubCalls: [['consent', 'granted']] });
      await until(() => gateway.events().length === 1);
      const visitor = gateway.events()[0].visitorId;
      // The next page: until its grant it sends nothing, then it is the same visitor.
      const { storage, cookies } = first;
      const next = open({ storage, cookies, dataset: { consent: 'required' } });
      await quiet();
      assert.equal(gateway.events().length, 1);
      next.gw('consent', 'granted');
      await until(() => gateway.events().length === 2);
      assert.equal(gateway.events()[1].visitorId, visitor);
    });

    test('withdrawn consent forgets queue, ids, cart and visitor; later calls dropped', async () => {
      const p = open();
      p.gw('identify', { email: 'bo@example.com' });
      p.gw('cartUpdated', []);
      await until(() => gateway.events().length === 2);
      const visitor = gateway.events()[0].visitorId;
      gateway.reply = () => [503, {}]; // what is sent from now on stays queued
      p.gw('track', 'queued');
      await until(() => gateway.requests.length === 3 && p.queue().length === 1);
      assert.deepEqual(held(p).sort(), ['gw_id', 'gw_q', 'gw_rsid', 'gw_rsid', 'gw_vid']);

      p.gw('consent', 'denied');
      assert.deepEqual(held(p), []);
      assert.equal(p.gw('recycleStateId'), undefined);
      p.gw('identify', { email: 'bo@example.com' });
      p.gw('track', 'after');
      p.dispatch('pagehide');
      gateway.reply = () => [200, { accepted: 1, duplicates: 0, failed: [] }];
      await quiet(1500); // past the 1 s retry of the queued event
      assert.equal(gateway.requests.length, 3);
      assert.deepEqual(p.beacons, []);
      assert.deepEqual(held(p), []);

      // Granted again: a new anonymous visitor, nothing of before.
      p.gw('consent', 'granted');
      p.gw('track', 'again');
      await until(() => gateway.requests.length === 4);
      const [again] = gateway.requests[3].events; // the 503 answered 'queued' is not sent again
      assert.equal(again.eventTypeKey, 'again');
      assert.notEqual(again.visitorId, visitor);
      assert.equal(again.keyValue, undefined);
    });

    test('denied before it was granted: the calls that waited are dropped', async () => {
      const p = open({ dataset: { consent: 'required' }, stubCalls: [['track', 'before']] });
      p.gw('consent', 'denied');
      p.gw('consent', 'granted');
      p.gw('track', 'after');
      await until(() => gateway.events().length === 1);
      await quiet();
      assert.deepEqual(gateway.events().map((e) => e.eventTypeKey), ['after']);
    });

    test('data-respect-gpc="true": Global Privacy Control is a denial no call lifts', async () => {
      const before = open();
      await until(() => before.queue().length === 0 && gateway.events().length === 1);
      assert.notDeepEqual(held(before), []);
      const p = open({
        gpc: true,
        dataset: { respectGpc: 'true' },
        storage: before.storage,
        cookies: before.cookies,
      });
      p.gw('consent', 'granted');
      p.gw('track', 'x');
      await quiet();
      assert.equal(gateway.events().length, 1);
      assert.deepEqual(held(p), []); // what an earlier page kept is gone too
      // Without data-respect-gpc the signal is the site's to weigh: tracking goes on.
      open({ gpc: true });
      await until(() => gateway.events().length === 2);
    });

    test('a second copy of the script on the page does not double page views', async () => {
      const p = open();
      const { readFileSync } = require('node:fs');
      require('node:vm').runInContext(readFileSync(script, 'utf8'), p.context);
      await until(() => gateway.events().length >= 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(gateway.events().length, 1);
    });
  });
}
