import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listen } from './http-server.js';

/**
 * A small web site that carries the tracker, for trying collection locally: three pages and a single-page app
 * under /app/ whose links navigate with history.pushState. It runs on an origin of its own, as a real site
 * would, so the tracker's requests to the collector are cross-origin (CORS) like on AWS.
 */

const PAGES_DIR = join(dirname(fileURLToPath(import.meta.url)), 'demo-site');

const SITE_NAV = [
  '<a id="nav-home" href="/">Home</a>',
  '<a id="nav-about" href="/about">About</a>',
  '<a id="nav-pricing" href="/pricing">Pricing</a>',
  '<a id="nav-app" href="/app/">App</a>',
].join(' ');
const APP_NAV = [
  '<a id="nav-home" href="/">Home</a>',
  '<a id="spa-overview" href="/app/" data-spa>Overview</a>',
  '<a id="spa-reports" href="/app/reports" data-spa>Reports</a>',
  '<a id="spa-settings" href="/app/settings" data-spa>Settings</a>',
].join(' ');

export const DEMO_PAGES: Readonly<Record<string, { title: string; text: string }>> = {
  '/': { title: 'Home', text: 'Welcome to the demo shop. Every page you open here is one page view.' },
  '/about': { title: 'About', text: 'We sell nothing; we count page views.' },
  '/pricing': { title: 'Pricing', text: 'Free, like the emulators this runs on.' },
};
/** The single-page app: every path under it is served the same document. */
export const DEMO_APP_PREFIX = '/app/';
const APP_TEXT =
  'A single-page app: these links change the address with history.pushState, without loading a page.';

export interface RunningDemoSite {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

export interface DemoSiteOptions {
  /** Where pages load the tracker from, e.g. http://127.0.0.1:3002/pv.<version>.js, and its SRI hash. */
  readonly trackerSrc: string;
  readonly trackerIntegrity: string;
  readonly port?: number;
  readonly host?: string;
}

const fill = (template: string, values: Record<string, string>) =>
  template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => values[key] ?? '');

export async function startDemoSite(options: DemoSiteOptions): Promise<RunningDemoSite> {
  const layout = readFileSync(join(PAGES_DIR, 'layout.html'), 'utf8');
  const spa = readFileSync(join(PAGES_DIR, 'spa.js'), 'utf8');
  const page = (values: Record<string, string>) =>
    fill(layout, { TRACKER_SRC: options.trackerSrc, TRACKER_INTEGRITY: options.trackerIntegrity, ...values });
  const app = page({
    TITLE: 'Overview',
    TEXT: APP_TEXT,
    NAV: APP_NAV,
    HEAD: '<script defer src="/spa.js"></script>',
  });
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path === '/spa.js') {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      response.end(spa);
      return;
    }
    const content = DEMO_PAGES[path];
    let html: string | undefined;
    if (content) html = page({ TITLE: content.title, TEXT: content.text, NAV: SITE_NAV });
    else if (path.startsWith(DEMO_APP_PREFIX)) html = app;
    response.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    response.end(html ?? '<!doctype html><title>Not found</title><h1>Not found</h1>');
  });
  return { ...(await listen(server, options.port, options.host)), server };
}
