import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizePageUrl } from '../../shared/collection/urls.js';

const none = new Set<string>();
const normalize = (url: string, keep: ReadonlySet<string> = none) => normalizePageUrl(url, keep)!;

describe('url normalization', () => {
  it('drops the fragment and every query parameter, and lowercases the host', () => {
    expect(
      normalize('https://Shop.EXAMPLE/Products/Shoe?fbclid=IwAR0x&gclid=Cj0K&session=abc#reviews'),
    ).toEqual({
      url: 'https://shop.example/Products/Shoe',
      utm: {},
      removedParameters: 3,
    });
  });

  it('keeps the parameters of the keep-list byte for byte, sorted by name, repeats in their order', () => {
    const keep = new Set(['page', 'id', 'q']);
    expect(normalize('https://shop.example/list?page=2&ref=mail&id=7&q=a%20b+c&page=3', keep)).toEqual({
      url: 'https://shop.example/list?id=7&page=2&page=3&q=a%20b+c',
      utm: {},
      removedParameters: 1,
    });
    // One page, however its parameters were ordered.
    expect(normalize('https://shop.example/list?page=2&id=7', keep).url).toBe(
      normalize('https://shop.example/list?id=7&page=2', keep).url,
    );
  });

  it('matches keep-list names decoded and case-sensitively', () => {
    const keep = new Set(['sort by']);
    expect(normalize('https://shop.example/?sort%20by=price&Sort%20by=name', keep).url).toBe(
      'https://shop.example/?sort%20by=price',
    );
  });

  it('takes utm_* parameters out of the url and hands them back apart, decoded, by lower-case name', () => {
    expect(
      normalize(
        'https://shop.example/?utm_source=news%20letter&UTM_Medium=email&utm_campaign=spring+sale&x=1',
      ),
    ).toEqual({
      url: 'https://shop.example/',
      utm: { utm_source: 'news letter', utm_medium: 'email', utm_campaign: 'spring sale' },
      removedParameters: 4,
    });
  });

  it('keeps a url without parameters as it is, and counts nothing for empty query parts', () => {
    expect(normalize('http://127.0.0.1:3001/app/reports')).toEqual({
      url: 'http://127.0.0.1:3001/app/reports',
      utm: {},
      removedParameters: 0,
    });
    expect(normalize('https://shop.example/a?&&#top')).toMatchObject({
      url: 'https://shop.example/a',
      removedParameters: 0,
    });
  });

  it('survives malformed escapes and leaves anything but an absolute http(s) url to the validator', () => {
    expect(normalize('https://shop.example/?%E0%A4%A=1&id=%ZZ', new Set(['id'])).url).toBe(
      'https://shop.example/?id=%ZZ',
    );
    for (const url of ['/relative', 'javascript:alert(1)', 'ftp://x.example/', 'not a url']) {
      expect(normalizePageUrl(url, none)).toBeUndefined();
    }
  });

  it('is idempotent: a normalized url normalizes to itself (property)', () => {
    const name = fc.stringMatching(/^[a-z_]{1,8}$/);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(name, fc.string({ maxLength: 8 })), { maxLength: 6 }),
        fc.subarray(['a', 'id', 'page', 'utm_x']),
        fc.string({ maxLength: 10 }),
        (params, kept, fragment) => {
          const query = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
          const keep = new Set(kept);
          const once = normalize(`https://Shop.example/p?${query}#${encodeURIComponent(fragment)}`, keep);
          expect(normalize(once.url, keep)).toEqual({ url: once.url, utm: {}, removedParameters: 0 });
          expect(once.url).not.toContain('#');
          expect(once.removedParameters).toBe(params.filter(([k]) => !keep.has(k)).length);
        },
      ),
    );
  });
});
