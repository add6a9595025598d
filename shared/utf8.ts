/** UTF-8 sizes of strings, measured without encoding them where the UTF-16 length already decides. */

/** The longest prefix of `value` that fits in `maxBytes` UTF-8 bytes without splitting a code point. */
export function utf8Prefix(value: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const char of value) {
    const code = char.codePointAt(0)!;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return value.slice(0, end);
}

/**
 * Whether a string takes at most `maxBytes` UTF-8 bytes. Its UTF-8 size is at least its UTF-16 length and at
 * most three times it: measure only in between.
 */
export const fitsUtf8Bytes = (value: string, maxBytes: number): boolean =>
  value.length * 3 <= maxBytes || (value.length <= maxBytes && Buffer.byteLength(value, 'utf8') <= maxBytes);
