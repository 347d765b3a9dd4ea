/**
 * Kiln's web UI: per-service flame graphs, diffs and top functions over the
 * query API (ingest/api.ts). One state object, read from and written to the
 * query string; data is fetched when what it depends on changes (dataKey),
 * everything else (search, zoom, table) redraws locally.
 */

import type { DiffResponse, FlamegraphResponse, LabelInfo, ServiceInfo, TimelineResponse, TopResponse } from '../../ingest/api.js';
import { ApiFailure, api } from './api.js';
import { DIFF_NEUTRAL, ORIGINS, diffColor, legendColor } from './colors.js';
import { FlameView, type FlameData, type Matcher } from './flame.js';
import { count, percent } from './format.js';
import { LabelEditor } from './labels.js';
import { compileSearch, focusMatcher } from './search.js';
import { dataKey, parseState, serializeState, type ViewState } from './state.js';
import { absolute, formatRange, formatTime, fromLocalInput, isRelative, parseTime, resolve, shifted, span, toLocalInput, type Range } from './time.js';
import { TimelineView } from './timeline.js';
import { TopTable, diffRows, type TableData } from './top.js';
import { baseSide, comparisonSide, diffQuery, flamegraphQuery, graphUrl } from './query.js';
// Last, so it overrides d3-flame-graph's stylesheet (imported by the library itself).
import './styles.css';

const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`page is missing ${sel}`);
  return el;
};

const DAY = 86_400_000;
/** /api/v1/services over the longest range the server allows (32 days), so every retained service is listed. */
const SERVICES_RANGE = 'now-30d';
/** Functions fetched for the table; the server sorts by self, the table re-sorts locally. */
const TOP_LIMIT = '2000';

const el = {
  service: $<HTMLSelectElement>('#service'),
  presets: $('#presets'),
  rangeText: $('#range-text'),
  modes: $('#modes'),
  download: $<HTMLAnchorElement>('#download'),
  downloadBase: $<HTMLAnchorElement>('#download-base'),
  copyLink: $<HTMLButtonElement>('#copy-link'),
  linkBox: $('#link-box'),
  link: $<HTMLInputElement>('#link'),
  linkStatus: $('#link-status'),
  customRange: $<HTMLFormElement>('#custom-range'),
  diffPanel: $('#diff-panel'),
  baseRange: $<HTMLSelectElement>('#base-range'),
  baseRangeText: $('#base-range-text'),
  baseCustom: $<HTMLFormElement>('#base-custom'),
  comparisonRangeText: $('#comparison-range-text'),
  message: $('#message'),
  content: $('#content'),
  breadcrumb: $('#breadcrumb'),
  search: $<HTMLInputElement>('#search'),
  regex: $<HTMLInputElement>('#regex'),
  granularity: $<HTMLSelectElement>('#granularity'),
  summary: $('#summary'),
  searchStatus: $('#search-status'),
  legend: $('#legend'),
  tableTitle: $('#table-title'),
  loading: $('#loading'),
  timelinePane: $('.timeline-pane'),
  filters: $('.filters'),
};

let state: ViewState = parseState(location.search);
let services: ServiceInfo[] | undefined;
let labelsAvailable: LabelInfo[] = [];
let loadedKey: string | undefined;
let inflight: AbortController | undefined;
let graph: FlameData | undefined;
let table: TableData | undefined;
let customOpen = false;
/** Pending search-box update (typing is applied when it pauses). */
let searchTimer = 0;

const flame = new FlameView($('#flame'), {
  onZoom(path) {
    update({ zoom: path }, 'push');
  },
});
const timeline = new TimelineView($('#timeline'), $('#timeline-caption'), (from, to) => {
  update({ from: absolute(from), to: absolute(to) }, 'push');
});
const top = new TopTable($('#table-pane'), {
  onSort: (sort, order) => update({ sort, order }, 'replace'),
  onFilter: (filter) => update({ filter }, 'replace'),
  onPick: (focus) => update({ focus, search: focus ? '' : state.search }, 'push'),
});
const labels = new LabelEditor($('#labels'), 'filter', (l) => update({ labels: l }, 'push'));
const baseLabels = new LabelEditor($('#base-labels'), 'base', (l) => update({ baseLabels: l }, 'push'));
const comparisonLabels = new LabelEditor($('#comparison-labels'), 'comparison', (l) => update({ comparisonLabels: l }, 'push'));

// ---------------------------------------------------------------- state flow

/** Applies a change: URL first (push for navigations, replace for typing), then the page. */
function update(patch: Partial<ViewState>, history: 'push' | 'replace'): void {
  // A function picked in the table wins over search text still waiting to be applied.
  if (patch.focus) {
    window.clearTimeout(searchTimer);
    el.search.value = '';
  }
  state = { ...state, ...patch };
  const url = `${location.pathname}${serializeState(state)}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) {
    if (history === 'push') window.history.pushState(null, '', url);
    else window.history.replaceState(null, '', url);
  }
  void render();
}

window.addEventListener('popstate', () => {
  state = parseState(location.search);
  void render();
});

async function render(force = false): Promise<void> {
  drawControls();
  if (force || dataKey(state) !== loadedKey) await load();
  else drawView();
}

// ---------------------------------------------------------------- loading

async function load(): Promise<void> {
  inflight?.abort();
  const ctl = new AbortController();
  inflight = ctl;
  const { signal } = ctl;
  const s = state;
  loadedKey = dataKey(s);
  graph = undefined;
  table = undefined;
  el.loading.hidden = false;
  // The graph is what the page waits for: ask for it first, without waiting for the service list.
  const graphReq = s.service ? requestGraph(s, signal) : undefined;
  graphReq?.catch(() => {});
  const servicesReq: Promise<ServiceInfo[]> = services
    ? Promise.resolve(services)
    : api.services({ from: SERVICES_RANGE }, signal).then((r) => (services = r.services));
  servicesReq.catch(() => {});

  if (!graphReq) {
    let list: ServiceInfo[];
    try {
      list = await servicesReq;
    } catch (e) {
      return fail(e, signal);
    }
    if (signal.aborted) return;
    drawServices();
    if (list.length === 0) return showEmpty('no-services');
    // The busiest service is the likeliest reason someone opened the page.
    const pick = [...list].sort((a, b) => b.samples - a.samples)[0]!;
    state = { ...state, service: pick.name };
    window.history.replaceState(null, '', `${location.pathname}${serializeState(state)}`);
    return render(true);
  }
  void servicesReq.then(
    () => !signal.aborted && drawServices(),
    () => {},
  );

  let data: FlameData;
  try {
    data = await graphReq;
  } catch (e) {
    return fail(e, signal);
  }
  if (signal.aborted) return;
  // Only now the rest: the store runs few statements at once, and these would have delayed the graph.
  loadSecondary(s, signal);
  el.loading.hidden = true;
  const empty = emptyReason(data);
  if (empty) {
    // No samples may mean no services at all; the list tells which empty state to show.
    await servicesReq.catch(() => {});
    if (signal.aborted) return;
    return showEmpty(services?.length === 0 ? 'no-services' : empty, data);
  }
  showContent();
  graph = data;
  performance.mark('kiln:graph-data');
  flame.render(data);
  drawView();
  performance.mark('kiln:graph-drawn');
  markRendered();
}

/** Timeline, label values and the table; each draws when it arrives. */
function loadSecondary(s: ViewState, signal: AbortSignal): void {
  const cmp = comparisonSide(s);
  const sideQuery = s.mode === 'diff' ? cmp : { from: s.from, to: s.to, label: s.labels };
  const timelineReq = api.timeline({ service: s.service, ...sideQuery }, signal);
  const labelsReq = api.labels({ service: s.service, from: s.from, to: s.to }, signal);
  const tableReq: Promise<TableData> =
    s.mode === 'diff'
      ? Promise.all([
          api.top({ service: s.service, ...baseSide(s), granularity: s.granularity, limit: TOP_LIMIT }, signal),
          api.top({ service: s.service, ...cmp, granularity: s.granularity, limit: TOP_LIMIT }, signal),
        ]).then(([b, c]): TableData => ({ kind: 'diff', baseTotal: b.total, compTotal: c.total, rows: diffRows(b, c) }))
      : api.top({ service: s.service, from: s.from, to: s.to, label: s.labels, granularity: s.granularity, limit: TOP_LIMIT }, signal).then(
          (t: TopResponse): TableData => ({ kind: 'single', total: t.total, count: t.count, rows: t.functions }),
        );
  // A failure here leaves that part empty; the graph already told the user whether the API works.
  void timelineReq.then(
    (t) => !signal.aborted && drawTimeline(t),
    () => {},
  );
  void labelsReq.then(
    (l) => {
      if (signal.aborted) return;
      labelsAvailable = l.labels;
      drawLabelEditors();
    },
    () => {},
  );
  void tableReq.then(
    (t) => {
      if (signal.aborted) return;
      table = t;
      drawTable();
    },
    () => {},
  );
}

function requestGraph(s: ViewState, signal: AbortSignal): Promise<FlameData> {
  const pre = window.kilnPrefetch;
  window.kilnPrefetch = undefined;
  if (pre && pre.url === graphUrl(s)) {
    const kind = s.mode;
    return api.adopt<FlamegraphResponse | DiffResponse>(pre.url, pre.response).then((resp): FlameData =>
      kind === 'diff' ? { kind, resp: resp as DiffResponse } : { kind, resp: resp as FlamegraphResponse },
    );
  }
  if (s.mode === 'diff') return api.diff(diffQuery(s), signal).then((resp: DiffResponse): FlameData => ({ kind: 'diff', resp }));
  return api.flamegraph(flamegraphQuery(s), signal).then((resp: FlamegraphResponse): FlameData => ({ kind: 'single', resp }));
}

/** For the page-load figure: marked once the first graph is on screen (two frames after it is in the DOM). */
function markRendered(): void {
  if (performance.getEntriesByName('kiln:flame-rendered').length > 0) return;
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      performance.mark('kiln:flame-rendered');
      document.documentElement.dataset.flameRendered = String(Math.round(performance.now()));
    }),
  );
}

// ---------------------------------------------------------------- empty states and errors

type Empty = 'no-services' | 'no-data' | 'no-base' | 'no-comparison';

function emptyReason(d: FlameData): Empty | undefined {
  if (d.kind === 'single') return d.resp.total === 0 ? 'no-data' : undefined;
  const { base, comparison } = d.resp;
  if (base.total === 0 && comparison.total === 0) return 'no-data';
  if (comparison.total === 0) return 'no-comparison';
  if (base.total === 0) return 'no-base';
  return undefined;
}

/** Message blocks: sentences, and commands to copy as { code }. */
type Block = string | { code: string };

function message(kind: string, text: Block | Block[], actions: [string, () => void][] = []): void {
  el.message.replaceChildren();
  el.message.dataset.kind = kind;
  for (const part of Array.isArray(text) ? text : [text]) {
    const b = typeof part === 'string' ? document.createElement('p') : document.createElement('code');
    b.textContent = typeof part === 'string' ? part : part.code;
    el.message.append(b);
  }
  if (actions.length) {
    const row = document.createElement('div');
    row.className = 'actions';
    for (const [label, act] of actions) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.addEventListener('click', act);
      row.append(b);
    }
    el.message.append(row);
  }
  el.message.hidden = false;
}

function showContent(): void {
  el.message.hidden = true;
  delete el.message.dataset.kind;
  el.content.hidden = false;
  el.timelinePane.hidden = false;
  el.filters.hidden = false;
}

function hideContent(keepTimeline: boolean): void {
  flame.destroy();
  graph = undefined;
  el.content.hidden = true;
  el.timelinePane.hidden = !keepTimeline;
  el.filters.hidden = !keepTimeline;
  el.loading.hidden = true;
}

function retry(): void {
  services = undefined;
  void render(true);
}

function showEmpty(kind: Empty, data?: FlameData): void {
  const origin = new URL('.', document.baseURI).toString().replace(/\/$/, '');
  if (kind === 'no-services') {
    hideContent(false);
    timeline.render(undefined);
    message(
      'no-services',
      [
        'No profiles yet: Kiln has no service with data in the last 30 days. To send some, start the agent on the hosts that run your Python services:',
        { code: `kiln agent --server ${origin}` },
        'or push a profile you recorded with kiln record:',
        { code: `curl --data-binary @profile.pb.gz '${origin}/api/v1/profiles?service=NAME'` },
        'Then press Refresh.',
      ],
      [['Refresh', retry]],
    );
    return;
  }
  hideContent(true);
  const r = resolve(state, Date.now());
  const info = services?.find((x) => x.name === state.service);
  const actions: [string, () => void][] = [];
  if (kind === 'no-data') {
    const filtered = state.labels.length > 0 || (state.mode === 'diff' && (state.baseLabels.length > 0 || state.comparisonLabels.length > 0));
    let text = `No samples for ${state.service} between ${formatRange(r)}${filtered ? ' with these label filters' : ''}. `;
    if (!info) text += `This service has no profiles in the last 30 days; pick another service above.`;
    else {
      text += `Pick a wider range (24 h or 7 d)${filtered ? ' or remove the label filters' : ''}; its latest profile is from ${formatTime(info.lastSeen)}.`;
      actions.push([
        'Show the hour around the latest profile',
        () => update({ from: absolute(info.lastSeen - 45 * 60_000), to: absolute(info.lastSeen + 15 * 60_000), zoom: [] }, 'push'),
      ]);
      if (state.from !== 'now-7d' || state.to !== 'now') actions.push(['Last 7 days', () => update({ from: 'now-7d', to: 'now' }, 'push')]);
    }
    if (filtered) actions.push(['Remove label filters', () => update({ labels: [], baseLabels: [], comparisonLabels: [] }, 'push')]);
    message('no-data', text, actions);
    return;
  }
  // One side of a diff is empty: say which, and offer a base that has data.
  const d = data?.kind === 'diff' ? data.resp : undefined;
  const side = kind === 'no-base' ? 'base' : 'comparison';
  const range = d ? formatRange(kind === 'no-base' ? d.base : d.comparison) : '';
  message(
    kind,
    `The ${side} (${range}) has no samples, so there is nothing to compare. ` +
      (kind === 'no-base' ? 'Choose another base range or label set above.' : 'Choose a comparison range that has data, or change its labels.'),
    kind === 'no-base' ? [['Use the previous period as base', () => update(baseFor('prev'), 'push')]] : [],
  );
}

function fail(e: unknown, signal: AbortSignal): void {
  if (signal.aborted || (e instanceof DOMException && e.name === 'AbortError')) return;
  hideContent(false);
  if (e instanceof ApiFailure && e.kind === 'unreachable') {
    const where = new URL('api/v1/', document.baseURI).toString();
    message(
      'unreachable',
      `Cannot reach the Kiln API at ${where} (${e.message}). Check that kiln serve is running and that this browser can reach it, then press Retry.`,
      [['Retry', retry]],
    );
    return;
  }
  if (e instanceof ApiFailure) {
    const hint =
      e.status === 400
        ? 'Check the time range and the label filters.'
        : e.status === 401
          ? 'This Kiln needs a read token: open the UI through a proxy that adds it, or start kiln serve without --read-token.'
          : e.status === 503
            ? 'The store is not answering; kiln serve reconnects on the next request, so press Retry in a moment.'
            : 'This is a server error: the kiln serve log has the details. Press Retry to ask again.';
    message('error', `The query failed: ${e.status ? `${e.status} ` : ''}${e.message}${e.detail ? ` (${e.detail})` : ''}. ${hint}`, [['Retry', retry]]);
    return;
  }
  message('error', `Something went wrong drawing this view: ${e instanceof Error ? e.message : String(e)}. Press Retry, or reload the page.`, [['Retry', retry]]);
}

// ---------------------------------------------------------------- drawing

function drawServices(): void {
  const list = services ?? [];
  const names = list.map((s) => s.name);
  if (state.service && !names.includes(state.service)) names.unshift(state.service);
  const current = [...el.service.options].map((o) => o.value).join('\0');
  if (current !== names.join('\0')) {
    el.service.replaceChildren(...names.map((n) => new Option(n, n)));
  }
  el.service.value = state.service;
  el.service.disabled = names.length === 0;
}

const PRESETS = ['now-15m', 'now-1h', 'now-24h', 'now-7d'];

function drawControls(): void {
  drawServices();
  const preset = state.to === 'now' && PRESETS.includes(state.from) ? state.from : 'custom';
  for (const b of el.presets.querySelectorAll<HTMLButtonElement>('button')) {
    const on = b.dataset.preset === preset || (b.dataset.preset === 'custom' && customOpen);
    b.setAttribute('aria-pressed', String(on));
  }
  const now = Date.now();
  const r = resolve(state, now);
  el.rangeText.textContent = `${formatRange(r)} (${span(r.to - r.from)})`;
  el.rangeText.title = `from=${state.from} to=${state.to}`;
  for (const b of el.modes.querySelectorAll<HTMLButtonElement>('button')) b.setAttribute('aria-pressed', String(b.dataset.mode === state.mode));
  el.customRange.hidden = !customOpen;

  // Downloads: the merged profile of what is on screen (the comparison side in a diff).
  if (state.service) {
    const c = state.mode === 'diff' ? comparisonSide(state) : { from: state.from, to: state.to, label: state.labels };
    el.download.href = api.pprofUrl({ service: state.service, ...c });
    el.download.textContent = state.mode === 'diff' ? 'Comparison pprof' : 'Download pprof';
    el.download.removeAttribute('aria-disabled');
    if (state.mode === 'diff') el.downloadBase.href = api.pprofUrl({ service: state.service, ...baseSide(state) });
  } else el.download.setAttribute('aria-disabled', 'true');
  el.downloadBase.hidden = state.mode !== 'diff';

  el.diffPanel.hidden = state.mode !== 'diff';
  if (state.mode === 'diff') {
    const choice = baseChoice(state, now);
    el.baseRange.value = choice;
    const b = resolve(baseSide(state), now);
    el.baseRangeText.textContent = formatRange(b);
    el.baseCustom.hidden = choice !== 'custom';
    setRangeInputs(el.baseCustom, b);
    el.comparisonRangeText.textContent = formatRange(resolve(comparisonSide(state), now));
  }
  if (el.search.value !== state.search && document.activeElement !== el.search) el.search.value = state.search;
  el.regex.checked = state.regex;
  el.granularity.value = state.granularity;
  drawLabelEditors();
}

function drawLabelEditors(): void {
  labels.set(state.labels, labelsAvailable);
  baseLabels.set(state.baseLabels, labelsAvailable);
  comparisonLabels.set(state.comparisonLabels, labelsAvailable);
}

function drawTimeline(t: TimelineResponse): void {
  let extra: { from: number; to: number; label: string } | undefined;
  if (state.mode === 'diff' && (state.baseFrom || state.baseTo)) {
    const b = resolve(baseSide(state), Date.now());
    extra = { ...b, label: 'base' };
  }
  timeline.render(t, extra);
}

function drawTable(): void {
  el.tableTitle.textContent = state.mode === 'diff' ? 'Change by function' : 'Top functions';
  top.set(table, { sort: state.sort, order: state.order, filter: state.filter, focus: state.focus });
}

/** Everything that does not need the server: zoom, highlight, summary, legend, table. */
function drawView(): void {
  drawTable();
  if (!graph) return;
  drawSummary(graph);
  drawLegend(graph.kind);
  const zoomed = flame.zoomTo(state.zoom);
  if (zoomed.length !== state.zoom.length) {
    // The URL named a frame this range does not have: keep the part that exists.
    state = { ...state, zoom: zoomed };
    window.history.replaceState(null, '', `${location.pathname}${serializeState(state)}`);
  }
  drawBreadcrumb(zoomed);
  drawHighlight();
}

function drawSummary(g: FlameData): void {
  el.summary.replaceChildren();
  const add = (cls: string, text: string): void => {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    el.summary.append(s);
  };
  if (g.kind === 'single') {
    const r = g.resp;
    el.summary.dataset.total = String(r.total);
    add('total', `${count(r.total)} samples`);
    add('muted', `${state.service}, ${formatRange(r)}`);
    if (r.filters.length) add('muted', r.filters.map((f) => `${f.name}${f.op === '=' ? '=' : '≠'}${f.values.join('|')}`).join(', '));
    if (r.fullNodes > r.nodes) add('muted', `${count(r.nodes)} of ${count(r.fullNodes)} frames (the smallest merged into [other])`);
  } else {
    const r = g.resp;
    el.summary.dataset.total = String(r.comparison.total);
    el.summary.dataset.baseTotal = String(r.base.total);
    add('total', `base ${count(r.base.total)} → comparison ${count(r.comparison.total)} samples`);
    add('muted', 'widths: comparison plus the base scaled to it; colour: change in share');
    if (r.fullNodes > r.nodes) add('muted', `${count(r.nodes)} of ${count(r.fullNodes)} frames`);
  }
}

function drawLegend(kind: 'single' | 'diff'): void {
  el.legend.replaceChildren();
  const item = (color: string, label: string, title: string): void => {
    const s = document.createElement('span');
    s.className = 'legend-item';
    s.title = title;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = color;
    s.append(sw, label);
    el.legend.append(s);
  };
  if (kind === 'single') for (const o of ORIGINS) item(legendColor(o.origin), o.label, o.title);
  else {
    item(diffColor(1, 1), 'grew', 'share of the CPU grew (comparison minus base)');
    item(DIFF_NEUTRAL, 'unchanged', 'changed by less than 0.1 percentage point');
    item(diffColor(-1, 1), 'shrank', 'share of the CPU shrank');
  }
}

function drawBreadcrumb(path: string[]): void {
  el.breadcrumb.replaceChildren();
  const crumb = (label: string, target: string[], current: boolean): void => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'crumb';
    b.textContent = label;
    b.title = label;
    if (current) b.setAttribute('aria-current', 'true');
    else b.addEventListener('click', () => update({ zoom: target }, 'push'));
    el.breadcrumb.append(b);
  };
  crumb('all', [], path.length === 0);
  path.forEach((name, i) => {
    const sep = document.createElement('span');
    sep.className = 'sep';
    sep.textContent = '›';
    el.breadcrumb.append(sep);
    crumb(name, path.slice(0, i + 1), i === path.length - 1);
  });
  if (path.length) {
    const reset = document.createElement('button');
    reset.type = 'button';
    reset.className = 'reset';
    reset.id = 'reset-zoom';
    reset.textContent = 'Reset zoom';
    reset.addEventListener('click', () => update({ zoom: [] }, 'push'));
    el.breadcrumb.append(reset);
  } else {
    const hint = document.createElement('span');
    hint.className = 'hint';
    hint.textContent = 'click a frame to zoom';
    el.breadcrumb.append(hint);
  }
}

function drawHighlight(): void {
  el.searchStatus.replaceChildren();
  el.searchStatus.removeAttribute('role');
  el.search.removeAttribute('aria-invalid');
  let matcher: Matcher | undefined;
  let what = '';
  if (state.focus) {
    matcher = focusMatcher(state.focus);
    what = state.focus.name;
  } else if (state.search) {
    const c = compileSearch(state.search, state.regex);
    if (c.error) {
      el.search.setAttribute('aria-invalid', 'true');
      el.searchStatus.setAttribute('role', 'alert');
      el.searchStatus.className = 'search-status error';
      el.searchStatus.textContent = `Search: ${c.error}. Fix the pattern, or untick “regex” to search for the text as typed.`;
      flame.highlight(undefined);
      return;
    }
    matcher = c.matcher;
    what = state.regex ? `/${state.search}/` : `“${state.search}”`;
  }
  el.searchStatus.className = 'search-status';
  const s = flame.highlight(matcher);
  if (!s) return;
  const text =
    s.frames === 0
      ? `${what}: no frame matches.`
      : s.baseShare !== undefined
        ? `${what}: ${count(s.frames)} frame${s.frames === 1 ? '' : 's'}, base ${percent(s.baseShare)} → comparison ${percent(s.share)} of samples`
        : `${what}: ${count(s.frames)} frame${s.frames === 1 ? '' : 's'}, ${percent(s.share)} of samples`;
  const span = document.createElement('span');
  span.className = 'match';
  span.dataset.share = String(s.share);
  span.textContent = text;
  el.searchStatus.append(span);
  const clear = document.createElement('button');
  clear.type = 'button';
  clear.className = 'link';
  clear.textContent = 'clear';
  clear.addEventListener('click', () => update({ search: '', focus: undefined }, 'push'));
  el.searchStatus.append(clear);
}

// ---------------------------------------------------------------- diff base choices

type BaseChoice = 'prev' | 'day' | 'week' | 'same' | 'custom';

function baseRangeFor(choice: Exclude<BaseChoice, 'same' | 'custom'>, s: ViewState, now: number): Range {
  const r = resolve(s, now);
  const shift = choice === 'prev' ? r.to - r.from : choice === 'day' ? DAY : 7 * DAY;
  return shifted({ from: s.from, to: s.to }, shift, now);
}

function baseChoice(s: ViewState, now: number): BaseChoice {
  if (!s.baseFrom && !s.baseTo) return 'same';
  for (const c of ['prev', 'day', 'week'] as const) {
    const r = baseRangeFor(c, s, now);
    if (r.from === s.baseFrom && r.to === s.baseTo) return c;
  }
  return 'custom';
}

function baseFor(choice: BaseChoice): Partial<ViewState> {
  if (choice === 'same') return { baseFrom: undefined, baseTo: undefined };
  if (choice === 'custom') return {};
  const r = baseRangeFor(choice, state, Date.now());
  return { baseFrom: r.from, baseTo: r.to };
}

// ---------------------------------------------------------------- controls

function setRangeInputs(form: HTMLFormElement, r: { from: number; to: number }): void {
  const from = form.elements.namedItem('from') as HTMLInputElement;
  const to = form.elements.namedItem('to') as HTMLInputElement;
  if (document.activeElement !== from) from.value = toLocalInput(r.from);
  if (document.activeElement !== to) to.value = toLocalInput(r.to);
}

function readRangeInputs(form: HTMLFormElement): { from: number; to: number } | undefined {
  const from = fromLocalInput((form.elements.namedItem('from') as HTMLInputElement).value);
  const to = fromLocalInput((form.elements.namedItem('to') as HTMLInputElement).value);
  if (from === undefined || to === undefined || !(from < to)) return undefined;
  return { from, to };
}

el.service.addEventListener('change', () => {
  // Labels, zoom and the picked function belong to the old service.
  update(
    { service: el.service.value, labels: [], baseLabels: [], comparisonLabels: [], zoom: [], focus: undefined, filter: '' },
    'push',
  );
});

el.presets.addEventListener('click', (e) => {
  const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-preset]');
  if (!b) return;
  const p = b.dataset.preset!;
  if (p === 'custom') {
    customOpen = !customOpen;
    setRangeInputs(el.customRange, resolve(state, Date.now()));
    drawControls();
    return;
  }
  customOpen = false;
  const patch: Partial<ViewState> = { from: p, to: 'now' };
  // A base derived from the range follows it.
  if (state.mode === 'diff') {
    const choice = baseChoice(state, Date.now());
    if (choice !== 'same' && choice !== 'custom') Object.assign(patch, baseRangeForPatch(choice, { ...state, ...patch }));
  }
  update(patch, 'push');
});

function baseRangeForPatch(choice: 'prev' | 'day' | 'week', s: ViewState): Partial<ViewState> {
  const r = baseRangeFor(choice, s, Date.now());
  return { baseFrom: r.from, baseTo: r.to };
}

el.customRange.addEventListener('submit', (e) => {
  e.preventDefault();
  const r = readRangeInputs(el.customRange);
  if (!r) return;
  customOpen = false;
  update({ from: absolute(r.from), to: absolute(r.to) }, 'push');
});
el.customRange.querySelector('[data-action="cancel"]')!.addEventListener('click', () => {
  customOpen = false;
  drawControls();
});

el.modes.addEventListener('click', (e) => {
  const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-mode]');
  if (!b) return;
  const mode = b.dataset.mode === 'diff' ? 'diff' : 'single';
  if (mode === state.mode) return;
  const patch: Partial<ViewState> = { mode, sort: undefined, order: undefined };
  // First time in diff mode: compare with the period just before, the usual "what changed" question.
  if (mode === 'diff' && !state.baseFrom && !state.baseTo && !state.baseLabels.length && !state.comparisonLabels.length) {
    Object.assign(patch, baseFor('prev'));
  }
  update(patch, 'push');
});

el.baseRange.addEventListener('change', () => {
  const choice = el.baseRange.value as BaseChoice;
  if (choice === 'custom') {
    el.baseCustom.hidden = false;
    return;
  }
  update(baseFor(choice), 'push');
});

el.baseCustom.addEventListener('submit', (e) => {
  e.preventDefault();
  const r = readRangeInputs(el.baseCustom);
  if (r) update({ baseFrom: absolute(r.from), baseTo: absolute(r.to) }, 'push');
});

el.search.addEventListener('input', () => {
  window.clearTimeout(searchTimer);
  // Applied when typing pauses, and only if nothing else (a table pick, Back) set the search meanwhile.
  searchTimer = window.setTimeout(() => {
    if (el.search.value !== state.search) update({ search: el.search.value, focus: undefined }, 'replace');
  }, 150);
});
el.search.addEventListener('keydown', (e) => {
  if (e.key === 'Enter') {
    window.clearTimeout(searchTimer);
    update({ search: el.search.value, focus: undefined }, 'replace');
  } else if (e.key === 'Escape') {
    el.search.value = '';
    update({ search: '', focus: undefined }, 'replace');
  }
});
el.regex.addEventListener('change', () => update({ regex: el.regex.checked }, 'replace'));
el.granularity.addEventListener('change', () => update({ granularity: el.granularity.value === 'line' ? 'line' : 'function', zoom: [] }, 'push'));

document.addEventListener('keydown', (e) => {
  const t = e.target as HTMLElement;
  if (e.key === '/' && !['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName)) {
    e.preventDefault();
    el.search.focus();
  }
});

/** The view's URL with relative times pinned, so whoever opens it later sees these same samples. */
function pinnedUrl(): string {
  const now = Date.now();
  const pin = (v: string | undefined): string | undefined => (v && isRelative(v) ? absolute(parseTime(v, now) ?? now) : v);
  const s: ViewState = { ...state, from: pin(state.from)!, to: pin(state.to)! };
  if (s.mode === 'diff') {
    s.baseFrom = pin(s.baseFrom);
    s.baseTo = pin(s.baseTo);
    s.comparisonFrom = pin(s.comparisonFrom);
    s.comparisonTo = pin(s.comparisonTo);
  }
  return new URL(`${location.pathname}${serializeState(s)}`, location.href).toString();
}

el.copyLink.addEventListener('click', () => {
  const url = pinnedUrl();
  el.link.value = url;
  el.linkBox.hidden = false;
  el.link.select();
  el.linkStatus.textContent = '';
  navigator.clipboard?.writeText(url).then(
    () => (el.linkStatus.textContent = 'copied to the clipboard'),
    () => (el.linkStatus.textContent = 'select and copy it (the browser did not allow clipboard access)'),
  );
});
$('#link-close').addEventListener('click', () => (el.linkBox.hidden = true));

el.download.addEventListener('click', (e) => {
  if (el.download.getAttribute('aria-disabled') === 'true') e.preventDefault();
});

let resizeTimer = 0;
window.addEventListener('resize', () => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    flame.resize();
    timeline.resize();
  }, 100);
});

void render(true);
