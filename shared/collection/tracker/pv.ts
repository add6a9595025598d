/**
 * The page-view tracker (`/pv.<version>.js`): the tag from the deploy's `TrackerScriptTag` output on a page sends
 * one page view on load and one per single-page-app navigation (history.pushState, popstate) to the collector it
 * was loaded from. No cookie, no storage, no fingerprinting: the collector derives what it needs from the request.
 *
 * It does not lose page views: each waits in a small queue (at most QUEUE_MAX) until the collector has answered
 * it. A 429, a 5xx or a network error leaves it there and retries after an exponential backoff with jitter (1 s,
 * 2 s, 4 s, … up to 30 s); any other answer (2xx, or a 4xx that no retry can change) takes it out. On `pagehide`
 * whatever is still unanswered goes out with `sendBeacon`, which outlives the page. Every try carries the page
 * view's own eventId (the layers count an eventId once) and its age, so that it keeps the time of its first try.
 *
 * Optional attributes: `data-api="https://…/v1/events"` (another collector), `data-allow-localhost` (count pages
 * on localhost / 127.0.0.1, skipped by default so that development does not pollute the counts).
 * Everything runs inside try/catch: the tracker never throws into the host page.
 */
(() => {
  try {
    const script = document.currentScript as HTMLScriptElement | null;
    if (!script) return;
    const endpoint = script.dataset.api || new URL('/v1/events', script.src).href;
    const local = /^(localhost|127(\.\d+){3}|\[::1\])$|\.localhost$/.test(location.hostname);
    if ((local && script.dataset.allowLocalhost === undefined) || !/^https?:$/.test(location.protocol))
      return;

    const QUEUE_MAX = 16;
    interface Pending {
      readonly view: { url: string; status: number; eventId: string; referrer: string };
      /** performance.now() when it happened: its age is measured on one clock, whatever the page's time says. */
      readonly at: number;
    }
    let queue: Pending[] = [];
    let failures = 0;
    let timer = 0;
    let busy = false;
    let last = '';
    const body = (items: Pending[]) =>
      JSON.stringify(items.map((p) => ({ ...p.view, age: Math.round(performance.now() - p.at) })));
    const later = (ms: number) => (timer = setTimeout(flush, ms) as unknown as number);
    // One request at a time, carrying everything waiting: a burst of navigations costs one request, not many.
    const flush = () => {
      timer = 0;
      if (busy || !queue.length) return;
      busy = true;
      const batch = queue.slice();
      let retry = true;
      Promise.resolve()
        .then(() =>
          fetch(endpoint, { method: 'POST', body: body(batch), keepalive: true, credentials: 'omit' }),
        )
        .then((response) => {
          retry = response.status === 429 || response.status > 499;
        })
        .catch(() => undefined)
        .then(() => {
          busy = false;
          if (retry) failures += 1;
          else {
            failures = 0;
            queue = queue.filter((p) => !batch.includes(p));
          }
          if (queue.length) later(failures ? Math.min(30_000, 500 * 2 ** failures * (1 + Math.random())) : 0);
        });
    };
    const send = (status: number) => {
      try {
        const url = location.href.split('#')[0]!;
        // replaceState, or a pushState to the same address, is not a new page view.
        if (url === last) return;
        // The first page's referrer is the document's; a single-page-app route's is the page it came from.
        const referrer = last || document.referrer;
        last = url;
        const eventId = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
          (b + 256).toString(16).slice(1),
        ).join('');
        queue.push({ view: { url, status, eventId, referrer }, at: performance.now() });
        if (queue.length > QUEUE_MAX) queue.shift();
        if (!timer) flush();
      } catch {
        // Never disturb the page.
      }
    };

    // The page goes away (or into the back-forward cache): what is unanswered, in flight included, goes as a
    // beacon (text/plain: no preflight). A page view that both arrive for is counted once, by its eventId.
    addEventListener('pagehide', () => {
      if (queue.length && navigator.sendBeacon?.(endpoint, body(queue))) queue = [];
    });
    const push = history.pushState;
    history.pushState = function (...args: Parameters<History['pushState']>) {
      const result = push.apply(this, args);
      send(200);
      return result;
    };
    addEventListener('popstate', () => send(200));
    // The HTTP status is the page's claim, from Navigation Timing where the browser has it.
    const navigation = performance.getEntriesByType?.('navigation')[0] as
      (PerformanceEntry & { responseStatus?: number }) | undefined;
    send(navigation?.responseStatus || 200);
  } catch {
    // Never disturb the page.
  }
})();
