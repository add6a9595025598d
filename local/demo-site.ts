import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A small web site that carries the tracker, for trying collection locally: three pages and a single-page app
 * under /app/ whose links navigate with history.pushState. It runs on an origin of its own, as a real site
 * would, so the tracker's requests to the collector are cross-origin (CORS) like on AWS.
 */

const PAGES_DIR = join(dirname(fileURLToPath(import.meta.url)), 'demo-site');

export const DEMO_PAGES: Readonly<Record<string, { title: string; text: string }>> = {
  '/': { title: 'Home', text: 'Welcome to the demo shop. Every page you open here is one page view.' },
  '/about': { title: 'About', text: 'We sell nothing; we count page views.' },
  '/pricing': { title: 'Pricing', text: 'Free, like the emulators this runs on.' },
};
/** The single-page app: every path under it is served the same document. */
export const DEMO_APP_PREFIX = '/app/';

export interface RunningDemoSite {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

export interface DemoSiteOptions {
  /** Where pages load the tracker from, e.g. http://127.0.0.1:3000/pv.js. */
  readonly trackerSrc: string;
  readonly port?: number;
  readonly host?: string;
}

const fill = (template: string, values: Record<string, string>) =>
  template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => values[key] ?? '');

export async function startDemoSite(options: DemoSiteOptions): Promise<RunningDemoSite> {
  const page = readFileSync(join(PAGES_DIR, 'page.html'), 'utf8');
  const app = fill(readFileSync(join(PAGES_DIR, 'app.html'), 'utf8'), { TRACKER_SRC: options.trackerSrc });
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const content = DEMO_PAGES[path];
    let html: string | undefined;
    if (content)
      html = fill(page, { TRACKER_SRC: options.trackerSrc, TITLE: content.title, TEXT: content.text });
    else if (path.startsWith(DEMO_APP_PREFIX)) html = app;
    response.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    response.end(html ?? '<!doctype html><title>Not found</title><h1>Not found</h1>');
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${host}:${port}`,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
