/**
 * The ingest bench's synthetic fleet: services of 3,000 stacks 20-80 frames
 * deep sharing root prefixes, Zipf-weighted, 500-sample profiles from every
 * host. Shared by bench/ingest.ts, bench/ui.ts and the UI tests.
 */
import type { Id64 } from '../profile/hash.js';
import { functionIdOf, labelsIdOf, locationIdOf, mergedLabels, stackIdOf } from '../profile/ids.js';
import type { ServeHandle } from '../ingest/serve.js';
import { NATIVE_CONTENT_TYPE, NativeEncoder } from '../profile/native.js';
import { encodePprof } from '../profile/pprof.js';
import type { Frame, Profile } from '../profile/profile.js';
import { envNumber } from './stats.js';

export const STACKS_PER_SERVICE = 3_000;
const FUNCTIONS_PER_SERVICE = 600;
export const TEMPLATES = 200;
export const SAMPLES_PER_PROFILE = envNumber('KILN_BENCH_SAMPLES', 500);
export const INTERVAL_S = 10;
export const PERIOD_NS = 1e9 / 100;
export const THREADS = [
  { tid: 0, thread_name: 'MainThread' },
  { tid: 1, thread_name: 'worker-1' },
] as const;

/** mulberry32: small, fast, seedable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Service {
  name: string;
  hosts: string[];
  /** Root first. */
  stacks: Frame[][];
  /** Which thread runs each stack. */
  thread: number[];
  stackIds: Id64[];
  /** Per host, per thread. */
  labelIds: Id64[];
  /** Packed rows: stack index * 2^40 + thread * 2^32 + count. */
  templates: number[][];
}

function sampleLabels(host: number, thread: number): Record<string, string> {
  const pid = 1000 + host;
  return {
    pid: String(pid),
    tid: String(pid + THREADS[thread]!.tid),
    thread_name: THREADS[thread]!.thread_name,
    python_version: '3.11.9',
  };
}

/** How a service's stacks are drawn; the defaults are the query bench's fleet. */
export interface ServiceShape {
  /** Frames per stack, inclusive range. */
  minDepth: number;
  maxDepth: number;
  /** Zipf exponent of stack popularity: lower spreads a profile's samples over more distinct stacks. */
  zipf: number;
}

export const FLEET_SHAPE: ServiceShape = { minDepth: 20, maxDepth: 80, zipf: 1.1 };

export function makeService(index: number, hostNames: string[], shape: ServiceShape = FLEET_SHAPE): Service {
  const rand = rng(1000 + index);
  const ri = (n: number): number => Math.floor(rand() * n);
  const name = `service-${index}`;
  const files = Array.from({ length: 40 }, (_, i) => `/srv/${name}/pkg${i % 6}/mod${i}.py`);
  const verbs = ['handle', 'process', 'load', 'render', 'parse', 'validate', 'compute', 'fetch', 'encode', 'dispatch'];
  const nouns = ['request', 'order', 'user', 'page', 'query', 'batch', 'row', 'token', 'event', 'item'];
  const functions: Omit<Frame, 'line'>[] = Array.from({ length: FUNCTIONS_PER_SERVICE }, (_, i) => {
    const method = `${verbs[i % verbs.length]}_${nouns[Math.floor(i / verbs.length) % nouns.length]}${i >= 100 ? `_${i}` : ''}`;
    const qual = i % 3 === 0 ? `${nouns[i % nouns.length]!.replace(/^./, (c) => c.toUpperCase())}Service.${method}` : method;
    return { name: qual, systemName: method, filename: files[i % files.length]!, startLine: 10 + ri(2000) };
  });
  const frameOf = (fn: Omit<Frame, 'line'>): Frame => ({ ...fn, line: fn.startLine + 1 + ri(40) });
  const spine: Frame[] = [
    { name: '<module>', systemName: '<module>', filename: `/srv/${name}/main.py`, startLine: 1, line: 88 },
    { name: 'main', systemName: 'main', filename: `/srv/${name}/main.py`, startLine: 60, line: 84 },
    { name: 'Server.serve_forever', systemName: 'serve_forever', filename: '/usr/lib/python3.11/socketserver.py', startLine: 215, line: 233 },
  ];
  const stacks: Frame[][] = [];
  const seen = new Set<string>();
  while (stacks.length < STACKS_PER_SERVICE) {
    const depth = shape.minDepth + ri(shape.maxDepth - shape.minDepth + 1);
    let frames: Frame[];
    if (stacks.length === 0) frames = [...spine];
    else {
      // Share a root prefix with an earlier stack, popular ones more often: a call tree.
      const parent = stacks[Math.floor(stacks.length * rand() * rand())]!;
      const keep = Math.min(parent.length, depth - 1, 3 + ri(Math.max(1, Math.min(parent.length, depth) - 3)));
      frames = parent.slice(0, keep);
    }
    while (frames.length < depth) frames.push(frameOf(functions[ri(functions.length)]!));
    const key = frames.map((f) => `${f.name}:${f.line}`).join(';');
    if (seen.has(key)) continue;
    seen.add(key);
    stacks.push(frames);
  }
  const thread = stacks.map((_, i) => (i % 7 === 3 ? 1 : 0));
  const stackIds = stacks.map((s) => {
    const leafFirst = [...s].reverse();
    return stackIdOf(leafFirst.map((f) => locationIdOf(functionIdOf(f), f.line)));
  });
  const labelIds: Id64[] = [];
  hostNames.forEach((host, h) => {
    for (let t = 0; t < THREADS.length; t++) {
      labelIds.push(labelsIdOf(name, mergedLabels(sampleLabels(hostIndex(host), t), seriesLabels(host))));
    }
  });

  // Zipf over stack ranks, drawn by binary search on the cumulative weights.
  const cum: number[] = [];
  let acc = 0;
  for (let i = 0; i < STACKS_PER_SERVICE; i++) cum.push((acc += 1 / Math.pow(i + 1, shape.zipf)));
  const draw = (): number => {
    const x = rand() * acc;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const templates: number[][] = [];
  for (let t = 0; t < TEMPLATES; t++) {
    const counts = new Map<number, number>();
    for (let i = 0; i < SAMPLES_PER_PROFILE; i++) {
      const s = draw();
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    templates.push([...counts].map(([s, c]) => s * 2 ** 40 + thread[s]! * 2 ** 32 + c));
  }
  return { name, hosts: hostNames, stacks, thread, stackIds, labelIds, templates };
}

function hostIndex(host: string): number {
  return Number(host.slice(5));
}

export function seriesLabels(host: string): Record<string, string> {
  return { host, region: hostIndex(host) % 2 === 0 ? 'eu-west' : 'us-east' };
}

export function profileFromRows(svc: Service, host: string, rows: { stack: number; count: number }[], startNs: bigint): Profile {
  return {
    samples: rows.map((r) => ({
      frames: [...svc.stacks[r.stack]!].reverse(),
      labels: sampleLabels(hostIndex(host), svc.thread[r.stack]!),
      count: r.count,
    })),
    periodNs: PERIOD_NS,
    startNs,
    durationNs: INTERVAL_S * 1e9,
  };
}

export function unpack(x: number): { stack: number; thread: number; count: number } {
  const stack = Math.floor(x / 2 ** 40);
  const rest = x - stack * 2 ** 40;
  return { stack, thread: Math.floor(rest / 2 ** 32), count: rest % 2 ** 32 };
}

export interface FleetOptions {
  hours: number;
  hosts: number;
  intervalS: number;
  /** makeService's index: the service is named service-INDEX. */
  index?: number;
}

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
        : Array.from({ length: THREADS.length }, (_, th) => ({ stack: svc.thread.indexOf(th), count: 1 }));
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
      threads: THREADS.length,
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


/**
 * What one Kiln agent pushes for one Python process every 10 s, as the ingest
 * throughput bench and tests send it: gzipped pprof of 500 samples over ~350
 * distinct stacks 20-60 frames deep on two threads (sample labels pid, tid,
 * thread_name, python_version), and the query labels the agent adds.
 */
export const AGENT_SHAPE: ServiceShape = { minDepth: 20, maxDepth: 60, zipf: 0.8 };

export interface AgentPush {
  service: string;
  /** Query-string labels, as agent/agent.ts sends them. */
  labels: Record<string, string>;
  body: Uint8Array;
  /** Content-Type of the body: pprof, or Kiln's native form (profile/native.ts). */
  contentType: string;
  samples: number;
}

/**
 * `count` distinct agent pushes from `services` services (one host per push,
 * each a different draw of the service's stacks), stamped `startNs`.
 */
export async function agentPushes(
  count: number,
  opts: { services?: number; startNs?: bigint; format?: 'pprof' | 'native'; encoder?: NativeEncoder } = {},
): Promise<AgentPush[]> {
  // Native bodies as agents would send them: each dictionary entry once (the first push that needs it), then ids only.
  const encoder = opts.encoder ?? new NativeEncoder();
  const nServices = opts.services ?? 5;
  const hosts = Array.from({ length: count }, (_, i) => `host-${String(i).padStart(5, '0')}`);
  const services = Array.from({ length: nServices }, (_, s) =>
    makeService(
      100 + s,
      hosts.filter((_, i) => i % nServices === s),
      AGENT_SHAPE,
    ),
  );
  const out: AgentPush[] = [];
  for (let i = 0; i < count; i++) {
    const svc = services[i % nServices]!;
    const host = hosts[i]!;
    const rows = svc.templates[Math.floor(i / nServices) % TEMPLATES]!.map(unpack);
    const profile = profileFromRows(svc, host, rows, opts.startNs ?? 0n);
    const native = opts.format === 'native';
    out.push({
      service: svc.name,
      labels: { host, pid: String(1000 + hostIndex(host)), python_version: '3.11.9' },
      body: native ? new TextEncoder().encode(encoder.encode(profile)) : new Uint8Array(await encodePprof(profile)),
      contentType: native ? NATIVE_CONTENT_TYPE : 'application/octet-stream',
      samples: rows.reduce((a, r) => a + r.count, 0),
    });
  }
  return out;
}

/**
 * The same pushes in native form twice over one encoder: the first round
 * carries the dictionary, the second ids only. Each first-round body defines
 * everything it counts, as each agent's first push of the day does (one
 * encoder stands for the whole fleet here, so without expand() a push would
 * count stacks another push of the round defines, and sent at once they
 * could arrive in either order).
 */
export async function agentPushesTwice(count: number, startNs: bigint): Promise<[AgentPush[], AgentPush[]]> {
  const encoder = new NativeEncoder();
  const first = await agentPushes(count, { startNs, format: 'native', encoder });
  const steady = await agentPushes(count, { startNs, format: 'native', encoder });
  const whole = first.map((p) => {
    const body = encoder.expand(new TextDecoder().decode(p.body));
    if (body === undefined) throw new Error('the encoder lost a definition it wrote');
    return { ...p, body: new TextEncoder().encode(body) };
  });
  return [whole, steady];
}
