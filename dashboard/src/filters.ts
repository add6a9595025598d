/**
 * The dashboard's filters (docs/filters.md): `filter=` values as the API takes them, kept in the page's URL so that
 * a filtered view can be shared, shown as removable chips.
 */

/** A value as a filter writes it: `|` and `\` escaped. */
export const filterOf = (dimension: string, value: string): string =>
  `${dimension}:${value.replace(/[\\|]/g, (c) => `\\${c}`)}`;

/** The filters of a URL's query string. */
export const filtersIn = (search: string): string[] => new URLSearchParams(search).getAll('filter');

/** The query string with these filters instead of the ones it had; other parameters (`api`) stay. */
export function withFilters(search: string, filters: readonly string[]): string {
  const params = new URLSearchParams(search);
  params.delete('filter');
  for (const filter of filters) params.append('filter', filter);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** Appends the filters to an API query. */
export function appendFilters(query: URLSearchParams, filters: readonly string[]): URLSearchParams {
  for (const filter of filters) query.append('filter', filter);
  return query;
}
