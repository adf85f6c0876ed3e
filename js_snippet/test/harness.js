// A page for the tracker in node: a vm context with the few browser APIs the tracker touches,
// Node's own fetch, and a real HTTP server on 127.0.0.1 standing in for the gateway so that
// statuses the real gateway rarely gives (429, 503) can be played. The end-to-end tests in
// tests/test_snippet_browser.py run the same script in Chromium against the real gateway.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const vm = require('node:vm');

const ROOT = path.join(__dirname, '..', '..');
// Every test runs against the source and the committed build, so a stale build fails too.
const SCRIPTS = {
  source: path.join(ROOT, 'js_snippet', 'src', 'tracker.js'),
  build: path.join(ROOT, 'gateway', 'static', 'tracker.js'),
};
const STUB = 'window.gw=window.gw||function(){(gw.q=gw.q||[]).push(arguments)}';
// Chromium refuses a keepalive fetch or a beacon whose body is over 64 KiB (of bytes, not
// characters): the fetch rejects as a network error does, sendBeacon returns false.
const KEEPALIVE_LIMIT = 65536;
const chromiumFetch = (url, init) =>
  init && init.keepalive && Buffer.byteLength(init.body) > KEEPALIVE_LIMIT
    ? Promise.reject(new TypeError('Failed to fetch'))
    : globalThis.fetch(url, init);

// Answers with `reply(request) -> [status, body]` (200 accepted by default; null: never) and keeps the
// requests made with the current test's `key` (pages of earlier tests may still be retrying).
async function gatewayStandIn() {
  const server = {
    requests: [],
    reply: () => [200, { accepted: 1, duplicates: 0, failed: [] }],
  };
  server.http = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      const request = {
        path: url.pathname,
        key: url.searchParams.get('key'),
        contentType: req.headers['content-type'],
        events: JSON.parse(Buffer.concat(chunks).toString()),
      };
      const current = request.key === server.key;
      if (current) server.requests.push(request);
      const answer = current ? server.reply(request) : [200, {}];
      if (!answer) return; // a gateway (or proxy) that took the request and never answers
      const [status, body] = answer;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise((resolve) => server.http.listen(0, '127.0.0.1', resolve));
  server.url = `http://127.0.0.1:${server.http.address().port}`;
  // The events that arrived, each once: pages sharing a queue (tabs) may send one twice, and
  // the gateway counts an eventId once.
  server.events = () => [
    ...new Map(server.requests.flatMap((r) => r.events).map((e) => [e.eventId, e])).values(),
  ];
  server.close = () => {
    server.http.closeAllConnections();
    return new Promise((resolve) => server.http.close(resolve));
  };
  return server;
}

class Storage {
  constructor() {
    this.items = new Map();
  }
  getItem(name) {
    return this.items.has(name) ? this.items.get(name) : null;
  }
  setItem(name, value) {
    this.items.set(name, String(value));
  }
  removeItem(name) {
    this.items.delete(name);
  }
}

// One page load. Pass the `storage`/`cookies` of an earlier page to model a reload, and
// `clock: (ms) => ms` to shorten the page's timers (the tracker's 15 s request timeout).
// `sandboxed: true` is a frame without allow-same-origin: localStorage and cookies throw.
// `gpc: true` is a browser sending the Global Privacy Control signal.
function page(options) {
  const o = {
    href: 'https://shop.example/p/1',
    storage: new Storage(),
    cookies: new Map(),
    fetch: chromiumFetch,
    dataset: {},
    stubCalls: [],
    clock: (ms) => ms,
    ...options,
  };
  const listeners = {};
  const warnings = [];
  const beacons = [];
  const location = { href: o.href };
  const document = {
    currentScript: { src: `${o.endpoint}/js/tracker.js`, dataset: o.dataset },
    visibilityState: 'visible',
    querySelector: () => null,
    addEventListener: (name, fn) => (listeners[name] = listeners[name] || []).push(fn),
    get cookie() {
      if (o.sandboxed) throw new DOMException('The document is sandboxed', 'SecurityError');
      return [...o.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    },
    set cookie(text) {
      if (o.sandboxed) throw new DOMException('The document is sandboxed', 'SecurityError');
      const [pair, ...attributes] = text.split(';');
      const [name, value] = pair.split('=');
      if (attributes.includes('max-age=0')) o.cookies.delete(name);
      else o.cookies.set(name, value);
    },
  };
  const window = {
    document,
    location,
    get localStorage() {
      if (o.sandboxed) throw new DOMException('The document is sandboxed', 'SecurityError');
      return o.storage;
    },
    crypto: require('node:crypto').webcrypto, // not a global before node 19
    URL,
    Blob,
    AbortController,
    AbortSignal: { timeout: (ms) => AbortSignal.timeout(o.clock(ms)) },
    // Pages are never closed: their retry timers must not keep node's test process alive.
    setTimeout: (fn, ms) => setTimeout(fn, o.clock(ms)).unref(),
    clearTimeout,
    console: { warn: (...args) => warnings.push(require('node:util').format(...args)) },
    navigator: {
      globalPrivacyControl: Boolean(o.gpc),
      sendBeacon: (url, body) =>
        Buffer.byteLength(body) <= KEEPALIVE_LIMIT && (beacons.push({ url, body }), true),
    },
    history: {
      pushState(state, title, url) {
        location.href = new URL(url, location.href).href;
      },
    },
    addEventListener: document.addEventListener,
  };
  if (o.fetch) window.fetch = o.fetch;
  window.window = window;
  const context = vm.createContext(window);
  vm.runInContext(STUB, context);
  for (const call of o.stubCalls) context.gw(...call);
  vm.runInContext(fs.readFileSync(o.script, 'utf8'), context);
  return {
    context,
    storage: o.storage,
    cookies: o.cookies,
    warnings,
    beacons,
    location,
    gw: (...args) => context.gw(...args),
    queue: () => JSON.parse(o.storage.getItem('gw_q') || '[]'),
    dispatch(name) {
      for (const fn of listeners[name] || []) fn({});
    },
    hide() {
      document.visibilityState = 'hidden';
      this.dispatch('visibilitychange');
    },
  };
}

async function until(check, timeout = 5000) {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${check}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const params = (event) => Object.fromEntries(event.params.map((p) => [p.name, p.value]));

module.exports = { SCRIPTS, KEEPALIVE_LIMIT, Storage, gatewayStandIn, page, params, until };
