/**
 * The web UI end to end in a real browser: Debian's chromium driven by
 * playwright-core, against `kiln serve` (a child process, as users run it)
 * holding profiles recorded with `kiln record` from test/workloads/shares.py:
 * a base hour at the usual 60/30/10 split and the next hour with c grown to
 * 30 %, pushed as two hosts so label filters change the totals. A synthetic
 * service adds standard-library, site-packages and Kiln frames for the colours.
 *
 * The sampler can land anywhere in a live process (Runner.run has self
 * samples whenever it caught the loop between calls), so every expectation
 * about frames, shares, colours and order is computed from the recorded
 * profiles themselves (callTree below), never from what one recording
 * happened to show. Every API request the page sends is checked against the
 * parameters its endpoint takes.
 *
 * Screenshots go to test-artifacts/ui/ (ignored by git).
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IngestResponse } from '../ingest/api.js';
import { diffColor } from '../ui/src/colors.js';
import { value } from '../ui/src/format.js';
import { GO_SAMPLE_TYPE_CONFIG, goHeapPprof } from '../kit/pprof-shapes.js';
import { serve } from '../ingest/serve.js';
import { launchChromium, pageLoadFigures } from '../kit/chromium.js';
import { loadFleetService } from '../kit/fleet.js';
import { decodePprof, encodePprof, profileFromPprof } from '../profile/pprof.js';
import type { Frame, Profile } from '../profile/profile.js';
import { REPO, bodyBytes, recordProfile, startServe, startWorkload, tempDir, type Workload } from '../kit/harness.js';
import { hostPython } from '../kit/pythons.js';
import { unknownParams } from './ui-endpoints.js';

const UI_DIR = join(REPO, 'build', 'ui');
const ARTIFACTS = join(REPO, 'test-artifacts', 'ui');
const HOUR = 3_600_000;
const HIGHLIGHT = '#c026d3';

async function push(url: string, service: string, host: string, timeMs: number, body: Uint8Array): Promise<IngestResponse> {
  const r = await fetch(`${url}/api/v1/profiles?service=${service}&host=${host}&time=${timeMs}`, { method: 'POST', body: Buffer.from(body) });
  const out = (await r.json()) as IngestResponse;
  if (r.status !== 200) throw new Error(`push ${service}/${host}: ${r.status} ${JSON.stringify(out)}`);
  return out;
}

/** The heap the "mixed" service has (Go's four types): in-use bytes are the last value. */
const HEAP_SAMPLES: { stack: string[]; values: [number, number, number, number] }[] = [
  { stack: ['main', 'handler', 'alloc'], values: [300, 3 * 2 ** 20, 2, 8192] },
  { stack: ['main', 'cache.fill'], values: [10, 40960, 10, 40960] },
];

/** RFC 3339 to the second, as the page writes absolute times. */
const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

/** "60.1 %" inside a text, as a number. */
function percentIn(text: string, after: string): number {
  const m = new RegExp(`${after}\\s*([\\d.]+) %`).exec(text);
  if (!m) throw new Error(`no "${after} N %" in ${JSON.stringify(text)}`);
  return Number(m[1]);
}

function rgb(fill: string): [number, number, number] {
  const m = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(fill);
  if (!m) throw new Error(`not rgb(): ${fill}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function hue(fill: string): number {
  const m = /hsl\((\d+),/.exec(fill);
  if (!m) throw new Error(`not hsl(): ${fill}`);
  return Number(m[1]);
}

const frame = (name: string): string => `#flame g.frame[name="${name}"]`;

/** A recording's call tree at function granularity: what a correct flame graph of it holds. */
interface CallNode {
  name: string;
  value: number;
  self: number;
  children: Map<string, CallNode>;
}

function callTree(p: Profile): CallNode {
  const root: CallNode = { name: 'all', value: 0, self: 0, children: new Map() };
  for (const s of p.samples) {
    root.value += s.count;
    let n = root;
    // Frames are leaf first; the tree grows from the root. A function is its name, file and first line.
    for (let i = s.frames.length - 1; i >= 0; i--) {
      const f = s.frames[i]!;
      const key = `${f.name}\0${f.filename}\0${f.startLine}`;
      let c = n.children.get(key);
      if (!c) n.children.set(key, (c = { name: f.name, value: 0, self: 0, children: new Map() }));
      c.value += s.count;
      n = c;
    }
    n.self += s.count;
  }
  return root;
}

function* descendants(n: CallNode, path: string[] = []): Generator<{ node: CallNode; path: string[] }> {
  for (const c of n.children.values()) {
    const p = [...path, c.name];
    yield { node: c, path: p };
    yield* descendants(c, p);
  }
}

/** The node at a path of names from the root. */
function nodeAt(t: CallNode, path: string[]): CallNode {
  let n: CallNode | undefined = t;
  for (const name of path) n = [...(n?.children.values() ?? [])].find((c) => c.name === name);
  if (!n) throw new Error(`the recording has no ${path.join(';')}`);
  return n;
}

/** Nodes `match` accepts: what the search status counts as frames. */
function matchCount(t: CallNode, match: (name: string) => boolean): number {
  return [...descendants(t)].filter((d) => match(d.node.name)).length;
}

/** Share of the total under the nodes `match` accepts, nested matches counted once: what the search status reports. */
function matchShare(t: CallNode, match: (name: string) => boolean): number {
  const under = (n: CallNode): number => (match(n.name) ? n.value : [...n.children.values()].reduce((v, c) => v + under(c), 0));
  return [...t.children.values()].reduce((v, c) => v + under(c), 0) / t.value;
}

/** Frames named `name` the page draws: d3-flame-graph leaves out those 3 px wide or less. */
function drawnCount(t: CallNode, name: string, svgWidth: number): number {
  return [...descendants(t)].filter((d) => d.node.name === name && (d.node.value / t.value) * svgWidth > 3).length;
}

/** Per function (name and file): share of samples with it on top, as /api/v1/top has it. */
function selfShares(p: Profile): Map<string, { name: string; share: number }> {
  const total = p.samples.reduce((n, s) => n + s.count, 0);
  const out = new Map<string, { name: string; share: number }>();
  for (const s of p.samples) {
    for (const f of s.frames) {
      const key = `${f.name}\0${f.filename}`;
      if (!out.has(key)) out.set(key, { name: f.name, share: 0 });
    }
    const leaf = s.frames[0]!;
    out.get(`${leaf.name}\0${leaf.filename}`)!.share += s.count;
  }
  for (const v of out.values()) v.share /= total;
  return out;
}

/** Names in the order the table sorts them: by `value` descending, then by name. */
function tableOrder(rows: { name: string; value: number }[]): string[] {
  return [...rows].sort((a, b) => (b.value - a.value !== 0 ? b.value - a.value : a.name.localeCompare(b.name))).map((r) => r.name);
}

/** A diff frame's change in share, comparison minus base (0 where a side lacks it). */
function shareChange(base: CallNode, comparison: CallNode, path: string[]): number {
  const share = (t: CallNode): number => {
    try {
      return nodeAt(t, path).value / t.value;
    } catch {
      return 0;
    }
  };
  return share(comparison) - share(base);
}

/** The largest change in share of any frame of a diff: what the colours are scaled to. */
function maxShareChange(base: CallNode, comparison: CallNode): number {
  const paths = new Map<string, string[]>();
  for (const t of [base, comparison]) for (const d of descendants(t)) paths.set(d.path.join('\0'), d.path);
  return Math.max(...[...paths.values()].map((p) => Math.abs(shareChange(base, comparison, p))));
}

/** Each channel of an rgb() fill within `tolerance` of the expected one. */
function expectRgbNear(fill: string, want: string, what: string, tolerance = 2): void {
  const got = rgb(fill);
  const exp = rgb(want);
  for (let i = 0; i < 3; i++) expect(Math.abs(got[i]! - exp[i]!), `${what}: ${fill} vs ${want}`).toBeLessThanOrEqual(tolerance);
}

describe('web UI in chromium', () => {
  const tmp = tempDir();
  let server: Awaited<ReturnType<typeof startServe>>;
  let browser: Browser;
  let context: BrowserContext;
  const workloads: Workload[] = [];
  const pages: Page[] = [];
  const pageErrors: string[] = [];
  /** API requests the page sent with a parameter their endpoint does not take. */
  const badRequests: string[] = [];
  /** Base hour [h0, h0 + 1 h): 60/30/10; comparison hour [h0 + 1 h, h0 + 2 h): c grown. */
  let h0 = 0;
  const totals = { base: 0, baseWeb1: 0, comparison: 0 };
  /** The recordings, and their trees: every expectation below comes from these. */
  let baseRecording: Profile;
  let grownRecording: Profile;
  let baseTree: CallNode;
  let grownTree: CallNode;
  /** Leaf functions of the base recording: a, b, c, and Runner.run whenever a sample landed between calls. */
  let baseLeaves: string[] = [];
  const RUN = ['<module>', 'main', 'Runner.run'];
  /** Share of the base recording under a frame of the workload's call path. */
  const baseShare = (...path: string[]): number => nodeAt(baseTree, path).value / baseTree.value;

  const baseUrl = (extra = ''): string => `${server.url}/?service=shop&from=${iso(h0)}&to=${iso(h0 + HOUR)}${extra}`;
  const comparisonUrl = (extra = ''): string => `${server.url}/?service=shop&from=${iso(h0 + HOUR)}&to=${iso(h0 + 2 * HOUR)}${extra}`;

  async function open(url: string, waitForGraph = true): Promise<Page> {
    const page = await context.newPage();
    pages.push(page);
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    page.on('request', (r) => {
      if (!r.url().includes('/api/v1/')) return;
      const bad = unknownParams(r.url());
      if (bad.length) badRequests.push(`${r.url()}: ${bad.join(', ')}`);
    });
    await page.goto(url);
    if (waitForGraph) await page.waitForFunction(() => document.documentElement.dataset.flameRendered !== undefined, undefined, { timeout: 30_000 });
    return page;
  }

  async function fill(page: Page, name: string): Promise<string> {
    return (await page.getAttribute(`${frame(name)} rect`, 'fill')) ?? '';
  }

  async function width(page: Page, sel: string): Promise<number> {
    return Number(await page.getAttribute(sel, 'width'));
  }

  /** Waits until frame `name` is drawn `target` px wide (zoom transitions take 300 ms); says where it got stuck. */
  async function waitWidth(page: Page, name: string, target: number | 'full'): Promise<void> {
    try {
      await page.waitForFunction(
        ([sel, t]) => {
          const w = Number(document.querySelector(sel as string)?.getAttribute('width') ?? 0);
          const want = t === 'full' ? Number(document.querySelector('#flame svg')?.getAttribute('width')) : (t as number);
          return Math.abs(w - want) < 1;
        },
        [`${frame(name)} rect`, target] as const,
        { timeout: 10_000 },
      );
    } catch (e) {
      const now = await page.evaluate(() =>
        [...document.querySelectorAll('#flame g.frame')].map((g) => `${g.getAttribute('name')}=${g.querySelector('rect')?.getAttribute('width')}`).join(' '),
      );
      throw new Error(`${name} never got ${target} px wide at ${page.url()}; frames: ${now}`, { cause: e });
    }
  }

  async function summaryTotal(page: Page): Promise<number> {
    return Number(await page.getAttribute('#summary', 'data-total'));
  }

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const py = hostPython();
    const [baseW, grownW] = await Promise.all([startWorkload(py, 'shares.py', ['60']), startWorkload(py, 'shares.py', ['60', '40', '30', '30'])]);
    workloads.push(baseW, grownW);
    const [baseRec, grownRec] = await Promise.all([
      recordProfile(['--pid', String(baseW.pid), '--duration', '5s']),
      recordProfile(['--pid', String(grownW.pid), '--duration', '5s']),
    ]);
    await Promise.all(workloads.map((w) => w.stop()));
    // Every expectation below is derived from what was recorded, not from what one recording happened to show.
    baseRecording = baseRec.profile;
    grownRecording = grownRec.profile;
    baseTree = callTree(baseRec.profile);
    grownTree = callTree(grownRec.profile);
    baseLeaves = [...new Set(baseRec.profile.samples.map((s) => s.frames[0]!.name))].sort();
    // What the workload guarantees any correct recording of it holds: its call path, and each function under it.
    for (const t of [baseTree, grownTree]) for (const f of ['a', 'b', 'c']) nodeAt(t, [...RUN, f]);

    server = await startServe(join(tmp.dir, 'data'), 0, ['--ui-dir', UI_DIR]);
    h0 = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const min = 60_000;
    const b1 = await push(server.url, 'shop', 'web-1', h0 + 10 * min, baseRec.bytes);
    const b2 = await push(server.url, 'shop', 'web-1', h0 + 20 * min, baseRec.bytes);
    const b3 = await push(server.url, 'shop', 'web-2', h0 + 30 * min, baseRec.bytes);
    const c1 = await push(server.url, 'shop', 'web-1', h0 + 70 * min, grownRec.bytes);
    const c2 = await push(server.url, 'shop', 'web-2', h0 + 80 * min, grownRec.bytes);
    totals.base = b1.samples + b2.samples + b3.samples;
    totals.baseWeb1 = b1.samples + b2.samples;
    totals.comparison = c1.samples + c2.samples;

    // A service whose frames live in every kind of place, for the colours.
    const f = (name: string, filename: string, line: number): Frame => ({ name, systemName: name.split('.').pop()!, filename, startLine: line, line });
    const app = f('handle', '/srv/checkout/app.py', 10);
    const root = f('<module>', '/srv/checkout/app.py', 1);
    const json = f('JSONEncoder.encode', '/usr/lib/python3.11/json/encoder.py', 183);
    const requests = f('Session.request', '/srv/venv/lib/python3.11/site-packages/requests/sessions.py', 500);
    const truncated: Frame = { name: '[truncated]', systemName: '[truncated]', filename: '', startLine: 0, line: 0 };
    const synthetic: Profile = {
      samples: [
        { frames: [json, app, root], labels: {}, count: 300 },
        { frames: [requests, app, root], labels: {}, count: 200 },
        { frames: [app, root], labels: {}, count: 100 },
        { frames: [truncated], labels: {}, count: 50 },
      ],
      periodNs: 10_101_010,
      startNs: 0n,
      durationNs: 10e9,
    };
    await push(server.url, 'checkout', 'web-1', h0 + 15 * min, new Uint8Array(await encodePprof(synthetic)));

    // A service with CPU and a Go heap (four types), for the type picker.
    await push(server.url, 'mixed', 'web-1', h0 + 15 * min, new Uint8Array(await encodePprof(synthetic)));
    const form = new FormData();
    form.append('profile', new Blob([bodyBytes(goHeapPprof(HEAP_SAMPLES, h0 + 15 * min))]), 'profile.pprof');
    form.append('sample_type_config', new Blob([JSON.stringify(GO_SAMPLE_TYPE_CONFIG.heap)]), 'sample_type_config.json');
    const heap = await fetch(`${server.url}/ingest?name=mixed&spyName=gospy&sampleRate=100`, { method: 'POST', body: form });
    expect(heap.status, await heap.text()).toBe(200);

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  });

  afterEach(async () => {
    for (const p of pages.splice(0)) await p.close().catch(() => {});
    expect(pageErrors, 'uncaught errors in the page').toEqual([]);
    expect(badRequests.splice(0), 'API requests with parameters their endpoint does not take').toEqual([]);
  });

  afterAll(async () => {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.stop();
    for (const w of workloads) await w.stop();
    tmp.cleanup();
  });

  it('loads the flame graph with the known frames, their shares in the tooltip and the table', async () => {
    const page = await open(baseUrl());
    const svgWidth = await width(page, '#flame svg');
    for (const name of [...RUN, 'a', 'b', 'c']) expect(await page.locator(frame(name)).count(), name).toBe(drawnCount(baseTree, name, svgWidth));
    expect(await summaryTotal(page)).toBe(totals.base);
    // Drawn in full by the time the page says it rendered: each frame of the call path at its share of the svg,
    // and a, b and c each taking its part of Runner.run's width (the rest is Runner.run's own time).
    for (let i = 1; i <= RUN.length; i++) {
      const path = RUN.slice(0, i);
      expect(Math.abs((await width(page, `${frame(path.at(-1)!)} rect`)) - svgWidth * baseShare(...path)), path.join(';')).toBeLessThan(1);
    }
    const run = await width(page, `${frame('Runner.run')} rect`);
    for (const f of ['a', 'b', 'c']) {
      expect(Math.abs((await width(page, `${frame(f)} rect`)) - (run * nodeAt(baseTree, [...RUN, f]).value) / nodeAt(baseTree, RUN).value), f).toBeLessThan(1);
    }

    await page.hover(frame('a'));
    const tip = page.locator('.tooltip');
    await tip.waitFor({ state: 'visible' });
    const text = (await tip.textContent()) ?? '';
    expect(text).toMatch(/^a/);
    expect(text).toMatch(/shares\.py:\d+/);
    const a = nodeAt(baseTree, [...RUN, 'a']);
    expect(percentIn(text, 'total')).toBeCloseTo((a.value / baseTree.value) * 100, 0);
    expect(percentIn(text, 'self')).toBeCloseTo((a.self / baseTree.value) * 100, 0);
    // The base recording was pushed three times; its samples are CPU time, a period each.
    expect(text).toContain(value(3 * a.value, { unit: 'nanoseconds', noun: 'CPU time', scale: Math.round(baseRecording.periodNs) }));

    // The table beside it: functions by self time, the first at its share.
    await page.locator('#top tbody tr').first().waitFor();
    const fns = [...selfShares(baseRecording).values()];
    const order = tableOrder(fns.map((f) => ({ name: f.name, value: f.share })));
    const first = page.locator('#top tbody tr').first();
    expect(await first.getAttribute('data-name')).toBe(order[0]);
    const firstShare = fns.find((f) => f.name === order[0])!.share;
    expect(percentIn((await first.locator('td.num').first().textContent()) ?? '', '')).toBeCloseTo(firstShare * 100, 0);
    // The user's own code is drawn in the warm colours.
    expect(hue(await fill(page, 'a'))).toBeLessThanOrEqual(40);
    await page.mouse.move(5, 5);
    await page.screenshot({ path: join(ARTIFACTS, 'main.png'), fullPage: true });
  });

  it('colours frames by where their code lives, with a legend', async () => {
    const page = await open(`${server.url}/?service=checkout&from=${iso(h0)}&to=${iso(h0 + HOUR)}`);
    expect(hue(await fill(page, 'handle'))).toBeLessThanOrEqual(40); // user code: warm
    expect(hue(await fill(page, 'JSONEncoder.encode'))).toBeGreaterThanOrEqual(200); // stdlib: blue
    const pkg = hue(await fill(page, 'Session.request'));
    expect(pkg).toBeGreaterThanOrEqual(140); // site-packages: green
    expect(pkg).toBeLessThan(170);
    expect(await fill(page, '[truncated]')).toMatch(/^hsl\(0, 0%/); // Kiln's own: grey
    expect(await page.locator('#legend').textContent()).toMatch(/your code.*standard library.*site-packages.*kiln/);
    await page.screenshot({ path: join(ARTIFACTS, 'colours.png'), fullPage: true });
  });

  it('search highlights matches literally, takes patterns only when asked, and never throws', async () => {
    const page = await open(baseUrl());
    await page.fill('#search', 'Runner');
    await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('fill') === '#c026d3', `${frame('Runner.run')} rect`);
    expect(await fill(page, 'a')).not.toBe(HIGHLIGHT);
    const runner = (name: string): boolean => name.toLowerCase().includes('runner');
    const frames = matchCount(baseTree, runner);
    expect(await page.locator('#search-status').textContent()).toMatch(new RegExp(`“Runner”: ${frames} frames?, [\\d.]+ % of CPU time`));
    expect(Number(await page.getAttribute('#search-status .match', 'data-share'))).toBeCloseTo(matchShare(baseTree, runner), 6);
    expect(page.url()).toContain('search=Runner');

    // A pattern: only c, at its share.
    await page.check('#regex');
    await page.fill('#search', '^c$');
    await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('fill') === '#c026d3', `${frame('c')} rect`);
    expect(await fill(page, 'a')).not.toBe(HIGHLIGHT);
    const share = Number(await page.getAttribute('#search-status .match', 'data-share'));
    expect(share).toBeCloseTo(matchShare(baseTree, (n) => /^c$/.test(n)), 6);

    // "foo(" is not a valid pattern: an inline message, no exception.
    await page.fill('#search', 'foo(');
    await page.locator('#search-status.error').waitFor();
    expect(await page.locator('#search-status').textContent()).toMatch(/not a valid pattern/);
    expect(await page.getAttribute('#search', 'aria-invalid')).toBe('true');
    // As literal text it simply matches nothing.
    await page.uncheck('#regex');
    await page.waitForFunction(() => /no frame matches/.test(document.querySelector('#search-status')?.textContent ?? ''));
    // Literal: "." is a dot, not any character.
    await page.fill('#search', 'Runner.run');
    await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('fill') === '#c026d3', `${frame('Runner.run')} rect`);
    await page.fill('#search', 'Runner.ru.');
    await page.waitForFunction(() => /no frame matches/.test(document.querySelector('#search-status')?.textContent ?? ''));

    // Picking a function in the table highlights it in the graph.
    await page.fill('#search', '');
    await page.click('#top tbody tr[data-name="b"]');
    await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('fill') === '#c026d3', `${frame('b')} rect`);
    expect(await fill(page, 'a')).not.toBe(HIGHLIGHT);
    expect(await page.locator('#top tbody tr[data-name="b"]').getAttribute('aria-selected')).toBe('true');
    expect(page.url()).toContain('fn=b');
  });

  it('zooms into a clicked frame, and the breadcrumb resets the zoom', async () => {
    const page = await open(baseUrl());
    const full = await width(page, '#flame svg');
    const before = await width(page, `${frame('c')} rect`);
    expect(Math.abs(before - full * baseShare(...RUN, 'c'))).toBeLessThan(1);
    await page.click(frame('c'));
    await waitWidth(page, 'c', 'full');
    expect(page.url()).toContain('zoom=%3Cmodule%3E%3Bmain%3BRunner.run%3Bc');
    expect(await page.locator('#breadcrumb [aria-current="true"]').textContent()).toBe('c');
    // Siblings of the zoomed frame are gone (width 0, or not drawn at all).
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.getAttribute('width') ?? 0) < 1, `${frame('a')} rect`);

    await page.click('#reset-zoom');
    await waitWidth(page, 'c', before);
    expect(page.url()).not.toContain('zoom=');

    // Zooms are history entries: Back returns to the zoomed frame.
    await page.goBack();
    await page.waitForFunction(() => new URL(location.href).searchParams.has('zoom'));
    await waitWidth(page, 'c', 'full');
  });

  it('a label filter picked from the service’s labels changes the totals', async () => {
    const page = await open(baseUrl());
    expect(await summaryTotal(page)).toBe(totals.base);
    await page.waitForFunction(() => [...document.querySelectorAll('#labels select[name="label-name"] option')].some((o) => (o as HTMLOptionElement).value === 'host'));
    await page.selectOption('#labels select[name="label-name"]', 'host');
    await page.selectOption('#labels select[name="label-value"]', 'web-1');
    await page.click('#labels button[type="submit"]');
    await page.waitForFunction((n) => Number(document.querySelector('#summary')?.getAttribute('data-total')) === n, totals.baseWeb1);
    expect(page.url()).toContain('label=host%3Dweb-1');
    expect(await page.locator('#labels .chip').textContent()).toMatch(/host = web-1/);
    // The shares hold (both hosts ran the same profile), the totals do not.
    await page.hover(frame('a'));
    expect(percentIn((await page.locator('.tooltip').textContent()) ?? '', 'total')).toBeCloseTo(baseShare(...RUN, 'a') * 100, 0);

    // ≠ excludes it; removing the chip brings every host back.
    await page.click('#labels .chip-remove');
    await page.waitForFunction((n) => Number(document.querySelector('#summary')?.getAttribute('data-total')) === n, totals.base);
    await page.selectOption('#labels select[name="label-name"]', 'host');
    await page.selectOption('#labels select[name="label-op"]', '!=');
    await page.selectOption('#labels select[name="label-value"]', 'web-1');
    await page.click('#labels button[type="submit"]');
    await page.waitForFunction((n) => Number(document.querySelector('#summary')?.getAttribute('data-total')) === n, totals.base - totals.baseWeb1);
  });

  it('diff mode colours the function that grew red and sorts the table by the change', async () => {
    const page = await open(comparisonUrl());
    await page.click('#modes button[data-mode="diff"]');
    // The default base is the period just before: the base hour.
    await page.waitForFunction(() => document.querySelector('#summary')?.getAttribute('data-base-total') !== null);
    expect(Number(await page.getAttribute('#summary', 'data-base-total'))).toBe(totals.base);
    expect(await summaryTotal(page)).toBe(totals.comparison);
    expect(await page.inputValue('#base-range')).toBe('prev');
    expect(page.url()).toContain('mode=diff');
    expect(page.url()).toContain(`baseFrom=${encodeURIComponent(iso(h0))}`);

    // Each frame coloured by its change in share between the two recordings, scaled to the largest change.
    const max = maxShareChange(baseTree, grownTree);
    const change = (f: string): number => shareChange(baseTree, grownTree, f === 'Runner.run' ? RUN : [...RUN, f]);
    for (const f of ['a', 'b', 'c', 'Runner.run']) expectRgbNear(await fill(page, f), diffColor(change(f), max), f);
    // c grew from 10 % to 30 % of the CPU: red, and by far.
    expect(change('c')).toBeGreaterThan(0.1);
    const [r, g, b] = rgb(await fill(page, 'c'));
    expect(r - Math.max(g, b), `c is red: ${r},${g},${b}`).toBeGreaterThan(80);

    await page.hover(frame('c'));
    const tip = (await page.locator('.tooltip').textContent()) ?? '';
    expect(tip).toMatch(/grew/);
    expect(percentIn(tip, 'base')).toBeCloseTo(baseShare(...RUN, 'c') * 100, 0);
    const shown = /change\s*\+([\d.]+) pp/.exec(tip);
    expect(shown, tip).not.toBeNull();
    expect(Number(shown![1])).toBeCloseTo(change('c') * 100, 0);

    // The table by change in self share, largest growth first.
    const baseSelf = selfShares(baseRecording);
    const grownSelf = selfShares(grownRecording);
    const keys = new Set([...baseSelf.keys(), ...grownSelf.keys()]);
    const byChange = tableOrder(
      [...keys].map((k) => ({ name: (baseSelf.get(k) ?? grownSelf.get(k))!.name, value: (grownSelf.get(k)?.share ?? 0) - (baseSelf.get(k)?.share ?? 0) })),
    );
    await page.locator('#top tbody tr').first().waitFor();
    expect(await page.locator('#top tbody tr').first().getAttribute('data-name')).toBe(byChange[0]);
    expect(await page.locator('#top tbody tr').last().getAttribute('data-name')).toBe(byChange.at(-1));
    expect(await page.locator('#top th[aria-sort="descending"]').textContent()).toMatch(/Δ self/);
    await page.mouse.move(5, 5);
    await page.screenshot({ path: join(ARTIFACTS, 'diff.png'), fullPage: true });

    // A label-set diff: same range, web-2 against web-1.
    await page.selectOption('#base-range', 'same');
    await page.waitForFunction(() => !new URL(location.href).searchParams.has('baseFrom'));
    await page.waitForFunction(() => Number(document.querySelector('#summary')?.getAttribute('data-base-total')) > 0);
  });

  it('downloads the current view as a pprof that decodes', async () => {
    const page = await open(baseUrl('&label=host%3Dweb-1'));
    const total = await summaryTotal(page);
    expect(total).toBe(totals.baseWeb1);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toMatch(/^shop-.*\.pb\.gz$/);
    const bytes = readFileSync((await download.path())!);
    const profile = profileFromPprof(decodePprof(bytes));
    expect(profile.samples.reduce((n, s) => n + s.count, 0)).toBe(total);
    const leaves = new Set(profile.samples.map((s) => s.frames[0]!.name));
    // Both web-1 pushes carried the base recording: the export's leaves are exactly its leaves.
    expect([...leaves].sort()).toEqual(baseLeaves);
    expect(baseLeaves).toEqual(expect.arrayContaining(['a', 'b', 'c']));
  });

  it('a copied URL reproduces the view', async () => {
    const page = await open(baseUrl('&label=host%3Dweb-1'));
    await page.click(frame('Runner.run'));
    await page.waitForFunction(() => new URL(location.href).searchParams.has('zoom'));
    await page.fill('#search', 'b');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('search') === 'b');
    await page.click('#top th button[data-sort="total"]');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('sort') === 'total');
    await page.fill('#table-pane input[name="filter"]', 'shares');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('filter') === 'shares');
    // Settled: the zoom transition over, b highlighted.
    await waitWidth(page, 'Runner.run', 'full');
    await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('fill') === '#c026d3', `${frame('b')} rect`);

    const visible = async (p: Page) =>
      p.evaluate(() => ({
        service: (document.querySelector('#service') as HTMLSelectElement).value,
        range: document.querySelector('#range-text')?.textContent,
        summary: document.querySelector('#summary')?.textContent,
        chips: [...document.querySelectorAll('#labels .chip')].map((c) => c.textContent),
        crumbs: document.querySelector('#breadcrumb')?.textContent,
        search: (document.querySelector('#search') as HTMLInputElement).value,
        status: document.querySelector('#search-status .match')?.textContent,
        highlighted: [...document.querySelectorAll('#flame g.frame')]
          .filter((g) => g.querySelector('rect')?.getAttribute('fill') === '#c026d3')
          .map((g) => g.getAttribute('name'))
          .sort(),
        zoomedWidth: document.querySelector('#flame g.frame[name="Runner.run"] rect')?.getAttribute('width'),
        rows: [...document.querySelectorAll('#top tbody tr')].map((r) => r.textContent),
        sorted: document.querySelector('#top th[aria-sort="descending"]')?.textContent,
        filter: (document.querySelector('#table-pane input[name="filter"]') as HTMLInputElement).value,
      }));
    const want = await visible(page);
    // The only function of shares.py with a "b" in its name.
    expect(want.highlighted).toEqual(['b']);
    expect(want.crumbs).toContain('Runner.run');
    expect(want.chips).toEqual(['host = web-1×']);

    const copy = await open(page.url());
    await copy.waitForFunction(() => document.querySelectorAll('#top tbody tr').length > 0);
    await copy.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('fill') === '#c026d3', `${frame('b')} rect`);
    await waitWidth(copy, 'Runner.run', 'full');
    await expect.poll(() => visible(copy), { timeout: 10_000 }).toEqual(want);

    // "Copy link" pins the times: the same view, later.
    await page.click('#copy-link');
    const link = await page.inputValue('#link');
    expect(link).toContain(`from=${encodeURIComponent(iso(h0))}`);
    const pinned = await open(link);
    expect(await summaryTotal(pinned)).toBe(totals.baseWeb1);
  });

  it('dragging across the timeline selects that time range', async () => {
    const page = await open(baseUrl());
    const overlay = page.locator('#timeline .brush .overlay');
    await overlay.waitFor();
    const box = (await overlay.boundingBox())!;
    // From minute 5 to minute 25 of the hour: the two web-1 profiles (at 10 and 20 min), not web-2's at 30.
    const x = (minute: number): number => box.x + (box.width * minute) / 60;
    await page.mouse.move(x(5), box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(x(15), box.y + box.height / 2, { steps: 4 });
    await page.mouse.move(x(25), box.y + box.height / 2, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction((n) => Number(document.querySelector('#summary')?.getAttribute('data-total')) === n, totals.baseWeb1);
    const q = new URL(page.url()).searchParams;
    const from = Date.parse(q.get('from')!);
    const to = Date.parse(q.get('to')!);
    expect(Math.abs(from - (h0 + 5 * 60_000))).toBeLessThan(60_000);
    expect(Math.abs(to - (h0 + 25 * 60_000))).toBeLessThan(60_000);
    expect(await page.locator('#range-text').textContent()).toMatch(/\(2\d min\)/);
  });

  it('takes a custom range and the presets', async () => {
    const page = await open(baseUrl());
    await page.click('#presets button[data-preset="custom"]');
    const form = page.locator('#custom-range');
    await form.waitFor();
    // datetime-local is local time: compute the values in the page.
    const [from, to] = await page.evaluate(
      ([a, b]) => {
        const local = (ms: number): string => {
          const d = new Date(ms);
          const two = (n: number): string => String(n).padStart(2, '0');
          return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
        };
        return [local(a as number), local(b as number)];
      },
      [h0 + HOUR + 60 * 60_000 - 15 * 60_000, h0 + 2 * HOUR] as const,
    );
    await form.locator('input[name="from"]').fill(from);
    await form.locator('input[name="to"]').fill(to);
    await form.locator('button[type="submit"]').click();
    // The last 15 minutes of the comparison hour: no profile there.
    await page.locator('#message[data-kind="no-data"]').waitFor();
    expect(new URL(page.url()).searchParams.get('from')).toBe(iso(h0 + 2 * HOUR - 15 * 60_000));
    expect(await page.locator('#range-text').textContent()).toMatch(/\(15 min\)/);

    await page.click('#presets button[data-preset="now-24h"]');
    await page.waitForFunction((n) => Number(document.querySelector('#summary')?.getAttribute('data-total')) === n, totals.base + totals.comparison);
    expect(await page.locator('#message').isHidden()).toBe(true);
    expect(new URL(page.url()).searchParams.get('from')).toBe('now-24h');
    expect(await page.getAttribute('#presets button[data-preset="now-24h"]', 'aria-pressed')).toBe('true');
  });

  it('picks a profile type where a service has several, and prints each in its unit', async () => {
    const range = `&from=${iso(h0)}&to=${iso(h0 + HOUR)}`;
    const page = await open(`${server.url}/?service=mixed${range}`);
    // CPU first: time.
    expect(await page.locator('#type-field').isVisible()).toBe(true);
    const options = await page.locator('#type option').allTextContents();
    expect(options).toEqual(['CPU time', 'allocated bytes', 'allocated objects', 'in-use bytes', 'in-use objects']);
    expect(await page.locator('#type').inputValue()).toBe('process_cpu:cpu:nanoseconds:cpu:nanoseconds');
    expect(await page.locator('#summary .total').textContent()).toMatch(/^\d+(\.\d+)? (s|ms|min)$/);
    await page.screenshot({ path: join(ARTIFACTS, 'type-cpu.png'), fullPage: true });

    // In-use bytes: the graph of that type, in bytes, with the type in the URL.
    await page.selectOption('#type', { label: 'in-use bytes' });
    await page.waitForFunction(() => /type=memory%3Ainuse_space/.test(location.search));
    await page.waitForFunction(() => /B$/.test(document.querySelector('#summary .total')?.textContent ?? ''));
    expect(await summaryTotal(page)).toBe(HEAP_SAMPLES.reduce((t, x) => t + x.values[3], 0));
    expect(await page.locator('#summary .total').textContent()).toMatch(/^\d+(\.\d+)? (B|KiB|MiB)$/);
    expect(await page.locator(frame('cache.fill')).count()).toBe(1);
    expect(await page.locator(frame('handle')).count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'type-heap.png'), fullPage: true });

    // Back is CPU again; a service with one type has no picker.
    await page.goBack();
    await page.waitForFunction(() => !location.search.includes('type='));
    await page.locator(frame('handle')).first().waitFor();
    const single = await open(`${server.url}/?service=checkout${range}`);
    expect(await single.locator('#type-field').isHidden()).toBe(true);
  });

  it('says what to do when the range has no data', async () => {
    const page = await open(`${server.url}/?service=shop&from=${iso(h0 - 6 * HOUR)}&to=${iso(h0 - 5 * HOUR)}`, false);
    const msg = page.locator('#message[data-kind="no-data"]');
    await msg.waitFor();
    expect(await msg.textContent()).toMatch(/No samples for shop between .* Pick a wider range/);
    expect(await page.locator('#content').isHidden()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'empty-range.png'), fullPage: true });
    await msg.getByRole('button', { name: /latest profile/ }).click();
    await page.waitForFunction(() => document.documentElement.dataset.flameRendered !== undefined);
    expect(await page.locator('#message').isHidden()).toBe(true);
    // The hour around the latest profile holds the two comparison pushes: the grown recording's c.
    expect(await summaryTotal(page)).toBe(totals.comparison);
    expect(await page.locator(frame('c')).count()).toBe(drawnCount(grownTree, 'c', await width(page, '#flame svg')));
  });

  it('says what to do when there are no services yet, and when the API is unreachable', async () => {
    const empty = await startServe(join(tmp.dir, 'empty'), 0, ['--ui-dir', UI_DIR]);
    try {
      const page = await open(`${empty.url}/`, false);
      const msg = page.locator('#message[data-kind="no-services"]');
      await msg.waitFor();
      expect(await msg.textContent()).toMatch(/No profiles yet.*kiln agent --server.*api\/v1\/profiles\?service=NAME/);
      await page.screenshot({ path: join(ARTIFACTS, 'empty-services.png'), fullPage: true });

      await empty.stop();
      await msg.getByRole('button', { name: 'Refresh' }).click();
      const down = page.locator('#message[data-kind="unreachable"]');
      await down.waitFor();
      expect(await down.textContent()).toMatch(/Cannot reach the Kiln API at .*api\/v1\/.*kiln serve is running.*Retry/);
      await page.screenshot({ path: join(ARTIFACTS, 'unreachable.png'), fullPage: true });
    } finally {
      await empty.stop();
    }
  });

  it('renders a 24 h flame graph of a bench-fleet service', async () => {
    // A smaller cut of the ingest bench's fleet (bench/ui.ts loads the full service): same stacks and weights, 4 hosts, a profile every 30 s.
    const dir = join(tmp.dir, 'fleet');
    const h = await serve({ port: 0, data: dir, uiDir: UI_DIR, log: () => {} });
    try {
      const fleet = await loadFleetService(h, { hours: 24, hosts: 4, intervalS: 30 });
      // One load to warm the server's caches (a long-running kiln serve has them warm).
      await fetch(`${h.url}/api/v1/flamegraph?service=${fleet.service}&from=now-24h`);
      const figures = await pageLoadFigures(h.url, fleet.service, 'from=now-24h&to=now', 6);
      writeFileSync(join(ARTIFACTS, 'page-load.json'), `${JSON.stringify({ rows: fleet.rows, ...figures }, null, 2)}\n`);
      console.log(`page load, 24 h of ${fleet.service} (${fleet.rows} rows): ${JSON.stringify(figures)}`);
      expect(figures.page_load_frames_drawn).toBeGreaterThan(500);
      // How fast is the bench's business (npm run bench -- --only ui): timing asserts on a shared box are flaky.
    } finally {
      await h.close();
    }
  }, 300_000);
});
