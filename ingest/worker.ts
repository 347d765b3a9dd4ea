/**
 * An ingest worker thread: a request body in, rows out. Inflating, reading
 * pprof (or folded text), hashing and rendering rows all happen here, so the
 * event loop of `kiln serve` only routes requests and batches rows, and
 * /healthz, the web UI and queries answer while ingest is busy.
 *
 * Each worker keeps its own "written today" caches (rows.ts); the pool sends
 * a service's profiles to the same worker where it can, so a stack is written
 * about once a day, not once per worker. When the committer drops rows that
 * carried dictionary entries, it bumps a shared generation and every worker
 * forgets what it wrote.
 */

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { KnownStacks } from './known.js';
import { HttpError, type Limits } from './limits.js';
import { parseFolded } from './pyroscope.js';
import { readPprof } from './pprof-read.js';
import { DICT_TABLES, RowBuilder, type DictTable, type Faults, type Rows, type RowsInput } from './rows.js';
import { gunzipCappedSync, InflateError } from './gzip.js';
import { pprofBytes } from '../profile/pprof.js';

export interface WorkerConfig {
  limits: Limits;
  retentionDays: number;
  faults: Faults;
  /** Int32Array over a SharedArrayBuffer: [0] is the dictionary generation. */
  generation: SharedArrayBuffer;
  /** KnownStacks' buffer (known.ts): stacks the event loop knows are stored or logged. */
  known: SharedArrayBuffer;
}

export interface Task {
  id: number;
  body: Uint8Array;
  /** Content-Encoding of the request. */
  contentEncoding: 'gzip' | 'identity';
  /** auto: pprof if the body looks binary, else folded (Pyroscope's /ingest without format=). native: profile/native.ts. */
  format: 'pprof' | 'folded' | 'native' | 'auto';
  input: Omit<RowsInput, 'key' | 'now' | 'format'>;
  /** The client's Idempotency-Key header, if any. */
  keyHeader?: string;
  /** The time parameter as given, part of the key of a push without one. */
  timeText?: string;
}

export interface Built {
  id: number;
  ok: true;
  /** kiln_ingest rows, RowBinary (rowbinary.ts). */
  data: Uint8Array;
  dataRows: number;
  dict: Record<DictTable, Uint8Array>;
  dictRows: number;
  /** The idempotency key as stored: UInt128, decimal. */
  key: string;
  /** The dictionary generation these rows were built under. */
  generation: number;
  /** Native form: stacks this push defines, and ones it counts that this worker does not know ([lo, hi, ...]). */
  definedStacks: Uint32Array;
  unknownStacks: Uint32Array;
  response: import('./api.js').IngestResponse;
}

export interface Failed {
  id: number;
  ok: false;
  status: number;
  error: string;
  detail?: string;
}

export type TaskResult = Built | Failed;

/** Where the pool asks a worker for its own CPU time. */
export interface StatsRequest {
  stats: true;
}

const enc = new TextEncoder();

/** Pyroscope's default sampling period, for folded profiles pushed without a sampleRate. */
const FALLBACK_PERIOD_NS = 10_000_000;

/** SHA-256 of the parts, first 128 bits, as the decimal text of a UInt128. */
export function keyOf(parts: (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    h.update('\0');
  }
  return BigInt(`0x${h.digest('hex').slice(0, 32)}`).toString();
}

/** Inflates within the limits: Content-Encoding first, then a gzipped payload (pprof files are gzipped on disk). */
export function inflate(body: Uint8Array, contentEncoding: Task['contentEncoding'], limits: Limits): Uint8Array {
  let b = body;
  if (contentEncoding === 'gzip') b = gunzipCapped(b, limits.maxBodyBytes);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return gunzipCapped(b, limits.maxProfileBytes);
  if (b.length > limits.maxProfileBytes) {
    throw new HttpError(413, 'profile too large', `${b.length} bytes, more than the ${limits.maxProfileBytes}-byte limit`);
  }
  return b;
}

function gunzipCapped(b: Uint8Array, max: number): Uint8Array {
  try {
    return gunzipCappedSync(b, max);
  } catch (e) {
    if (!(e instanceof InflateError)) throw e;
    throw e.kind === 'too_large' ? new HttpError(413, 'profile too large', e.message) : new HttpError(400, 'malformed gzip', e.message);
  }
}

/**
 * pprof (gzipped or raw protobuf) rather than folded text: gzip magic, or
 * control bytes other than tab/newline/CR near the start. Protobuf's tags and
 * small varint lengths are full of them; folded text has none. (The first
 * byte alone is no tell: field 1, sample_type, is tagged 0x0a, a newline.)
 */
export function looksLikePprof(b: Uint8Array): boolean {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true;
  const n = Math.min(b.length, 1024);
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c < 0x09 || c === 0x0b || c === 0x0c || (c > 0x0d && c < 0x20) || c === 0x7f) return true;
  }
  return false;
}

/** Builds the rows of one push. Exported for tests and benches; the worker loop below is the way in. */
export function runTask(builder: RowBuilder, task: Task, limits: Limits, generation: number): Built {
  const input = task.input;
  const key =
    task.keyHeader !== undefined
      ? keyOf(['key', input.service, task.keyHeader])
      : keyOf([
          'push',
          input.service,
          Object.entries(input.series)
            .sort((a, b) => (a[0] < b[0] ? -1 : 1))
            .map(([k, v]) => `${k}=${v}`)
            .join('\0'),
          task.timeText ?? '',
          task.body,
        ]);
  const raw = inflate(task.body, task.contentEncoding, limits);
  if (task.format === 'native') {
    const rows = builder.buildNative(new TextDecoder().decode(raw), { ...input, format: 'native', key, now: Date.now() });
    return built(task.id, rows, key, generation);
  }
  const format = task.format === 'auto' ? (looksLikePprof(raw) ? 'pprof' : 'folded') : task.format;
  let pprof: Uint8Array = raw;
  if (format === 'folded') {
    const profile = parseFolded(new TextDecoder().decode(raw), limits);
    pprof = pprofBytes(profile);
  }
  const view = readPprof(pprof, limits);
  const rows = builder.build(view, {
    ...input,
    // Folded text has no period: Pyroscope's default, 100 Hz.
    ...(format === 'folded' && input.periodNs === undefined ? { periodNs: FALLBACK_PERIOD_NS } : {}),
    source: input.source.replace('pyroscope-auto', `pyroscope-${format}`),
    format,
    key,
    now: Date.now(),
  });
  return built(task.id, rows, key, generation);
}

function built(id: number, rows: Rows, key: string, generation: number): Built {
  const dict = {} as Record<DictTable, Uint8Array>;
  for (const t of DICT_TABLES) dict[t] = enc.encode(rows.dict[t]);
  return {
    id,
    ok: true,
    data: rows.data,
    dataRows: rows.dataRows,
    dict,
    dictRows: rows.dictRows,
    key,
    generation,
    definedStacks: rows.definedStacks,
    unknownStacks: rows.unknownStacks,
    response: rows.response,
  };
}

/** This thread's CPU time (user + system), ms: /proc/thread-self is the calling thread's /proc entry. */
export function threadCpuMs(): number {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

if (parentPort && workerData && (workerData as { kilnIngestWorker?: boolean }).kilnIngestWorker) {
  const config = (workerData as { config: WorkerConfig }).config;
  const builder = new RowBuilder(config.limits, config.retentionDays, config.faults, 1, new KnownStacks(config.known));
  const gen = new Int32Array(config.generation);
  let seen = Atomics.load(gen, 0);
  const port = parentPort;
  port.on('message', (msg: Task | StatsRequest) => {
    if ('stats' in msg) {
      port.postMessage({ stats: true, cpuMs: threadCpuMs() });
      return;
    }
    const now = Atomics.load(gen, 0);
    if (now !== seen) {
      builder.forget();
      seen = now;
    }
    let out: TaskResult;
    try {
      out = runTask(builder, msg, config.limits, now);
    } catch (e) {
      out =
        e instanceof HttpError
          ? { id: msg.id, ok: false, status: e.status, error: e.error, ...(e.detail ? { detail: e.detail } : {}) }
          : { id: msg.id, ok: false, status: 500, error: 'internal error', detail: e instanceof Error ? e.message : String(e) };
    }
    if (out.ok) {
      const transfer = [out.data.buffer, ...Object.values(out.dict).map((d) => d.buffer)] as ArrayBuffer[];
      port.postMessage(out, transfer);
    } else port.postMessage(out);
  });
}
