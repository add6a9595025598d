import { DIMENSIONS, EVENT_LIMITS, isDimension, type Dimension } from '../event.js';

/**
 * The filter language of `filter=` (docs/filters.md): one filter per parameter, repeated filters ANDed.
 *   `country:DE`        is
 *   `country:DE|AT|CH`  is any of
 *   `!browser:FF`       is not (none of)
 *   `url~/blog/`        contains, for url, referrer and utm_campaign
 * Values are the strings the counters and views are keyed by (shared/event.ts dimensionValue): `(none)` for an
 * event without a referrer, status as digits. A `|` or `\` inside a value is written `\|` or `\\`.
 */

export type Filter =
  | { readonly dimension: Dimension; readonly op: 'is' | 'not'; readonly values: readonly string[] }
  | { readonly dimension: Dimension; readonly op: 'contains'; readonly text: string };

/** Dimensions that take `~` (contains): those whose values are free text. */
export const CONTAINS_DIMENSIONS: readonly Dimension[] = ['url', 'referrer', 'utm_campaign'];

export const FILTER_LIMITS = {
  /** Filters one query may AND together. */
  maxFilters: 10,
  /** Values one `is`/`is not` filter may list. */
  maxValues: 50,
  /** The longest value a filter may name: no dimension holds a longer one (a url has at most this many bytes). */
  maxValueBytes: EVENT_LIMITS.maxUrlBytes,
} as const;

/** Why a filter was refused: the name a client can act on, and the text that says what to change. */
export const FILTER_ERRORS = [
  'filter_syntax',
  'filter_unknown_dimension',
  'filter_empty_value',
  'filter_contains_unsupported',
  'filter_too_many_values',
  'filter_value_too_long',
  'filter_status_not_a_number',
  'filter_too_many',
] as const;
export type FilterErrorName = (typeof FILTER_ERRORS)[number];

export class FilterError extends Error {
  override readonly name = 'FilterError';
  constructor(
    /** What is wrong, as a stable name. */
    readonly reason: FilterErrorName,
    message: string,
  ) {
    super(message);
  }
}

const STATUS_VALUE = /^[1-5]\d\d$/;

/** Splits an escaped list on unescaped `|`, undoing `\|` and `\\`; a lone backslash before anything else is refused. */
function splitValues(text: string, raw: string): string[] {
  const values: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (c === '\\') {
      const next = text[i + 1];
      if (next !== '|' && next !== '\\')
        throw new FilterError('filter_syntax', `filter "${raw}": a backslash escapes only | or \\`);
      current += next;
      i += 1;
    } else if (c === '|') {
      values.push(current);
      current = '';
    } else current += c;
  }
  values.push(current);
  return values;
}

function checkValue(dimension: Dimension, value: string, raw: string): void {
  if (value === '') throw new FilterError('filter_empty_value', `filter "${raw}": a value is empty`);
  if (Buffer.byteLength(value, 'utf8') > FILTER_LIMITS.maxValueBytes) {
    throw new FilterError(
      'filter_value_too_long',
      `filter "${raw.slice(0, 64)}…": a value is longer than ${FILTER_LIMITS.maxValueBytes} UTF-8 bytes, longer than any ${dimension}`,
    );
  }
  if (dimension === 'status' && !STATUS_VALUE.test(value)) {
    throw new FilterError(
      'filter_status_not_a_number',
      `filter "${raw}": status values are HTTP status codes, 100 to 599`,
    );
  }
}

/** Parses one `filter=` value. */
export function parseFilter(raw: string): Filter {
  const negated = raw.startsWith('!');
  const body = negated ? raw.slice(1) : raw;
  const match = /^([a-z_]+)([:~])([\s\S]*)$/.exec(body);
  if (!match) {
    throw new FilterError(
      'filter_syntax',
      `filter "${raw}" is not <dimension>:<value>[|<value>…], !<dimension>:<value>… or <dimension>~<text>`,
    );
  }
  const [, name, operator, rest] = match as unknown as [string, string, ':' | '~', string];
  if (!isDimension(name)) {
    throw new FilterError(
      'filter_unknown_dimension',
      `filter "${raw}": ${name} is not a dimension; filters take ${DIMENSIONS.join(', ')}`,
    );
  }
  if (operator === '~') {
    if (negated)
      throw new FilterError('filter_syntax', `filter "${raw}": contains (~) cannot be negated with !`);
    if (!CONTAINS_DIMENSIONS.includes(name)) {
      throw new FilterError(
        'filter_contains_unsupported',
        `filter "${raw}": contains (~) applies to ${CONTAINS_DIMENSIONS.join(', ')}; use ${name}:<value> instead`,
      );
    }
    checkValue(name, rest, raw);
    return { dimension: name, op: 'contains', text: rest };
  }
  const values = splitValues(rest, raw);
  if (values.length > FILTER_LIMITS.maxValues) {
    throw new FilterError(
      'filter_too_many_values',
      `filter "${raw.slice(0, 64)}…" lists ${values.length} values; at most ${FILTER_LIMITS.maxValues}`,
    );
  }
  for (const value of values) checkValue(name, value, raw);
  return { dimension: name, op: negated ? 'not' : 'is', values: [...new Set(values)].sort() };
}

/** Parses every `filter=` value of a query (ANDed). */
export function parseFilters(raws: readonly string[]): Filter[] {
  if (raws.length > FILTER_LIMITS.maxFilters) {
    throw new FilterError(
      'filter_too_many',
      `${raws.length} filters; a query may combine at most ${FILTER_LIMITS.maxFilters}`,
    );
  }
  return raws.map(parseFilter);
}

/** Whether a dimension value passes a filter. */
export function admits(filter: Filter, value: string): boolean {
  switch (filter.op) {
    case 'is':
      return filter.values.includes(value);
    case 'not':
      return !filter.values.includes(value);
    case 'contains':
      return value.includes(filter.text);
  }
}

const escape = (value: string): string => value.replace(/[\\|]/g, (c) => `\\${c}`);

/** The canonical text of a filter: parses back to the same filter (the answer echoes it, caches key by it). */
export function formatFilter(filter: Filter): string {
  if (filter.op === 'contains') return `${filter.dimension}~${filter.text}`;
  return `${filter.op === 'not' ? '!' : ''}${filter.dimension}:${filter.values.map(escape).join('|')}`;
}
