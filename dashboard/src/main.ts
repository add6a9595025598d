import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
  type Plugin,
} from 'chart.js';
import type {
  BucketSource,
  ErrorResponse,
  LiveResponse,
  PageViewsResponse,
  StatusResponse,
  SitesResponse,
} from '../../shared/api-types.js';
import { rangeFor, type Granularity } from './range.js';
import { appendFilters, filterOf, filtersIn, withFilters } from './filters.js';

/**
 * The dashboard: reads the public API only (/v1/sites, /v1/pageviews, /v1/live, /v1/status) and draws it with
 * Chart.js. With more than one site it shows a site selector; every answer is of the selected site.
 */

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

const SOURCE_COLOURS: Record<BucketSource, string> = { batch: '#1f5f99', speed: '#b35900', both: '#6b3fa0' };
const REFRESH_MS = 10_000;

/** API base URL: same origin, or `?api=https://…` for an API elsewhere. */
const apiBase = new URLSearchParams(location.search).get('api')?.replace(/\/$/, '') ?? '';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The filters every panel is read under: from the page's URL, which they are written back to. */
let filters = filtersIn(location.search);

function setFilters(next: readonly string[]): void {
  filters = [...next];
  history.replaceState(null, '', `${location.pathname}${withFilters(location.search, filters)}`);
  renderChips();
  void refresh();
}

/** One chip per filter, each with a button that removes it. */
function renderChips(): void {
  const list = $<HTMLUListElement>('filters');
  list.hidden = filters.length === 0;
  list.replaceChildren(
    ...filters.map((filter) => {
      const item = document.createElement('li');
      item.className = 'chip';
      item.dataset.filter = filter;
      item.appendChild(Object.assign(document.createElement('span'), { textContent: filter }));
      const remove = Object.assign(document.createElement('button'), {
        type: 'button',
        textContent: '×',
        title: `Remove filter ${filter}`,
      });
      remove.setAttribute('aria-label', `Remove filter ${filter}`);
      remove.addEventListener('click', () => setFilters(filters.filter((f) => f !== filter)));
      item.appendChild(remove);
      return item;
    }),
  );
}
const controls = {
  site: $<HTMLSelectElement>('site'),
  range: $<HTMLSelectElement>('range'),
  granularity: $<HTMLSelectElement>('granularity'),
  by: $<HTMLSelectElement>('by'),
  from: $<HTMLInputElement>('from'),
  to: $<HTMLInputElement>('to'),
  custom: $<HTMLFieldSetElement>('custom'),
  refresh: $<HTMLInputElement>('refresh'),
};

const label = (iso: string, g: Granularity) =>
  g === 'day' ? iso.slice(0, 10) : iso.slice(g === 'minute' ? 11 : 5, 16).replace('T', ' ');

let horizonLabel = '';
/** Draws the horizon H as a dashed vertical line between the last batch bucket and the first speed one. */
const horizonLine: Plugin<'bar'> = {
  id: 'horizon',
  afterDatasetsDraw(chart) {
    const index = (chart.data.labels ?? []).indexOf(horizonLabel);
    if (index < 0) return;
    const x = chart.scales.x!;
    const at = index === 0 ? x.left : (x.getPixelForValue(index - 1) + x.getPixelForValue(index)) / 2;
    const { ctx, chartArea } = chart;
    ctx.save();
    ctx.strokeStyle = '#1a1a1a';
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(at, chartArea.top);
    ctx.lineTo(at, chartArea.bottom);
    ctx.stroke();
    ctx.fillStyle = '#1a1a1a';
    ctx.fillText('H', at + 4, chartArea.top + 10);
    ctx.restore();
  },
};

const baseOptions = { responsive: true, maintainAspectRatio: false, animation: false } as const;
const VISITORS_COLOUR = '#2e7d32';
const series = new Chart<'bar', number[], string>($<HTMLCanvasElement>('series'), {
  type: 'bar',
  data: {
    labels: [],
    datasets: [
      { label: 'Page views', data: [], backgroundColor: [] },
      { label: 'Visitors', data: [], backgroundColor: VISITORS_COLOUR },
    ],
  },
  options: { ...baseOptions, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  plugins: [horizonLine],
});
const breakdown = new Chart<'bar', number[], string>($<HTMLCanvasElement>('breakdown'), {
  type: 'bar',
  data: { labels: [], datasets: [{ label: 'Page views', data: [], backgroundColor: '#1f5f99' }] },
  options: { ...baseOptions, indexAxis: 'y', plugins: { legend: { display: false } } },
});

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(`${apiBase}${path}`);
  const body = (await response.json()) as T | ErrorResponse;
  if (!response.ok) throw new Error((body as ErrorResponse).error?.message ?? `HTTP ${response.status}`);
  return body as T;
}

/** Fills a table; a first cell given as `{ filter }` is a button that filters the whole page by that value. */
function fillTable(id: string, rows: (string | { text: string; filter?: string })[][]): void {
  const body = $<HTMLTableElement>(id).tBodies[0]!;
  // A refresh rebuilds the rows: a keyboard user's focus stays on the value it was on.
  const focused = body.contains(document.activeElement)
    ? (document.activeElement as HTMLElement).dataset.filter
    : undefined;
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement('tr');
      for (const cell of cells) {
        const td = document.createElement('td');
        if (typeof cell === 'string') td.textContent = cell;
        else if (!cell.filter || filters.includes(cell.filter)) td.textContent = cell.text;
        else {
          const button = Object.assign(document.createElement('button'), {
            type: 'button',
            className: 'filter-value',
            textContent: cell.text,
            title: `Filter every panel by ${cell.filter}`,
          });
          button.dataset.filter = cell.filter;
          const filter = cell.filter;
          button.addEventListener('click', () => setFilters([...filters, filter]));
          td.appendChild(button);
        }
        tr.appendChild(td);
      }
      return tr;
    }),
  );
  if (focused)
    [...body.querySelectorAll<HTMLButtonElement>('button.filter-value')]
      .find((b) => b.dataset.filter === focused)
      ?.focus();
}

function render(answer: PageViewsResponse, status: StatusResponse): void {
  const g = answer.query.granularity;
  const labels = answer.buckets.map((b) => label(b.start, g));
  const firstSpeed = answer.buckets.findIndex((b) => b.source !== 'batch');
  horizonLabel = answer.horizon && firstSpeed > 0 ? labels[firstSpeed]! : '';
  series.data.labels = labels;
  series.data.datasets[0]!.data = answer.buckets.map((b) => b.count);
  series.data.datasets[0]!.backgroundColor = answer.buckets.map((b) => SOURCE_COLOURS[b.source]);
  series.data.datasets[1]!.data = answer.buckets.map((b) => b.visitors ?? 0);
  series.update();
  const values = answer.breakdown ?? [];
  breakdown.data.labels = values.map((v) => v.value);
  breakdown.data.datasets[0]!.data = values.map((v) => v.total);
  breakdown.update();

  const chartBox = document.querySelector<HTMLElement>('.chart')!;
  chartBox.dataset.total = String(answer.total);
  chartBox.dataset.buckets = String(answer.buckets.length);
  chartBox.dataset.query = `${answer.query.from}/${answer.query.to}/${g}/${answer.query.by ?? ''}`;
  chartBox.dataset.visitors = String(answer.visitors ?? '');
  chartBox.dataset.filters = (answer.query.filters ?? []).join(' ');
  $('total').textContent =
    `(${answer.total.toLocaleString('en-US')} page views, ` +
    `${(answer.visitors ?? 0).toLocaleString('en-US')} visitors, error rate ${percent(answer.errorRate)} in range)`;
  const marker = $('horizon-marker');
  marker.dataset.horizon = answer.horizon ?? '';
  marker.textContent = answer.horizon
    ? `Horizon H: ${answer.horizon.slice(0, 16).replace('T', ' ')} UTC`
    : 'Horizon H: no batch run yet (all from speed)';
  fillTable(
    'series-table',
    answer.buckets.map((b) => [
      b.start,
      b.count.toLocaleString('en-US'),
      (b.visitors ?? 0).toLocaleString('en-US'),
      percent(b.errorRate),
      b.source,
    ]),
  );
  fillTable(
    'breakdown-table',
    values.map((v) => [
      // `other` is no value: it cannot be filtered by.
      { text: v.value, ...(v.value === 'other' ? {} : { filter: filterOf(answer.query.by ?? '', v.value) }) },
      v.total.toLocaleString('en-US'),
      // `other` has no visitors of its own: they overlap the top values'.
      v.visitors === null || v.visitors === undefined ? '–' : v.visitors.toLocaleString('en-US'),
      percent(v.errorRate),
    ]),
  );
  $('breakdown-title').textContent = `Breakdown by ${answer.query.by ?? ''}`;
  const lag =
    status.speed.lagSeconds === null
      ? 'no speed data yet'
      : `speed layer ${status.speed.lagSeconds} s behind`;
  const run = status.lastBatchRun
    ? `last batch run ${status.lastBatchRun.publishedAt.slice(11, 19)} UTC`
    : 'no batch run yet';
  $('status').textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC · ${run} · ${lag}`;
}

function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)}%`;
}

function renderLive(live: LiveResponse): void {
  $('live-pageviews').textContent = live.pageviews.toLocaleString('en-US');
  $('live-visitors').textContent = live.visitors.toLocaleString('en-US');
  $('live-error-rate').textContent = percent(live.errorRate);
  fillTable(
    'live-table',
    live.topPages.map((p) => [p.url, p.count.toLocaleString('en-US')]),
  );
}

let inFlight = 0;
async function refresh(): Promise<void> {
  const granularity = controls.granularity.value as Granularity;
  const custom =
    controls.range.value === 'custom' && controls.from.value && controls.to.value
      ? { from: Date.parse(`${controls.from.value}:00Z`), to: Date.parse(`${controls.to.value}:00Z`) }
      : undefined;
  const { from, to } = rangeFor(controls.range.value, granularity, Date.now(), custom);
  const site: Record<string, string> = controls.site.value ? { site: controls.site.value } : {};
  const query = new URLSearchParams({
    ...site,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    granularity,
    by: controls.by.value,
    top: '10',
    metrics: 'pageviews,visitors,error_rate',
  });
  appendFilters(query, filters);
  document.querySelector<HTMLElement>('.chart')!.dataset.request = query.toString();
  const ticket = ++inFlight;
  try {
    const [answer, status, live] = await Promise.all([
      getJson<PageViewsResponse>(`/v1/pageviews?${query.toString()}`),
      getJson<StatusResponse>('/v1/status'),
      getJson<LiveResponse>(`/v1/live?${appendFilters(new URLSearchParams(site), filters).toString()}`),
    ]);
    if (ticket !== inFlight) return; // a newer request is on its way
    $('error').hidden = true;
    render(answer, status);
    renderLive(live);
  } catch (error) {
    $('error').hidden = false;
    $('error').textContent = error instanceof Error ? error.message : String(error);
  }
}

/** Picks a granularity that the range allows and that gives a readable number of bars. */
controls.range.addEventListener('change', () => {
  controls.custom.hidden = controls.range.value !== 'custom';
  controls.granularity.value =
    { hour: 'minute', day: 'hour', week: 'hour', custom: controls.granularity.value }[controls.range.value] ??
    'hour';
  void refresh();
});
controls.granularity.addEventListener('change', () => void refresh());
controls.site.addEventListener('change', () => void refresh());
controls.by.addEventListener('change', () => void refresh());
$<HTMLFormElement>('controls').addEventListener('submit', (event) => {
  event.preventDefault();
  void refresh();
});
renderChips();
setInterval(() => {
  if (controls.refresh.checked && !document.hidden) void refresh();
}, REFRESH_MS);

/** The sites the caller may see; the selector appears when there is more than one. */
async function loadSites(): Promise<void> {
  try {
    const { sites } = await getJson<SitesResponse>('/v1/sites');
    controls.site.replaceChildren(
      ...sites.map(({ site }) =>
        Object.assign(document.createElement('option'), { value: site, textContent: site }),
      ),
    );
    // The busiest-looking default: the first site with page views, else the first.
    controls.site.value = (sites.find((s) => s.lastEvent !== null) ?? sites[0])?.site ?? '';
    $('site-control').hidden = sites.length <= 1;
  } catch (error) {
    $('error').hidden = false;
    $('error').textContent = error instanceof Error ? error.message : String(error);
  }
}
void loadSites().then(refresh);
