/**
 * HTTP ingest throughput of one `kiln serve` on the embedded engine: a load
 * generator in a process of its own (kit/loadgen.ts) pushes realistic agent
 * profiles (500 samples over ~350 distinct stacks 20-60 frames deep, labels
 * host and pid) with 32 and then 256 concurrent clients for
 * KILN_BENCH_HTTP_SECONDS (20) each, as gzipped pprof and in Kiln's native
 * form (the agent's steady state: ids and counts), and through Pyroscope's
 * Push API (a gzipped PushRequest per profile, as pyroscope-io 1.x sends).
 *
 * A push is acknowledged once it is in the ingest log and stored in batches
 * behind, so each row reports both: profiles acknowledged per second while
 * the generator runs, and profiles stored per second from its start until
 * the log is drained (the sustained rate; a backlog the store cannot keep up
 * with is not counted as throughput). Also: push latency, the server's CPU per
 * stored profile (all of it, and the event loop's and the ingest workers'
 * from its /metrics), the generator's CPU, RSS, and the machine's load
 * average (other processes share these cores). KILN_BENCH_HTTP_REPEAT runs
 * each row several times and reports the median and the spread.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, startServe } from '../kit/harness.js';
import { spawnLoad } from '../kit/loadgen.js';
import { envNumber, round1 } from '../kit/stats.js';

const SECONDS = envNumber('KILN_BENCH_HTTP_SECONDS', 20);
const REPEAT = envNumber('KILN_BENCH_HTTP_REPEAT', 1);
const CLIENTS = (process.env.KILN_BENCH_HTTP_CLIENTS ?? '32,256').split(',').map(Number);
const FORMATS = (process.env.KILN_BENCH_HTTP_FORMATS ?? 'native,pprof,connect').split(',') as ('pprof' | 'native' | 'connect')[];

function log(msg: string): void {
  process.stderr.write(`[bench ingest-http] ${msg}\n`);
}

/** utime + stime of a process, ms, and its resident set, MiB. */
function procStats(pid: number): { cpuMs: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  return { cpuMs: cpuSeconds(pid) * 1000, rssMiB: Number(rss?.[1] ?? 0) / 1024 };
}

interface ServerMetrics {
  mainMs: number;
  workersMs: number;
  stored: number;
  pendingRows: number;
  batches: number;
  batchRows: number;
  lookups: number;
  lookupMs: number;
  logGroups: number;
  logWriteMs: number;
  batchMs: number;
}

async function serverMetrics(url: string): Promise<ServerMetrics> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m: ServerMetrics = { mainMs: 0, workersMs: 0, stored: 0, pendingRows: 0, batches: 0, batchRows: 0, lookups: 0, lookupMs: 0, logGroups: 0, logWriteMs: 0, batchMs: 0 };
  for (const line of text.split('\n')) {
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('kiln_thread_cpu_seconds_total{')) {
      if (line.includes('thread="main"')) m.mainMs = v * 1000;
      else m.workersMs += v * 1000;
    } else if (line.startsWith('kiln_ingest_profiles_stored_total ')) m.stored = v;
    else if (line.startsWith('kiln_ingest_pending_rows ')) m.pendingRows = v;
    else if (line.startsWith('kiln_ingest_batches_total ')) m.batches = v;
    else if (line.startsWith('kiln_ingest_batch_rows_total ')) m.batchRows = v;
    else if (line.startsWith('kiln_ingest_key_lookups_total ')) m.lookups = v;
    else if (line.startsWith('kiln_ingest_log_groups_total ')) m.logGroups = v;
    else if (line.startsWith('kiln_ingest_key_lookup_seconds_total ')) m.lookupMs = v * 1000;
    else if (line.startsWith('kiln_ingest_log_write_seconds_total ')) m.logWriteMs = v * 1000;
    else if (line.startsWith('kiln_ingest_batch_seconds_total ')) m.batchMs = v * 1000;
  }
  return m;
}

type Row = Record<string, number | string>;

async function runRow(format: 'pprof' | 'native' | 'connect', clients: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-http-'));
  const server = await startServe(dir, 0, process.env.KILN_BENCH_SERVE_ARGS ? process.env.KILN_BENCH_SERVE_ARGS.split(' ') : []);
  try {
    const pid = server.proc.pid!;
    const load = spawnLoad({ url: server.url, concurrency: clients, seconds: SECONDS, pool: 200, keyPrefix: `bench-${clients}`, format });
    await load.started;
    const t0 = performance.now();
    const p0 = procStats(pid);
    const m0 = await serverMetrics(server.url);
    const r = await load.done;
    // Drained: everything acknowledged is stored.
    let m1 = await serverMetrics(server.url);
    while (m1.pendingRows > 0) {
      await new Promise((res) => setTimeout(res, 50));
      m1 = await serverMetrics(server.url);
    }
    const seconds = (performance.now() - t0) / 1000;
    const p1 = procStats(pid);
    const stored = m1.stored - m0.stored;
    const n = Math.max(1, stored);
    return {
      acknowledged_per_s: round1(r.acknowledged / r.seconds),
      stored_per_s: round1(stored / seconds),
      samples_per_s: Math.round((r.samples * (stored / Math.max(1, r.acknowledged))) / seconds),
      drain_s: round1(seconds - r.seconds),
      push_p50_ms: round1(r.p50Ms),
      push_p99_ms: round1(r.p99Ms),
      server_cpu_ms_per_profile: Math.round(((p1.cpuMs - p0.cpuMs) / n) * 100) / 100,
      server_main_cpu_ms_per_profile: Math.round(((m1.mainMs - m0.mainMs) / n) * 100) / 100,
      server_workers_cpu_ms_per_profile: Math.round(((m1.workersMs - m0.workersMs) / n) * 100) / 100,
      loadgen_cpu_ms_per_profile: Math.round((r.cpuMs / Math.max(1, r.acknowledged)) * 100) / 100,
      server_rss_mib: Math.round(p1.rssMiB),
      batches: m1.batches - m0.batches,
      rows_per_batch: Math.round((m1.batchRows - m0.batchRows) / Math.max(1, m1.batches - m0.batches)),
      pushes_per_key_lookup: round1(r.acknowledged / Math.max(1, m1.lookups - m0.lookups)),
      pushes_per_log_fsync: round1(r.acknowledged / Math.max(1, m1.logGroups - m0.logGroups)),
      key_lookup_ms: round1((m1.lookupMs - m0.lookupMs) / Math.max(1, m1.lookups - m0.lookups)),
      log_write_ms: round1((m1.logWriteMs - m0.logWriteMs) / Math.max(1, m1.logGroups - m0.logGroups)),
      batch_ms: Math.round((m1.batchMs - m0.batchMs) / Math.max(1, m1.batches - m0.batches)),
      failures: JSON.stringify(r.failures),
      load_average_1m: loadavg()[0]!.toFixed(1),
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchIngestHttp(): Promise<Record<string, number | string>> {
  const results: Record<string, number | string> = {};
  for (const format of FORMATS) {
    for (const clients of CLIENTS) {
      const k = `${format}_c${clients}`;
      const runs: Row[] = [];
      for (let i = 0; i < REPEAT; i++) {
        const row = await runRow(format, clients);
        runs.push(row);
        log(`${k}${REPEAT > 1 ? ` run ${i + 1}` : ''}: ${Object.entries(row).map(([name, v]) => `${name} ${v}`).join(', ')}`);
      }
      // The median run by stored profiles/s, and the spread.
      const sorted = [...runs].sort((a, b) => Number(a.stored_per_s) - Number(b.stored_per_s));
      const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
      for (const [name, v] of Object.entries(median)) results[`${k}_${name}`] = v;
      if (REPEAT > 1) results[`${k}_stored_per_s_runs`] = runs.map((r) => r.stored_per_s).join(' ');
    }
  }
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await benchIngestHttp());
}
