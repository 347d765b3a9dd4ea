/** Debian's chromium through playwright-core, and page-load figures: shared by the UI tests and bench/ui.ts. */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { percentile, round1 } from './stats.js';

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

