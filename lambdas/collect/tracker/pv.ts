/**
 * The page-view tracker (`/pv.js`): `<script defer src="https://<collector>/pv.js"></script>` on a page sends one
 * page view on load and one per single-page-app navigation (history.pushState, popstate) to the collector it was
 * loaded from. No cookie, no storage, no fingerprinting: the collector derives what it needs from the request.
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

    let last = '';
    const id = () =>
      Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => (b + 256).toString(16).slice(1)).join('');
    const send = (status: number) => {
      try {
        const url = location.href.split('#')[0]!;
        // replaceState, or a pushState to the same address, is not a new page view.
        if (url === last) return;
        last = url;
        // text/plain (a string body) needs no CORS preflight, for the beacon and the fetch alike.
        const body = JSON.stringify({ url, status, created: Date.now(), eventId: id() });
        if (!navigator.sendBeacon?.(endpoint, body)) {
          fetch(endpoint, { method: 'POST', body, keepalive: true, credentials: 'omit' }).catch(() => {});
        }
      } catch {
        // Never disturb the page.
      }
    };

    const push = history.pushState;
    history.pushState = function (...args: Parameters<History['pushState']>) {
      const result = push.apply(this, args);
      send(200);
      return result;
    };
    addEventListener('popstate', () => send(200));
    const navigation = performance.getEntriesByType?.('navigation')[0] as
      (PerformanceEntry & { responseStatus?: number }) | undefined;
    send(navigation?.responseStatus || 200);
  } catch {
    // Never disturb the page.
  }
})();
