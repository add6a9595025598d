import chromiumBinary from '@sparticuz/chromium';
import { chromium, type Browser } from 'playwright-core';

/**
 * Headless Chromium for the browser tests, from the `@sparticuz/chromium` npm package (unpacked on first use),
 * so `npm ci` is all a machine needs: no system browser, no download at run time.
 * The extra flags keep Chromium from reaching for Google's hosts on a closed network.
 */
export async function launchChromium(
  options: { enforceCors?: boolean; userAgent?: string } = {},
): Promise<Browser> {
  // The package's flags are made for Lambda and turn the same-origin policy off; a CORS test needs it on.
  const packaged = options.enforceCors
    ? chromiumBinary.args.filter((arg) => arg !== '--disable-web-security')
    : chromiumBinary.args;
  return chromium.launch({
    executablePath: await chromiumBinary.executablePath(),
    args: [
      ...packaged,
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // A context's userAgent reaches page requests, not the beacons a page sends as it unloads: a browser-wide
      // User-Agent is what every request of a real browser carries.
      ...(options.userAgent ? [`--user-agent=${options.userAgent}`] : []),
    ],
  });
}
