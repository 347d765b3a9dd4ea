/**
 * HTTP ingest throughput of one `kiln serve` on the embedded engine: a load
 * generator in a process of its own (kit/loadgen.ts) pushes realistic agent
 * profiles (gzipped pprof, 500 samples over ~350 distinct stacks 20-60
 * frames deep, labels host and pid) with 32 and then 256 concurrent clients
 * for KILN_BENCH_HTTP_SECONDS (20) each. Reports profiles/s, samples/s, push
 * latency, the server's CPU per profile (all of it, and the event loop's and
 * the ingest workers' from its /metrics), the generator's CPU, and RSS.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from '../kit/harness.js';
import { spawnLoad } from '../kit/loadgen.js';
import { envNumber, round1 } from '../kit/stats.js';

const SECONDS = envNumber('KILN_BENCH_HTTP_SECONDS', 20);
const CLIENTS = (process.env.KILN_BENCH_HTTP_CLIENTS ?? '32,256').split(',').map(Number);
const FORMATS = (process.env.KILN_BENCH_HTTP_FORMATS ?? 'pprof,native').split(',') as ('pprof' | 'native')[];

function log(msg: string): void {
  process.stderr.write(`[bench ingest-http] ${msg}\n`);
}

/** utime + stime of a process, ms, and its resident set, MiB. */
function procStats(pid: number): { cpuMs: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  return { cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / 100, rssMiB: Number(rss?.[1] ?? 0) / 1024 };
}

async function threadCpu(url: string): Promise<{ main: number; workers: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let main = 0;
  let workers = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('kiln_thread_cpu_seconds_total{')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000;
    if (line.includes('thread="main"')) main = v;
    else workers += v;
  }
  return { main, workers };
}

export async function benchIngestHttp(): Promise<Record<string, number | string>> {
  const results: Record<string, number | string> = {};
  for (const format of FORMATS) for (const clients of CLIENTS) {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-http-'));
    const server = await startServe(dir, 0, process.env.KILN_BENCH_SERVE_ARGS ? process.env.KILN_BENCH_SERVE_ARGS.split(' ') : []);
    try {
      const pid = server.proc.pid!;
      const load = spawnLoad({ url: server.url, concurrency: clients, seconds: SECONDS, pool: 200, keyPrefix: `bench-${clients}`, format });
      await load.started;
      const p0 = procStats(pid);
      const t0 = await threadCpu(server.url).catch(() => ({ main: 0, workers: 0 }));
      const r = await load.done;
      const p1 = procStats(pid);
      const t1 = await threadCpu(server.url).catch(() => ({ main: 0, workers: 0 }));
      const k = `${format}_c${clients}`;
      const n = Math.max(1, r.acknowledged);
      results[`${k}_profiles_per_s`] = round1(r.acknowledged / r.seconds);
      results[`${k}_samples_per_s`] = Math.round(r.samples / r.seconds);
      results[`${k}_push_p50_ms`] = round1(r.p50Ms);
      results[`${k}_push_p99_ms`] = round1(r.p99Ms);
      results[`${k}_server_cpu_ms_per_profile`] = Math.round(((p1.cpuMs - p0.cpuMs) / n) * 100) / 100;
      results[`${k}_server_main_cpu_ms_per_profile`] = Math.round(((t1.main - t0.main) / n) * 100) / 100;
      results[`${k}_server_workers_cpu_ms_per_profile`] = Math.round(((t1.workers - t0.workers) / n) * 100) / 100;
      results[`${k}_loadgen_cpu_ms_per_profile`] = Math.round((r.cpuMs / n) * 100) / 100;
      results[`${k}_server_rss_mib`] = Math.round(p1.rssMiB);
      results[`${k}_failures`] = JSON.stringify(r.failures);
      log(
        `${format}, ${clients} clients: ${results[`${k}_profiles_per_s`]} profiles/s, ${results[`${k}_samples_per_s`]} samples/s, ` +
          `push p50 ${results[`${k}_push_p50_ms`]} ms p99 ${results[`${k}_push_p99_ms`]} ms; server CPU ${results[`${k}_server_cpu_ms_per_profile`]} ms/profile ` +
          `(main ${results[`${k}_server_main_cpu_ms_per_profile`]}, workers ${results[`${k}_server_workers_cpu_ms_per_profile`]}), ` +
          `generator ${results[`${k}_loadgen_cpu_ms_per_profile`]} ms/profile, RSS ${results[`${k}_server_rss_mib`]} MiB, failures ${results[`${k}_failures`]}`,
      );
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await benchIngestHttp());
}
