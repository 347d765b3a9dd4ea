/**
 * Pyroscope's clients against a real `kiln serve` (its own process, embedded
 * chDB): profile types kept apart.
 *
 * - @pyroscope/nodejs (from npm), unchanged, pushes wall and heap profiles
 *   for 30 s under one application name next to a CPU profile: the CPU flame
 *   graph does not move, wall time is wall time at the pprof's own period
 *   (not the SDK's sampleRate), and the heap is its own type, in bytes.
 * - pyroscope-go's shapes (multipart with a sample_type_config part, the
 *   four-type heap pprof, the mutex profile with display names): one series
 *   per type, values exactly as sent.
 */

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiError, FlameNode, FlamegraphResponse, TimelineResponse, TypesResponse } from '../ingest/api.js';
import { startServe, tempDir, type Daemon } from '../kit/harness.js';
import { GO_SAMPLE_TYPE_CONFIG, goHeapPprof, typedPprof } from '../kit/pprof-shapes.js';
import { CPU_TYPE_ID } from '../profile/profile-type.js';
import { decodePprof } from '../profile/pprof.js';
import { readFileSync } from 'node:fs';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'ingest');
const WORKLOAD = join(import.meta.dirname, 'workloads', 'pyroscope-node.mjs');

let server: Daemon & { url: string };
const tmp = tempDir();

beforeAll(async () => {
  server = await startServe(tmp.dir);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  tmp.cleanup();
});

async function get<T>(path: string): Promise<{ status: number; body: T }> {
  const r = await fetch(`${server.url}${path}`);
  return { status: r.status, body: (await r.json()) as T };
}

/** Whether a frame names `fn`: the Node SDK names frames FILE:FUNCTION:LINE, Go's are the bare name. */
function isFn(frame: string, fn: string): boolean {
  return frame === fn || frame.includes(`:${fn}:`);
}

function hasFn(n: FlameNode, fn: string): boolean {
  return isFn(n.name, fn) || n.children.some((c) => hasFn(c, fn));
}

/** Total of the frames of `fn` that are not inside another of its frames. */
function totalOf(n: FlameNode, fn: string): number {
  if (isFn(n.name, fn)) return n.value;
  return n.children.reduce((s, c) => s + totalOf(c, fn), 0);
}

const RANGE = 'from=now-1h&to=now%2B1m';
const enc = encodeURIComponent;

/** What the Node SDK sent, as the workload saw it go by (test/workloads/pyroscope-node.mjs). */
interface SdkPush {
  status: number;
  sampleRate: string | null;
  period: number;
  types: string[];
  totals: Record<string, number>;
}

describe('@pyroscope/nodejs pushing wall and heap for 30 s', () => {
  const app = 'nodeapp';
  let cpuBefore: FlamegraphResponse;
  const pushes: SdkPush[] = [];
  const sent = (kind: string): SdkPush[] => pushes.filter((p) => p.types.some((t) => t.startsWith(kind)));

  beforeAll(async () => {
    // A CPU profile of the same service, pushed before the SDK starts.
    const r = await fetch(`${server.url}/api/v1/profiles?service=${app}&time=now-5m`, { method: 'POST', body: readFileSync(join(FIXTURES, 'cpu-bound.pb.gz')) });
    expect(r.status).toBe(200);
    cpuBefore = (await get<FlamegraphResponse>(`/api/v1/flamegraph?service=${app}&${RANGE}`)).body;
    expect(cpuBefore.total).toBeGreaterThan(0);

    const child = spawn(process.execPath, [WORKLOAD, server.url, app, '30'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('the SDK workload did not finish within 90 s'));
      }, 90_000);
      lines.on('line', (l) => {
        if (l.startsWith('{"push"')) pushes.push((JSON.parse(l) as { push: SdkPush }).push);
        if (l.includes('"done"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the SDK workload exited (${code}) before it was done`));
      });
    });
    await done;
    // Every push the SDK made was taken.
    expect(pushes.map((p) => p.status)).toEqual(pushes.map(() => 200));
    expect(sent('wall/').length).toBeGreaterThan(0);
    expect(sent('inuse_space/').length).toBeGreaterThan(0);
  }, 150_000);

  it('lists CPU, wall and the two heap types for the service', async () => {
    const t = await get<TypesResponse>(`/api/v1/types?service=${app}&${RANGE}`);
    expect(t.status).toBe(200);
    expect(t.body.types.map((x) => x.id)).toEqual(
      [CPU_TYPE_ID, 'memory:inuse_objects:count:inuse_space:bytes', 'memory:inuse_space:bytes:inuse_space:bytes', 'wall:wall:nanoseconds:wall:nanoseconds'].sort(),
    );
    expect(Object.fromEntries(t.body.types.map((x) => [x.name, x.unit]))).toMatchObject({ process_cpu: 'nanoseconds', wall: 'nanoseconds' });
    expect(t.body.types.find((x) => x.sampleType === 'inuse_space')?.unit).toBe('bytes');
  });

  it('leaves the CPU flame graph as it was', async () => {
    const after = (await get<FlamegraphResponse>(`/api/v1/flamegraph?service=${app}&${RANGE}`)).body;
    expect(after.type).toBe(CPU_TYPE_ID);
    expect(after.total).toBe(cpuBefore.total);
    expect(after.root).toEqual(cpuBefore.root);
    expect(hasFn(after.root, 'burnCpu')).toBe(false);
  });

  it("shows wall time at the pprof's own period, not the SDK's sampleRate", async () => {
    const w = (await get<FlamegraphResponse>(`/api/v1/flamegraph?service=${app}&${RANGE}&type=${enc('wall:wall:nanoseconds:wall:nanoseconds')}`)).body;
    expect(w.unit).toBe('nanoseconds');
    // Every wall sample the SDK sent, and nothing else (no heap bytes).
    const wall = sent('wall/');
    expect(w.total).toBe(wall.reduce((a, p) => a + p.totals['samples/count']!, 0));
    // Worth a period of its pprof (the most common one), not the SDK's sampleRate (17 Hz, 59 ms).
    expect(wall.map((p) => p.period)).toContain(w.scale);
    for (const p of wall) expect(1e9 / Number(p.sampleRate)).not.toBeCloseTo(p.period, -5);
    expect(totalOf(w.root, 'burnCpu')).toBeGreaterThan(0);
  });

  it('keeps the heap as its own type, in bytes', async () => {
    const type = enc('memory:inuse_space:bytes:inuse_space:bytes');
    const h = (await get<FlamegraphResponse>(`/api/v1/flamegraph?service=${app}&${RANGE}&type=${type}`)).body;
    expect(h.unit).toBe('bytes');
    expect(h.scale).toBe(1);
    // Exactly the bytes the SDK sent, summed over its heap profiles.
    expect(h.total).toBe(sent('inuse_space/').reduce((a, p) => a + p.totals['inuse_space/bytes']!, 0));
    // keepAllocating's arrays stay alive (16 MB); burnCpu may show too: V8 boxes its
    // doubles on the heap until the loop is optimized, and a sampled one can be live
    expect(totalOf(h.root, 'keepAllocating')).toBeGreaterThan(0);
    const tl = (await get<TimelineResponse>(`/api/v1/timeline?service=${app}&${RANGE}&type=${type}`)).body;
    expect(tl.unit).toBe('bytes');
    expect(tl.total).toBe(h.total);
  });
});

describe("pyroscope-go's pushes: multipart with sample_type_config", () => {
  const app = 'goapp';
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const from = String(nowNs - 70_000_000_000n);
  const until = String(nowNs - 60_000_000_000n);
  const heapSamples: { stack: string[]; values: [number, number, number, number] }[] = [
    { stack: ['main', 'handler', 'alloc'], values: [300, 3 * 2 ** 32, 2, 8192] },
    { stack: ['main', 'cache.fill'], values: [10, 40960, 10, 40960] },
  ];

  /** POST /ingest as pyroscope-go's remote.go does it. */
  async function goPush(name: string, pprof: Uint8Array, config?: object): Promise<{ status: number; body: unknown }> {
    const form = new FormData();
    form.append('profile', new Blob([gzipSync(pprof)]), 'profile.pprof');
    if (config) form.append('sample_type_config', new Blob([JSON.stringify(config)]), 'sample_type_config.json');
    const q = new URLSearchParams({ name, from, until, spyName: 'gospy', sampleRate: '100', units: '', aggregationType: '' });
    const r = await fetch(`${server.url}/ingest?${q}`, { method: 'POST', body: form });
    return { status: r.status, body: await r.json() };
  }

  beforeAll(async () => {
    const t = Date.now() - 65_000;
    // CPU at 200 Hz: samples/count and cpu/nanoseconds, period 5 ms; sampleRate=100 must not override it.
    const cpu = typedPprof({
      sampleTypes: ['samples/count', 'cpu/nanoseconds'],
      periodType: 'cpu/nanoseconds',
      period: 5_000_000,
      samples: [{ stack: ['main', 'handler', 'compute'], values: [40, 200_000_000] }],
      timeMs: t,
    });
    const mutex = typedPprof({
      sampleTypes: ['contentions/count', 'delay/nanoseconds'],
      periodType: 'contentions/count',
      period: 1,
      samples: [{ stack: ['main', 'handler', 'sync.(*Mutex).Lock'], values: [7, 350_000] }],
      timeMs: t,
    });
    for (const [name, body, config] of [
      [`${app}{host=h2}`, cpu, undefined],
      [`${app}{host=h1}`, goHeapPprof(heapSamples, t), GO_SAMPLE_TYPE_CONFIG.heap],
      [`${app}{host=h2}`, mutex, GO_SAMPLE_TYPE_CONFIG.mutex],
    ] as const) {
      const r = await goPush(name, body, config);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
  }, 60_000);

  it('stores the four heap types, CPU and the mutex types apart', async () => {
    const t = await get<TypesResponse>(`/api/v1/types?service=${app}&${RANGE}`);
    expect(t.body.types.map((x) => x.id)).toEqual(
      [
        CPU_TYPE_ID,
        'memory:alloc_objects:count:space:bytes',
        'memory:alloc_space:bytes:space:bytes',
        'memory:inuse_objects:count:space:bytes',
        'memory:inuse_space:bytes:space:bytes',
        'mutex:contentions:count:contentions:count',
        'mutex:delay:nanoseconds:contentions:count',
      ].sort(),
    );
    // Per label selector: host h1 pushed only the heap.
    const h1 = await get<TypesResponse>(`/api/v1/types?query=${enc(`${app}{host="h1"}`)}&${RANGE}`);
    expect(h1.body.types.map((x) => x.name)).toEqual(['memory', 'memory', 'memory', 'memory']);
  });

  it('answers each heap type with exactly the values sent, in its unit', async () => {
    const types = ['alloc_objects:count', 'alloc_space:bytes', 'inuse_objects:count', 'inuse_space:bytes'];
    for (const [i, t] of types.entries()) {
      const [sampleType, unit] = t.split(':');
      const f = (await get<FlamegraphResponse>(`/api/v1/flamegraph?service=${app}&${RANGE}&type=${enc(`memory:${t}:space:bytes`)}`)).body;
      expect(f.unit, t).toBe(unit === 'bytes' ? 'bytes' : 'count');
      expect(f.total, t).toBe(heapSamples.reduce((s, x) => s + x.values[i]!, 0));
      expect(totalOf(f.root, 'alloc'), t).toBe(heapSamples[0]!.values[i]);
      expect(sampleType).toBeTruthy();
    }
  });

  it("keeps CPU at the pprof's 5 ms period and mutex delay in nanoseconds", async () => {
    const cpu = (await get<FlamegraphResponse>(`/api/v1/flamegraph?service=${app}&${RANGE}`)).body;
    expect([cpu.total, cpu.unit, cpu.scale]).toEqual([40, 'nanoseconds', 5_000_000]);
    expect(hasFn(cpu.root, 'alloc')).toBe(false);
    const delay = (await get<FlamegraphResponse>(`/api/v1/flamegraph?service=${app}&${RANGE}&type=${enc('mutex:delay:nanoseconds:contentions:count')}`)).body;
    expect([delay.total, delay.unit, delay.scale]).toEqual([350_000, 'nanoseconds', 1]);
  });

  it('exports a type as pprof with its own sample type and the labels', async () => {
    const r = await fetch(`${server.url}/api/v1/pprof?service=${app}&${RANGE}&type=${enc('memory:alloc_space:bytes:space:bytes')}`);
    expect(r.status).toBe(200);
    const p = decodePprof(Buffer.from(await r.arrayBuffer()));
    const s = (i: number | bigint): string => p.stringTable.strings[Number(i)]!;
    expect(p.sampleType.map((t) => `${s(t.type)}/${s(t.unit)}`)).toEqual(['alloc_space/bytes']);
    expect(p.sample.reduce((a, x) => a + Number(x.value[0]), 0)).toBe(3 * 2 ** 32 + 40960);
    for (const x of p.sample) expect(Object.fromEntries(x.label.map((l) => [s(l.key), s(l.str)]))).toMatchObject({ host: 'h1' });
  });

  it('refuses a type that is not an ID, naming it', async () => {
    const r = await get<ApiError>(`/api/v1/flamegraph?service=${app}&${RANGE}&type=heap`);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('unknown profile type');
    expect(r.body.detail).toContain('"heap"');
    for (const path of ['top', 'timeline', 'labels', 'pprof', 'diff']) {
      const x = await fetch(`${server.url}/api/v1/${path}?service=${app}&type=cpu`);
      expect(x.status, path).toBe(400);
    }
  });
});
