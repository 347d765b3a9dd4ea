/**
 * A load generator for `kiln serve`'s ingest: many agents pushing gzipped
 * pprof to POST /api/v1/profiles with an Idempotency-Key each, as the Kiln
 * agent does. The bodies are encoded before the clock starts (kit/fleet.ts's
 * agentPushes), so sending costs little more than the HTTP client; run it in
 * a process of its own (spawnLoad) so its CPU is not the server's, and it
 * reports its own CPU so a bench can say what the generator took.
 *
 * Used by bench/ingest.ts (throughput) and test/ingest-exactly-once.test.ts
 * (which keys were acknowledged before a kill -9).
 */

import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { agentPushes, agentPushesTwice, type AgentPush } from './fleet.js';

export interface LoadOptions {
  url: string;
  token?: string;
  /** Concurrent connections, each one agent pushing back to back. */
  concurrency: number;
  /** Stop after this long, s... */
  seconds: number;
  /** ...or after this many pushes. */
  maxPushes?: number;
  /** Distinct bodies to cycle through. */
  pool: number;
  /** Distinct hosts the pushes are labelled with; 0: every push its own host, h-N (exactly-once checks). */
  hosts?: number;
  /** Idempotency keys are KEYPREFIX-N. */
  keyPrefix: string;
  /** Report every acknowledged key (for exactly-once checks). */
  recordKeys?: boolean;
  /** Body form (default pprof). */
  format?: 'pprof' | 'native';
}

export interface LoadResult {
  pushes: number;
  acknowledged: number;
  duplicates: number;
  samples: number;
  /** Status code (or "error") -> count, for everything not acknowledged. */
  failures: Record<string, number>;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  /** The generator's own CPU while sending, ms. */
  cpuMs: number;
  keys?: string[];
}

function percentileOf(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Sends pushes from `bodies` until the time or count runs out. */
export async function runLoad(
  opts: LoadOptions,
  bodies: AgentPush[],
  onStart?: () => void,
  stop: () => boolean = () => false,
  onAck?: (acknowledged: number) => void,
): Promise<LoadResult> {
  const u = new URL(opts.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const hosts = opts.hosts ?? 2000;
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  const keys: string[] = [];
  let next = 0;
  let acknowledged = 0;
  let duplicates = 0;
  let samples = 0;
  onStart?.();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const deadline = t0 + opts.seconds * 1000;
  const one = (n: number): Promise<void> => {
    const b = bodies[n % bodies.length]!;
    const host = hosts === 0 ? `h-${n}` : `host-${n % hosts}`;
    const path =
      `/api/v1/profiles?service=${b.service}&host=${host}&pid=${1000 + (n % 7)}&python_version=3.11.9` + `&time=${Date.now()}`;
    const key = `${opts.keyPrefix}-${n}`;
    const headers: http.OutgoingHttpHeaders = {
      'content-type': b.contentType,
      'content-length': b.body.length,
      'idempotency-key': key,
    };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const start = performance.now();
    return new Promise<void>((resolve) => {
      const req = http.request({ host: u.hostname, port: u.port, path, method: 'POST', agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 200) {
            latencies.push(performance.now() - start);
            acknowledged++;
            onAck?.(acknowledged);
            const body = JSON.parse(Buffer.concat(chunks).toString()) as { samples: number; duplicate?: boolean };
            samples += body.samples;
            if (body.duplicate) duplicates++;
            if (opts.recordKeys) keys.push(key);
            resolve();
          } else {
            failures[String(res.statusCode)] = (failures[String(res.statusCode)] ?? 0) + 1;
            // As an agent does: a 503 that says when to come back is waited out.
            const after = Number(res.headers['retry-after']);
            const wait = Math.min(after * 1000 * (0.5 + Math.random() / 2), deadline - performance.now());
            if (res.statusCode === 503 && wait > 0) setTimeout(resolve, wait);
            else resolve();
          }
        });
        res.on('error', () => {
          failures.error = (failures.error ?? 0) + 1;
          resolve();
        });
      });
      req.on('error', () => {
        failures.error = (failures.error ?? 0) + 1;
        resolve();
      });
      req.end(b.body);
    });
  };
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (performance.now() < deadline && !stop() && (opts.maxPushes === undefined || next < opts.maxPushes)) {
        await one(next++);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  return {
    pushes: next,
    acknowledged,
    duplicates,
    samples,
    failures,
    seconds,
    p50Ms: percentileOf(sorted, 50),
    p99Ms: percentileOf(sorted, 99),
    cpuMs: (cpu.user + cpu.system) / 1000,
    ...(opts.recordKeys ? { keys } : {}),
  };
}

export interface SpawnedLoad {
  /** Resolves when the generator has its bodies and starts sending. */
  started: Promise<void>;
  done: Promise<LoadResult>;
  /** The keys acknowledged so far (recordKeys), streamed as they come. */
  kill(): void;
}

/**
 * runLoad in a child process: prints "start" when it begins sending, then
 * its LoadResult as JSON.
 */
export function spawnLoad(opts: LoadOptions): SpawnedLoad {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let resolveStart!: () => void;
  const started = new Promise<void>((r) => (resolveStart = r));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('start\n')) resolveStart();
  });
  const done = new Promise<LoadResult>((resolve, reject) => {
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code === 0 && line) resolve(JSON.parse(line) as LoadResult);
      else reject(new Error(`load generator exited ${code}: ${out.slice(-500)}`));
    });
  });
  return { started, done, kill: () => child.kill('SIGKILL') };
}

/**
 * The pushes to cycle through. Native bodies are a fleet's steady state: the
 * agents sent their dictionary entries once already (warm-up, here: one
 * untimed round of the first encoding), so the timed pushes carry ids and
 * counts only, as they would for the rest of the day.
 */
export async function loadBodies(opts: LoadOptions): Promise<AgentPush[]> {
  const startNs = BigInt(Date.now()) * 1_000_000n;
  if (opts.format !== 'native') return agentPushes(opts.pool, { startNs });
  const [first, steady] = await agentPushesTwice(opts.pool, startNs);
  const warm = await runLoad({ ...opts, seconds: 600, maxPushes: first.length, keyPrefix: `${opts.keyPrefix}-warmup`, recordKeys: false }, first);
  // A definition that did not go in makes every later push counting it a 409.
  if (warm.acknowledged < first.length) process.stderr.write(`loadgen: warm-up round: ${JSON.stringify(warm.failures)}\n`);
  return steady;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const opts = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
  const bodies = await loadBodies(opts);
  const result = await runLoad(opts, bodies, () => process.stdout.write('start\n'));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
