// The gateway's browser tracker. Installed with the two-line snippet in the README:
//   <script>window.gw=window.gw||function(){(gw.q=gw.q||[]).push(arguments)}</script>
//   <script async src="https://GATEWAY/js/tracker.js" data-key="pk_..."></script>
// It must never break the host page: every entry point catches its own errors.
(function (w, d) {
  var script = d.currentScript || d.querySelector('script[data-key]');
  var stub = w.gw;
  // Without fetch there is no reliable way to deliver; without a script tag there is no key.
  // A second copy of the script on the page would double every page view.
  if (!w.fetch || !script || (stub && stub.loaded)) return;

  var data = script.dataset;
  var key = data.key;
  var url = (data.endpoint || new URL(script.src).origin).replace(/\/$/, '') +
    '/v1/events?key=' + encodeURIComponent(key || '');
  var QUEUE = 'gw_q';
  var MAX_QUEUE = 100; // events kept while the gateway is unreachable; the oldest go first
  var MAX_AGE = 864e5; // the gateway's default dedup window: older retries could count twice
  var BATCH = 20; // keeps a request well under the 64 KB keepalive/sendBeacon limit
  var memory = {}; // stands in for localStorage where it is blocked (sandboxed frames, settings)
  var busy, timer, hold, warned, lastPage;
  var delay = 0;

  function get(name) {
    try {
      return localStorage.getItem(name);
    } catch (e) {
      return memory[name];
    }
  }

  function put(name, value) {
    memory[name] = value;
    try {
      localStorage.setItem(name, value);
      return 1;
    } catch (e) {}
  }

  function cookie(name, value, seconds) {
    d.cookie = name + '=' + value + ';path=/;max-age=' + seconds + ';samesite=lax';
  }

  function uuid() {
    return ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g, function (c) {
      return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }

  function warn(message, detail) {
    if (!warned) console.warn('gateway tracker: ' + message, detail);
    warned = 1;
  }

  function newVisitor() {
    var id = uuid();
    if (!put('gw_vid', id)) cookie('gw_vid', id, 63072000);
    return id;
  }

  var visitorId = get('gw_vid') || (d.cookie.match(/(?:^|; )gw_vid=([^;]+)/) || [])[1] ||
    newVisitor();

  function identity() {
    try {
      return JSON.parse(get('gw_id')) || {};
    } catch (e) {
      return {};
    }
  }

  function load() {
    var queue;
    try {
      queue = JSON.parse(get(QUEUE)) || [];
    } catch (e) {
      queue = [];
    }
    return queue.filter(function (event) {
      return Date.now() - Date.parse(event.occurredAt) < MAX_AGE;
    });
  }

  function save(queue) {
    put(QUEUE, JSON.stringify(queue.slice(-MAX_QUEUE)));
  }

  // One event in the SPEC 5.1 shape: params as name/value, non-string values as JSON strings.
  // Identity params go first; an event's own param of the same name (any case) wins.
  function send(type, params) {
    var ids = identity();
    var byName = {};
    [ids, params].forEach(function (source) {
      for (var name in source) {
        var value = source[name];
        if (value != null) {
          byName[name.toLowerCase()] = {
            name: name,
            value: typeof value == 'string' ? value : JSON.stringify(value),
          };
        }
      }
    });
    var event = {
      eventTypeKey: type,
      eventId: uuid(),
      visitorId: visitorId,
      occurredAt: new Date().toISOString(),
      params: Object.keys(byName).map(function (name) {
        return byName[name];
      }),
    };
    if (ids.email || ids.phone) event.keyValue = ids.email || ids.phone;
    var queue = load();
    queue.push(event);
    save(queue);
    flush();
  }

  // The queue in localStorage is the truth: an event leaves it only once the gateway answered
  // for it, so events outlive offline spells, gateway restarts and closed pages. Several tabs
  // may send the same events; the gateway answers repeats of an eventId as duplicates.
  function flush() {
    if (busy || timer || hold) return;
    var batch = load().slice(0, BATCH);
    if (!batch.length) return;
    busy = 1;
    var body = JSON.stringify(batch);
    var done;
    // A string body goes as text/plain: a "simple" request, so no CORS preflight.
    fetch(url, { method: 'POST', body: body, keepalive: body.length < 6e4 })
      .then(function (response) {
        var status = response.status;
        // 429 and 5xx are worth retrying; any other answer will not change on a retry.
        done = status != 429 && status < 500;
        return done && response.json().then(function (answer) {
          if (!response.ok) warn('events refused (' + status + ')', answer.message);
          else if (answer.failed && answer.failed.length) {
            warn('events refused', answer.failed[0].message);
          }
        });
      })
      .catch(function () {})
      .then(function () {
        busy = 0;
        if (done) {
          var sent = batch.map(function (event) {
            return event.eventId;
          });
          save(load().filter(function (event) {
            return sent.indexOf(event.eventId) < 0;
          }));
          delay = 0;
          flush();
        } else {
          delay = Math.min(delay * 2 || 1e3, 6e4);
          timer = setTimeout(retry, delay);
        }
      });
  }

  function retry() {
    clearTimeout(timer);
    timer = 0;
    flush();
  }

  // The page is going away (or may be killed in the background): hand what is still queued to
  // the browser, which sends it even after the page is gone. The events stay queued until a
  // fetch is answered, so a beacon that got lost is retried on the next page.
  function beacon() {
    var queue = load();
    if (queue.length && navigator.sendBeacon) {
      navigator.sendBeacon(url, JSON.stringify(queue.slice(0, BATCH)));
    }
  }

  function pageViewed(location) {
    lastPage = location || w.location.href;
    send('pageViewed', { page: { location: lastPage } });
  }

  function navigated() {
    if (w.location.href != lastPage) pageViewed();
  }

  var api = {
    identify: function (fields) {
      var ids = identity();
      for (var name in fields) {
        var value = fields[name];
        // The gateway accepts phones as digits with a leading +; shops often format them.
        if (/^(phone|sms|phonenumber)$/i.test(name) && value != null) {
          value = String(value).replace(/[\s().-]/g, '');
        }
        ids[name] = value;
      }
      put('gw_id', JSON.stringify(ids));
    },
    reset: function () {
      put('gw_id', '{}');
      put('gw_rsid', '');
      cookie('gw_rsid', '', 0);
      visitorId = newVisitor();
    },
    pageViewed: pageViewed,
    productViewed: function (product, options) {
      send('productViewed', Object.assign({ product: product }, options));
    },
    productCategoryViewed: function (categoryId) {
      send('productCategoryViewed', { category: { productCategoryId: categoryId } });
    },
    cartUpdated: function (products, options) {
      var id = uuid();
      put('gw_rsid', id);
      // A first-party cookie, so the shop's back-end sees the id with the checkout request.
      cookie('gw_rsid', id, 2592000);
      send('cartUpdated', Object.assign({ products: products || [], recycleStateId: id }, options));
    },
    recycleStateId: function () {
      return get('gw_rsid') || undefined;
    },
    track: send,
  };

  // gw('method', args...) calls a method and returns its result; gw(fn) calls fn once loaded.
  function gw(method) {
    try {
      return typeof method == 'function'
        ? method()
        : api[method].apply(0, [].slice.call(arguments, 1));
    } catch (e) {
      console.warn('gateway tracker: gw(' + method + ') failed', e);
    }
  }
  gw.loaded = 1;

  // Listeners and the history patch run outside gw(): they catch on their own.
  function safe(fn) {
    return function () {
      try {
        fn();
      } catch (e) {}
    };
  }

  try {
    if (!key) return warn('the script tag needs data-key');
    w.gw = gw;
    hold = 1; // replayed calls and the first page view leave in one request
    ((stub && stub.q) || []).forEach(function (call) {
      gw.apply(0, call);
    });
    if (data.autoPageviews != 'false') {
      pageViewed();
      var push = history.pushState;
      history.pushState = function () {
        var result = push.apply(this, arguments);
        safe(navigated)();
        return result;
      };
      w.addEventListener('popstate', safe(navigated));
    }
    w.addEventListener('pagehide', safe(beacon));
    d.addEventListener('visibilitychange', safe(function () {
      if (d.visibilityState == 'hidden') beacon();
    }));
    w.addEventListener('online', safe(retry));
    hold = 0;
    flush();
  } catch (e) {
    console.warn('gateway tracker: not started', e);
  }
})(window, document);
