// The gateway's browser tracker. Installed with the two-line snippet in the README:
//   <script>window.gw=window.gw||function(){(gw.q=gw.q||[]).push(arguments)}</script>
//   <script async src="https://GATEWAY/js/tracker.js" data-key="pk_..."></script>
// It must never break the host page: every entry point catches its own errors.
((w, d) => {
  const script = d.currentScript || d.querySelector('script[data-key]');
  const stub = w.gw;
  // Without fetch there is no reliable way to deliver; without a script tag there is no key.
  // A second copy of the script on the page would double every page view.
  if (!w.fetch || !script || (stub && stub.loaded)) return;

  const data = script.dataset;
  const key = data.key;
  const url = (data.endpoint || new URL(script.src).origin).replace(/\/$/, '') +
    '/v1/events?key=' + encodeURIComponent(key);
  const QUEUE = 'gw_q';
  // Events kept while the gateway cannot be reached (the oldest go first). Not while it can: a
  // burst while a batch is in flight waits for the next batches, however many there are.
  const MAX_QUEUE = 100;
  const MAX_AGE = 864e5; // the gateway's default dedup window: older retries could count twice
  const BATCH = 20;
  // Browsers refuse a keepalive fetch or a beacon over 64 KiB of body; bytes, not characters.
  const LIMIT = 65536;
  const TIMEOUT = 15e3; // a request not answered by then (a stalled connection) counts as no answer
  const PHONE = /^(phone(number)?|sms)$/i;
  // Consent (docs/snippet.md#consent): 1 granted, 0 not yet given, -1 denied. Until it is granted
  // the tracker has not started: the page's calls wait in memory (`waiting`), nothing is sent, and
  // nothing is written to storage or cookies. Global Privacy Control, where the site respects it,
  // is a denial that no call lifts.
  const gpc = data.respectGpc == 'true' && navigator.globalPrivacyControl;
  let consent = gpc ? -1 : data.consent == 'required' ? 0 : 1;
  let waiting = [];
  let memory = {}; // stands in for localStorage where it is blocked (sandboxed frames, settings)
  let busy, timer, warned, lastPage, visitorId;
  let hold = 0; // while above 0, calls being replayed: they leave together afterwards
  let delay = 0;
  let size = BATCH; // events per request; halved on 413 until the queue is empty again

  const get = (name) => {
    try {
      return localStorage.getItem(name);
    } catch {
      return memory[name];
    }
  };

  // Nothing is written once consent is withdrawn, also by a request that was under way.
  const put = (name, value) => {
    if (consent < 1) return;
    memory[name] = value;
    try {
      localStorage.setItem(name, value);
      return 1;
    } catch {}
  };

  const parse = (name, fallback) => {
    try {
      return JSON.parse(get(name)) || fallback;
    } catch {
      return fallback;
    }
  };

  const toText = (value) => (typeof value == 'string' ? value : JSON.stringify(value));

  const bytes = (text) => new Blob([text]).size;

  // document.cookie throws in a sandboxed frame without allow-same-origin (so does localStorage:
  // there everything lives in `memory`, for the page's life).
  const cookie = (name, value, seconds) => {
    try {
      if (value == null) return (d.cookie.match('(?:^|; )' + name + '=([^;]+)') || [])[1];
      d.cookie = name + '=' + value + ';path=/;max-age=' + seconds + ';samesite=lax';
    } catch {}
  };

  // A v4 UUID (crypto.randomUUID exists only on https pages): a blob URL ends with one, from the
  // browser's secure random source (File API, "generate a new blob URL"); fewer bytes to ship.
  const uuid = () => {
    const blob = URL.createObjectURL(new Blob());
    URL.revokeObjectURL(blob);
    return blob.slice(-36);
  };

  // Arguments are passed as they are: building a string of them can throw (a Symbol, an object
  // without or with a throwing toString), and so can a page's own console.warn.
  const log = (...args) => {
    try {
      console.warn('gateway tracker:', ...args);
    } catch {}
  };

  const warn = (...args) => {
    if (!warned) log(...args);
    warned = 1;
  };

  const newVisitor = () => {
    const id = uuid();
    if (!put('gw_vid', id)) cookie('gw_vid', id, 63072000);
    return id;
  };

  const fresh = (event) => new Date() - new Date(event.occurredAt) < MAX_AGE;

  const load = () => parse(QUEUE, []).filter(fresh);

  // This page's queue: its events not yet answered for, and those earlier pages left in
  // localStorage. Storage keeps a copy for the next page, merged by eventId with what other tabs
  // keep there (they write it too, possibly from an older copy: what this page queued cannot be
  // lost that way); events answered for (`sent`) leave it. While a failed send waits for its
  // retry (`timer`) the queue is cut to MAX_QUEUE.
  let queue = [];

  const save = (sent = []) => {
    queue = queue.filter(fresh);
    const mine = queue.map((event) => event.eventId);
    const all = load()
      .filter((event) => !mine.includes(event.eventId) && !sent.includes(event.eventId))
      .concat(queue);
    if (timer) queue = queue.slice(-MAX_QUEUE);
    put(QUEUE, JSON.stringify(timer ? all.slice(-MAX_QUEUE) : all));
  };

  // One event in the SPEC 5.1 shape: params as name/value, non-string values as JSON strings.
  // Identity params go first; an event's own param of the same name (any case) wins.
  const send = (type, params) => {
    const ids = parse('gw_id', {});
    const byName = {};
    for (const source of [ids, params]) {
      for (const name in source) {
        const value = source[name];
        if (value != null) {
          byName[name.toLowerCase()] = {
            name,
            value: toText(value),
          };
        }
      }
    }
    const event = {
      eventTypeKey: type,
      eventId: uuid(),
      visitorId,
      occurredAt: new Date().toISOString(),
      params: Object.values(byName),
      keyValue: ids.email || ids.phone, // left out of the JSON while neither is known
    };
    queue.push(event);
    save();
    flush();
  };

  // An event leaves the queue only once the gateway answered for it, so events outlive offline
  // spells, gateway restarts and (in storage) closed pages. Tabs that loaded the same stored
  // events may both send them; the gateway answers repeats of an eventId as duplicates.
  const flush = async () => {
    if (busy || timer || hold) return;
    const batch = queue.slice(0, size);
    if (!batch.length) return;
    busy = 1;
    const body = JSON.stringify(batch);
    let done;
    try {
      // A string body goes as text/plain: a "simple" request, so no CORS preflight. keepalive
      // lets the request outlive the page; a bigger body goes without it rather than not at all.
      const response = await fetch(url, {
        method: 'POST',
        body,
        keepalive: bytes(body) <= LIMIT,
        // Browsers before 2022 lack AbortSignal.timeout: there a stalled request waits for the
        // browser's own network timeout.
        signal: AbortSignal.timeout && AbortSignal.timeout(TIMEOUT),
      });
      const status = response.status;
      if (status == 413 && batch.length > 1) {
        // Too big together, not necessarily alone: send the batch in halves.
        size = (batch.length + 1) >> 1;
        done = 2;
      } else if (status != 429 && status < 500) {
        // 429 and 5xx are worth retrying; any other answer will not change on a retry.
        done = 1;
        const answer = await response.json();
        // A refusal of the whole request, or of some events in it (`failed`).
        const failed = (answer.failed || [])[0] || (!response.ok && answer);
        if (failed) warn('events refused (' + status + ')', failed.message);
      }
    } catch {}
    busy = 0;
    if (done) {
      if (done < 2) {
        const sent = batch.map((event) => event.eventId);
        queue = queue.filter((event) => !sent.includes(event.eventId));
        save(sent);
        if (!queue.length) size = BATCH;
      }
      delay = 0;
      flush();
    } else {
      delay = Math.min(delay * 2 || 1e3, 6e4);
      timer = setTimeout(retry, delay);
      save();
    }
  };

  const retry = () => {
    clearTimeout(timer);
    timer = 0;
    flush();
  };

  // The page is going away (or may be killed in the background): hand what is still queued to
  // the browser, which sends it even after the page is gone. The events stay queued until a
  // fetch is answered, so a beacon that got lost is retried on the next page.
  // A beacon is refused over 64 KiB: as many as it takes, of at most BATCH events each (a single
  // bigger event is tried alone and stays queued for the next page).
  const beacon = () => {
    let rest = queue;
    while (rest.length && navigator.sendBeacon) {
      let n = 0;
      for (let size = 1; n < rest.length && n < BATCH; n++) {
        size += bytes(JSON.stringify(rest[n])) + 1;
        if (n && size > LIMIT) break;
      }
      navigator.sendBeacon(url, JSON.stringify(rest.slice(0, n)));
      rest = rest.slice(n);
    }
  };

  // The gateway refuses a location over 4096 characters: without the query string, then cut.
  const pageViewed = (location) => {
    lastPage = location ? new URL(location, w.location.href).href : w.location.href;
    location = lastPage.length > 4096 ? lastPage.split(/[?#]/)[0].slice(0, 4096) : lastPage;
    send('pageViewed', { page: { location } });
  };

  // Through gw(), so that a page view before consent waits with its location.
  const navigated = () => {
    if (w.location.href != lastPage) gw('pageViewed', (lastPage = w.location.href));
  };

  // The gateway refuses an event with an identifier param over 256 characters or a bad phone, so
  // one such value kept here would have every later event refused: it is dropped instead. Any
  // field over 256 characters is (identify is for identity fields; naming the identifier params
  // here cost more bytes than the snippet's budget has).
  const identify = (fields) => {
    const ids = parse('gw_id', {});
    for (const name in fields) {
      let value = fields[name];
      if (value != null) {
        value = toText(value);
        // Phones are digits with an optional leading +; shops often format them.
        const phone = PHONE.test(name);
        if (phone) value = value.trim().replace(/(?!^\+)\D/g, '');
        if (value.length > 256 || (phone && !/^\+?\d{3,20}$/.test(value))) {
          warn('identify: ' + name + ' dropped', fields[name]);
          value = null;
        }
      }
      ids[name] = value;
    }
    put('gw_id', JSON.stringify(ids));
  };

  // Withdrawn consent: what the tracker holds goes from memory, storage and cookies (the queue,
  // the identifiers, the cart id, the visitor id); a later grant starts a new anonymous visitor.
  const forget = () => {
    queue = waiting = [];
    memory = {};
    for (const name of ['gw_q', 'gw_id', 'gw_vid', 'gw_rsid']) {
      try {
        localStorage.removeItem(name);
      } catch {}
      cookie(name, '', 0);
    }
  };

  // At load, or once consent is granted.
  const start = () => {
    visitorId = get('gw_vid') || cookie('gw_vid') || newVisitor();
    queue = load();
    identify(parse('gw_id', {})); // drops a bad identifier an earlier version of the tracker kept
  };

  // Replayed calls leave in one request.
  const replay = (calls) => {
    hold++;
    for (const call of calls) gw(...call);
    hold--;
    flush();
  };

  const api = {
    identify,
    reset: () => {
      put('gw_id', '{}');
      put('gw_rsid', '');
      cookie('gw_rsid', '', 0);
      visitorId = newVisitor();
    },
    // Anything but 'granted' is a denial.
    consent: (choice) => {
      if (gpc) return;
      if (choice != 'granted') {
        consent = -1;
        forget();
      } else if (consent < 1) {
        consent = 1;
        start();
        replay(waiting);
        waiting = [];
      }
    },
    pageViewed,
    productViewed: (product, options) => send('productViewed', { product, ...options }),
    productCategoryViewed: (productCategoryId) =>
      send('productCategoryViewed', { category: { productCategoryId } }),
    cartUpdated: (products, options) => {
      const recycleStateId = uuid();
      put('gw_rsid', recycleStateId);
      // A first-party cookie, so the shop's back-end sees the id with the checkout request.
      cookie('gw_rsid', recycleStateId, 2592000);
      send('cartUpdated', { products: products || [], recycleStateId, ...options });
    },
    recycleStateId: () => get('gw_rsid') || undefined,
    track: send,
  };

  // gw('method', args...) calls a method and returns its result; gw(fn) calls fn once loaded.
  // Before consent calls wait for it (and are dropped once it is denied).
  const gw = (method, ...args) => {
    try {
      if (consent > 0 || method == 'consent') {
        return typeof method == 'function' ? method() : api[method](...args);
      }
      if (!consent) waiting.push([method, ...args]);
    } catch (e) {
      log('gw() failed', method, e);
    }
  };
  gw.loaded = 1;

  // Listeners and the history patch run outside gw(): they catch on their own.
  const safe = (fn) => () => {
    try {
      fn();
    } catch {}
  };

  try {
    if (!key) return warn('no data-key');
    w.gw = gw;
    hold++; // replayed calls and the first page view leave in one request
    if (consent > 0) start();
    if (consent < 0) forget(); // Global Privacy Control: nothing kept from earlier pages either
    replay((stub && stub.q) || []);
    if (data.autoPageviews != 'false') {
      navigated();
      const push = history.pushState;
      history.pushState = function () {
        const result = push.apply(this, arguments);
        safe(navigated)();
        return result;
      };
      w.addEventListener('popstate', safe(navigated));
    }
    w.addEventListener('pagehide', safe(beacon));
    d.addEventListener('visibilitychange', safe(() => d.visibilityState == 'hidden' && beacon()));
    w.addEventListener('online', safe(retry));
    hold--;
    flush();
  } catch (e) {
    log('not started', e);
  }
})(window, document);
