/**
 * Web UI page-load bench: navigation start to a rendered flame graph in a real
 * browser (Debian's chromium through playwright-core), for a 24 h range of one
 * service of the ingest bench's synthetic fleet (bench/ingest.ts: 3,000 stacks
 * 20-80 frames deep sharing prefixes, Zipf weights, 500-sample profiles every
 * 10 s from each of 20 hosts, two threads each).
 *
 * The service is generated with kit/fleet.ts's makeService and loaded the
 * same way (dictionaries through the HTTP endpoint, 24 h of samples with
 * INSERT ... SELECT), so the store holds what the ingest bench measures.
 *
 * "Rendered" is the page's own performance mark kiln:flame-rendered, set two
 * animation frames after the graph is in the DOM (ui/src/app.ts), so it
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
import { serve } from '../ingest/serve.js';
import { pageLoadFigures } from '../kit/chromium.js';
import { loadFleetService } from '../kit/fleet.js';
import { envNumber as env, round1 } from '../kit/stats.js';

const REPO = join(import.meta.dirname, '..');


function log(msg: string): void {
  process.stderr.write(`[bench ui] ${msg}\n`);
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
