import type { PageView } from '../../shared/event.js';
import { DEFAULT_SETTINGS } from '../../shared/resources.js';

/** A valid page view; override what a test is about. */
export function aPageView(overrides: Partial<PageView> = {}): PageView {
  return {
    created: Date.UTC(2026, 10, 25, 12, 30, 15, 123),
    url: 'http://www.example.com/id=1',
    status: 200,
    country: 'US',
    browser: 'FF',
    userId: '723679',
    site: DEFAULT_SETTINGS.defaultSite,
    ...overrides,
  };
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
