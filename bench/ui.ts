/**
 * Web UI page-load bench: navigation start to a rendered flame graph in a real
 * browser (Debian's chromium through playwright-core), for a 24 h range of one
 * service of the ingest bench's synthetic fleet (bench/ingest.ts: 3,000 stacks
 * 20-80 frames deep sharing prefixes, Zipf weights, 500-sample profiles every
 * 10 s from each of 20 hosts, two threads each).
 *
 * The service is generated with bench/ingest.ts's makeService and loaded the
 * same way (dictionaries through the HTTP endpoint, 24 h of samples with
 * INSERT ... SELECT), so the store holds what the ingest bench measures.
 *
 * "Rendered" is the page's own performance mark kiln:flame-rendered, set two
 * animation frames after the graph is in the DOM (ui/src/main.ts), so it
 * includes the HTML, the bundle, every API call the graph waits for, layout
 * and paint.
 *
 * Knobs: KILN_BENCH_UI_HOURS (24), KILN_BENCH_UI_HOSTS (20), KILN_BENCH_UI_INTERVAL_S (10),
 * KILN_BENCH_UI_RUNS (10), KILN_CHROMIUM (/usr/bin/chromium).
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { serve, type ServeHandle } from '../ingest/serve.js';
import { encodePprof } from '../profile/pprof.js';
import { makeService, profileFromRows } from './ingest.js';

const REPO = join(import.meta.dirname, '..');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-quic',
  '--no-first-run',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  const executablePath = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`${executablePath} is missing: apt-get install -y chromium (or set KILN_CHROMIUM)`);
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

const env = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

function log(msg: string): void {
  process.stderr.write(`[bench ui] ${msg}\n`);
}

export interface FleetOptions {
  hours: number;
  hosts: number;
  intervalS: number;
  /** makeService's index: the service is named service-INDEX. */
  index?: number;
}

const THREADS = 2;

/**
 * Loads one service of the ingest bench's fleet into a running `kiln serve`:
 * every stack and label set through POST /api/v1/profiles (so the ids are
 * ingest's own), then `hours` of profiles every `intervalS` from every host in
 * one INSERT ... SELECT; the rollups fill through their materialized views.
 * Returns the service name and the range loaded.
 */
export async function loadFleetService(h: ServeHandle, opts: FleetOptions): Promise<{ service: string; from: number; to: number; rows: number }> {
  const index = opts.index ?? 0;
  const hostNames = Array.from({ length: opts.hosts }, (_, i) => `host-${String(i).padStart(3, '0')}`);
  const svc = makeService(index, hostNames);
  const nowS = Math.floor(Date.now() / 1000 / opts.intervalS) * opts.intervalS;
  const t0S = nowS - opts.hours * 3600;
  for (const [i, host] of svc.hosts.entries()) {
    const rows =
      i === 0
        ? svc.stacks.map((_, s) => ({ stack: s, count: 1 }))
        : Array.from({ length: THREADS }, (_, th) => ({ stack: svc.thread.indexOf(th), count: 1 }));
    const body = new Uint8Array(await encodePprof(profileFromRows(svc, host, rows, BigInt(t0S) * 1_000_000_000n)));
    const region = Number(host.slice(5)) % 2 === 0 ? 'eu-west' : 'us-east';
    const r = await fetch(`${h.url}/api/v1/profiles?service=${svc.name}&host=${host}&region=${region}`, { method: 'POST', body });
    if (r.status !== 200) throw new Error(`registering ${svc.name}/${host}: ${r.status} ${await r.text()}`);
  }
  const store = h.kiln.store;
  const n = svc.hosts.length * Math.floor((opts.hours * 3600) / opts.intervalS);
  // The same statement as bench/ingest.ts: profile `number` is host number % hosts at slot number / hosts, a copy of one of the pre-drawn templates.
  await store.command(
    `INSERT INTO ${store.t.samples} (service, ts, labels_hash, stack_hash, value)
     SELECT {svc:String}, toDateTime({t0:UInt32} + intDiv(number, {hosts:UInt32}) * {interval:UInt32}, 'UTC'),
       {labels:Array(UInt64)}[(number % {hosts:UInt32}) * {threads:UInt32} + bitAnd(bitShiftRight(x, 32), 255) + 1],
       {stacks:Array(UInt64)}[bitShiftRight(x, 40) + 1],
       bitAnd(x, 4294967295)
     FROM numbers({n:UInt64})
     ARRAY JOIN {templates:Array(Array(UInt64))}[cityHash64(number, {svc:String}) % {nt:UInt32} + 1] AS x`,
    {
      svc: svc.name,
      t0: t0S,
      interval: opts.intervalS,
      hosts: svc.hosts.length,
      threads: THREADS,
      labels: svc.labelIds.map((x) => BigInt(x.dec)),
      stacks: svc.stackIds.map((x) => BigInt(x.dec)),
      templates: svc.templates,
      nt: svc.templates.length,
      n,
    },
    { max_insert_threads: '2' },
  );
  await store.command(
    `INSERT INTO ${store.t.profiles} (service, ts, series, duration_ns, period_ns, samples, rows, source)
     SELECT {svc:String}, toDateTime({t0:UInt32} + intDiv(number, {hosts:UInt32}) * {interval:UInt32}, 'UTC'),
       map('host', concat('host-', leftPad(toString(number % {hosts:UInt32}), 3, '0'))),
       {interval:UInt32} * 1000000000, 10000000, 500, 0, 'bench'
     FROM numbers({n:UInt64})`,
    { svc: svc.name, t0: t0S, hosts: svc.hosts.length, interval: opts.intervalS, n },
  );
  const [[rows] = []] = await store.rows(`SELECT toString(count()) FROM ${store.t.samples} WHERE service = {svc:String}`, { svc: svc.name });
  return { service: svc.name, from: t0S * 1000, to: nowS * 1000, rows: Number(rows) };
}

export interface PageLoad {
  /** Navigation start to the kiln:flame-rendered mark, ms. */
  renderedMs: number;
  /** The /api/v1/flamegraph request as the browser saw it, ms. */
  flamegraphMs: number;
  /** Frames drawn (svg g.frame). */
  frames: number;
}

/** Opens `url` in a fresh browser context (cold cache when `cold`) and waits for the graph. */
export async function measurePageLoad(browser: Browser, url: string, cold = true, shared?: { context: BrowserContext }): Promise<PageLoad> {
  const context = cold || !shared ? await browser.newContext({ viewport: { width: 1440, height: 900 } }) : shared.context;
  const page = await context.newPage();
  try {
    await page.goto(url);
    await page.waitForFunction(() => document.documentElement.dataset.flameRendered !== undefined, undefined, { timeout: 60_000 });
    const r = await page.evaluate(() => {
      const mark = performance.getEntriesByName('kiln:flame-rendered')[0]!;
      const fg = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/v1/flamegraph'));
      return { renderedMs: mark.startTime, flamegraphMs: fg ? fg.duration : NaN, frames: document.querySelectorAll('#flame g.frame').length };
    });
    // Let the page finish its other requests (table, timeline, labels): the next load would otherwise queue behind them in the store.
    await page.waitForLoadState('networkidle');
    return r;
  } finally {
    await page.close();
    if (cold || !shared) await context.close();
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/**
 * Page-load figures for a service's range: one cold load, then `runs` more
 * (half in fresh browser contexts, half with a warm asset cache). Each load
 * waits for the page's other requests to finish before the next starts.
 */
export async function pageLoadFigures(baseUrl: string, service: string, range: string, runs: number, prefix = 'page_load'): Promise<Record<string, number>> {
  const browser = await launchChromium();
  try {
    const url = `${baseUrl}/?service=${encodeURIComponent(service)}&${range}`;
    const first = await measurePageLoad(browser, url, true);
    const cold: number[] = [];
    const warm: number[] = [];
    const api: number[] = [];
    const overhead: number[] = [];
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    try {
      for (let i = 0; i < runs; i++) {
        const useCold = i % 2 === 0;
        const r = await measurePageLoad(browser, url, useCold, { context });
        (useCold ? cold : warm).push(r.renderedMs);
        api.push(r.flamegraphMs);
        overhead.push(r.renderedMs - r.flamegraphMs);
      }
    } finally {
      await context.close();
    }
    const all = [...cold, ...warm];
    return {
      [`${prefix}_first_ms`]: round1(first.renderedMs),
      [`${prefix}_p50_ms`]: round1(percentile(all, 50)),
      [`${prefix}_p95_ms`]: round1(percentile(all, 95)),
      [`${prefix}_best_ms`]: round1(Math.min(...all)),
      [`${prefix}_cold_p50_ms`]: round1(percentile(cold, 50)),
      [`${prefix}_warm_p50_ms`]: round1(percentile(warm, 50)),
      [`${prefix}_flamegraph_api_p50_ms`]: round1(percentile(api, 50)),
      // Everything but waiting for /api/v1/flamegraph: HTML, bundle, parsing, drawing, paint.
      [`${prefix}_ui_overhead_p50_ms`]: round1(percentile(overhead, 50)),
      [`${prefix}_frames_drawn`]: first.frames,
    };
  } finally {
    await browser.close();
  }
}

export async function benchUi(): Promise<Record<string, number | string>> {
  const hours = env('KILN_BENCH_UI_HOURS', 24);
  const hosts = env('KILN_BENCH_UI_HOSTS', 20);
  const intervalS = env('KILN_BENCH_UI_INTERVAL_S', 10);
  const runs = env('KILN_BENCH_UI_RUNS', 10);
  const uiDir = join(REPO, 'build', 'ui');
  if (!existsSync(join(uiDir, 'index.html'))) execFileSync('npm', ['run', '-s', 'build:ui'], { cwd: REPO, stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-ui-'));
  const h = await serve({ port: 0, data: dir, uiDir, log: () => {} });
  const results: Record<string, number | string> = {};
  try {
    let t = performance.now();
    const fleet = await loadFleetService(h, { hours, hosts, intervalS });
    results.ui_fleet = `${fleet.service}: ${hosts} hosts, ${hours} h, a profile every ${intervalS} s`;
    results.ui_rows_loaded = fleet.rows;
    results.ui_load_s = round1((performance.now() - t) / 1000);
    log(`loaded ${fleet.rows} rows for ${fleet.service} in ${results.ui_load_s} s`);
    t = performance.now();
    // Let merges settle, as the ingest bench does, so the queries see a steady-state table.
    while (performance.now() - t < 120_000) {
      const [[merges] = []] = await h.kiln.store.rows(`SELECT count() FROM system.merges WHERE database = {db:String}`, { db: h.kiln.store.ctx.database });
      if (Number(merges) === 0) break;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    Object.assign(results, await pageLoadFigures(h.url, fleet.service, `from=now-${hours}h&to=now`, runs, 'ui_page_load_24h'));
    Object.assign(results, await pageLoadFigures(h.url, fleet.service, `from=now-1h&to=now`, Math.max(2, Math.floor(runs / 2)), 'ui_page_load_1h'));
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('web UI bench (chromium, embedded chDB):');
  for (const [k, v] of Object.entries(results)) console.log(`  ${k.padEnd(40)} ${v}`);
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await benchUi();
}
