/**
 * `kiln serve` against a real engine: embedded chDB always, and a ClickHouse
 * server as well when CLICKHOUSE_URL is set (CLICKHOUSE_USER,
 * CLICKHOUSE_PASSWORD, CLICKHOUSE_CLUSTER optional). The same suite runs on
 * each backend.
 *
 * Inputs are the pprof files in test/fixtures/ingest/ (regenerate the
 * synthetic ones with test/fixtures/ingest/generate.ts); expectations come
 * from decoding those files, so real `kiln record` output can sit next to them.
 */

import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createClient } from '@clickhouse/client';
import { Profile as PprofProfile, Sample, StringTable, ValueType, Location, Line, Function as PprofFunction } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  ApiError,
  DiffNode,
  DiffResponse,
  FlameNode,
  FlamegraphResponse,
  IngestResponse,
  LabelsResponse,
  ServicesResponse,
  TimelineResponse,
  TopResponse,
} from '../ingest/api.js';
import { serve, type ServeHandle, type ServeOptions } from '../ingest/serve.js';
import { NATIVE_CONTENT_TYPE, NativeEncoder } from '../profile/native.js';
import { decodePprof, profileFromPprof } from '../profile/pprof.js';
import type { Profile } from '../profile/profile.js';
import { asBody, bodyBytes } from '../kit/harness.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'ingest');
const WRITE = 'write-token-0123456789';
const READ = 'read-token-0123456789';
const quiet = (): void => {};

function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

function profileOf(buf: Buffer): Profile {
  return profileFromPprof(decodePprof(buf));
}

function total(p: Profile): number {
  return p.samples.reduce((s, x) => s + x.count, 0);
}

/** Per function (name + file): self and total samples, recursion counted once. */
function functionTotals(profiles: Profile[]): Map<string, { self: number; total: number }> {
  const out = new Map<string, { self: number; total: number }>();
  for (const p of profiles) {
    for (const s of p.samples) {
      const seen = new Set<string>();
      s.frames.forEach((f, i) => {
        const key = `${f.name}\0${f.filename}`;
        let e = out.get(key);
        if (!e) out.set(key, (e = { self: 0, total: 0 }));
        if (i === 0) e.self += s.count;
        if (!seen.has(key)) {
          seen.add(key);
          e.total += s.count;
        }
      });
    }
  }
  return out;
}

function find<T extends { name: string; children: T[] }>(root: T, path: string[]): T | undefined {
  let n: T | undefined = root;
  for (const p of path) n = n?.children.find((c) => c.name === p);
  return n;
}

function countNodes(n: { children: unknown[] }): number {
  return 1 + (n.children as { children: unknown[] }[]).reduce((s, c) => s + countNodes(c), 0);
}

interface Backend {
  name: string;
  options(): ServeOptions;
  cleanup(): Promise<void>;
}

const backends: Backend[] = [];
{
  let dir = '';
  backends.push({
    name: 'embedded chDB',
    options() {
      dir = mkdtempSync(join(tmpdir(), 'kiln-ingest-'));
      return { data: dir };
    },
    async cleanup() {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  });
}
const CH_URL = process.env.CLICKHOUSE_URL;
if (CH_URL) {
  const database = `kiln_test_${process.pid}_${Date.now()}`;
  const creds = { username: process.env.CLICKHOUSE_USER ?? 'default', password: process.env.CLICKHOUSE_PASSWORD ?? '' };
  backends.push({
    name: `ClickHouse server ${CH_URL}`,
    options: () => ({
      clickhouseUrl: CH_URL,
      clickhouseUser: creds.username,
      clickhousePassword: creds.password,
      clickhouseDatabase: database,
      cluster: process.env.CLICKHOUSE_CLUSTER || undefined,
    }),
    async cleanup() {
      const c = createClient({ url: CH_URL, ...creds });
      const onCluster = process.env.CLICKHOUSE_CLUSTER ? ` ON CLUSTER ${process.env.CLICKHOUSE_CLUSTER}` : '';
      await c.command({ query: `DROP DATABASE IF EXISTS ${database}${onCluster} SYNC` });
      await c.close();
    },
  });
} else {
  console.log('CLICKHOUSE_URL is not set: the ingest suite runs on the embedded engine only');
}

describe.each(backends)('kiln serve on $name', (backend) => {
  let h: ServeHandle;
  let url: string;
  let options: ServeOptions;
  // Profiles are filed a while back so each sits alone in a range of its own,
  // on whole seconds as the store keeps them.
  const now = Math.floor(Date.now() / 1000) * 1000;
  const T1 = now - 50 * 60_000;
  const T2 = now - 20 * 60_000;
  const cpuBound = profileOf(fixture('cpu-bound.pb.gz'));
  const threads = profileOf(fixture('threads.pb.gz'));
  const regressed = profileOf(fixture('regressed.pb.gz'));
  const grandTotal = total(cpuBound) + total(threads) + total(regressed);

  async function get<T>(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
    const r = await fetch(`${url}${path}`, { headers });
    return { status: r.status, body: (await r.json()) as T };
  }

  async function post<T>(path: string, body: Uint8Array | string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
    const r = await fetch(`${url}${path}`, {
      method: 'POST',
      body: asBody(body),
      headers: { authorization: `Bearer ${WRITE}`, 'content-type': 'application/octet-stream', ...headers },
    });
    const text = await r.text();
    return { status: r.status, body: JSON.parse(text) as T };
  }

  const window = (t: number): string => `from=${t - 60_000}&to=${t + 60_000}`;

  /** What every bad-input test checks afterwards: the earlier data is there and the service answers. */
  async function expectIntact(): Promise<void> {
    const r = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=shop&${window(T1)}&label=host=web-1`);
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(total(cpuBound));
    const all = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop');
    expect(all.body.total).toBe(grandTotal);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
  }

  beforeAll(async () => {
    options = { ...backend.options(), port: 0, authToken: WRITE, log: quiet, batchDelayMs: 5 };
    h = await serve(options);
    url = h.url;
    const pushes: [string, number, string][] = [
      ['cpu-bound.pb.gz', T1, 'web-1'],
      ['threads.pb.gz', T1 + 10_000, 'web-2'],
      ['regressed.pb.gz', T2, 'web-1'],
    ];
    for (const [name, t, host] of pushes) {
      const r = await post<IngestResponse>(`/api/v1/profiles?service=shop&host=${host}&region=eu&time=${t}`, fixture(name));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
  });

  afterAll(async () => {
    await h?.close();
    await backend.cleanup();
  });

  describe('ingest', () => {
    it('answers with what it stored', async () => {
      const r = await post<IngestResponse>(`/api/v1/profiles?service=ingest-check&host=h&time=${T1}`, fixture('cpu-bound.pb.gz'));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        service: 'ingest-check',
        labels: { host: 'h' },
        time: T1,
        format: 'pprof',
        samples: total(cpuBound),
        stacks: cpuBound.samples.length,
        rows: cpuBound.samples.length,
        truncatedStacks: 0,
      });
      // The same stacks again: already stored, not written twice.
      const again = await post<IngestResponse>(`/api/v1/profiles?service=ingest-check&host=h&time=${T1 + 10_000}`, fixture('cpu-bound.pb.gz'));
      expect(again.body.newStacks).toBe(0);
    });

    it('takes an uncompressed body and Content-Encoding: gzip', async () => {
      const raw = gunzipSync(fixture('cpu-bound.pb.gz'));
      const a = await post<IngestResponse>(`/api/v1/profiles?service=encodings&time=${T1}`, raw);
      expect(a.status).toBe(200);
      const b = await post<IngestResponse>(`/api/v1/profiles?service=encodings&time=${T1 + 1000}`, gzipSync(raw), { 'content-encoding': 'gzip' });
      expect(b.status).toBe(200);
      const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=encodings&${window(T1)}`);
      expect(f.body.total).toBe(2 * total(cpuBound));
    });

    it("takes Kiln's native form: the same flame graph as the same profile in pprof", async () => {
      const enc = new NativeEncoder();
      const body = enc.encode(threads);
      const r = await post<IngestResponse>(`/api/v1/profiles?service=native&host=web-2&region=eu&time=${T1}`, body, {
        'content-type': NATIVE_CONTENT_TYPE,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ format: 'native', samples: total(threads) });
      // Its dictionary went with the first push; the next one is ids and counts only, gzipped.
      const again = enc.encode(threads);
      expect(again).not.toMatch(/^S\t/m);
      const r2 = await post<IngestResponse>(`/api/v1/profiles?service=native&host=web-2&region=eu&time=${T2}`, gzipSync(again), {
        'content-type': NATIVE_CONTENT_TYPE,
      });
      expect(r2.status, JSON.stringify(r2.body)).toBe(200);
      const viaNative = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=native&${window(T1)}`);
      const viaPprof = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=shop&${window(T1 + 10_000)}&label=host=web-2`);
      expect(viaNative.body.total).toBe(total(threads));
      expect(viaNative.body.root).toEqual(viaPprof.body.root);
      const second = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=native&${window(T2)}`);
      expect(second.body.root).toEqual(viaPprof.body.root);
    });

    it('refuses (409) a native push that counts stacks it never defined, and takes it once they are sent', async () => {
      // Stacks of their own (ids are global): names no other test uses.
      const own: Profile = {
        ...threads,
        samples: threads.samples.map((x) => ({ ...x, frames: x.frames.map((f) => ({ ...f, name: `${f.name}_409` })) })),
      };
      const enc = new NativeEncoder();
      const withDefinitions = enc.encode(own);
      const idsOnly = enc.encode(own);
      expect(idsOnly).not.toMatch(/^S\t/m);
      const headers = { 'content-type': NATIVE_CONTENT_TYPE };
      const refused = await post<ApiError>(`/api/v1/profiles?service=native-409&host=h&time=${T1}`, idsOnly, headers);
      expect(refused.status).toBe(409);
      expect(refused.body.error).toBe('unknown stacks');
      expect((await get<FlamegraphResponse>(`/api/v1/flamegraph?service=native-409&${window(T1)}`)).body.total).toBe(0);
      const first = await post<IngestResponse>(`/api/v1/profiles?service=native-409&host=h&time=${T1}`, withDefinitions, headers);
      expect(first.status).toBe(200);
      const then = await post<IngestResponse>(`/api/v1/profiles?service=native-409&host=h&time=${T1 + 10_000}`, idsOnly, headers);
      expect(then.status, JSON.stringify(then.body)).toBe(200);
      const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=native-409&${window(T1)}`);
      expect(f.body.total).toBe(2 * total(own));
      expect(JSON.stringify(f.body.root)).not.toContain('[unknown');
    });

    it('keeps every fixture in test/fixtures/ingest intact through a round trip', async () => {
      const files = readdirSync(FIXTURES).filter((n) => n.endsWith('.pb.gz'));
      expect(files.length).toBeGreaterThanOrEqual(3);
      for (const [i, name] of files.entries()) {
        const p = profileOf(fixture(name));
        const svc = `fixture-${i}`;
        const r = await post<IngestResponse>(`/api/v1/profiles?service=${svc}&time=${T1}`, fixture(name));
        expect(r.status, name).toBe(200);
        expect(r.body.samples, name).toBe(total(p));
        const top = await get<TopResponse>(`/api/v1/top?service=${svc}&${window(T1)}&limit=10000`);
        expect(top.body.total, name).toBe(total(p));
        const expected = functionTotals([p]);
        expect(top.body.count, name).toBe(expected.size);
        for (const fn of top.body.functions) {
          expect({ self: fn.self, total: fn.total }, `${name} ${fn.name}`).toEqual(expected.get(`${fn.name}\0${fn.file}`));
        }
      }
    });
  });

  describe('recorded profiles (kiln record of the test workloads)', () => {
    const shares = profileOf(fixture('recorded-shares.pb.gz'));
    const threadsRec = profileOf(fixture('recorded-threads.pb.gz'));
    const t = T1 + 500_000;

    beforeAll(async () => {
      for (const [name, host] of [
        ['recorded-shares.pb.gz', 'rec-1'],
        ['recorded-threads.pb.gz', 'rec-2'],
      ] as const) {
        const r = await post<IngestResponse>(`/api/v1/profiles?service=recorded&host=${host}&time=${t}`, fixture(name));
        expect(r.status, JSON.stringify(r.body)).toBe(200);
      }
    });

    it('shows shares.py as a/b/c at about 60/30/10 % with the hot lines', async () => {
      const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=recorded&${window(t)}&label=host=rec-1`);
      expect(f.body.total).toBe(total(shares));
      const run = find(f.body.root, ['<module>', 'main', 'Runner.run'])!;
      expect(run.value).toBe(total(shares));
      expect(run.file).toMatch(/shares\.py$/);
      const share = (n: string): number => (find(run, [n])?.value ?? 0) / run.value;
      expect(share('a')).toBeCloseTo(0.6, 1);
      expect(share('b')).toBeCloseTo(0.3, 1);
      expect(share('c')).toBeCloseTo(0.1, 1);
      // granularity=line puts each function on its "hot" line.
      const source = readFileSync(join(import.meta.dirname, 'workloads', 'shares.py'), 'utf8').split('\n');
      const hot = (n: string): number => source.findIndex((l) => l.includes(`# hot: ${n}`)) + 1;
      const byLine = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=recorded&${window(t)}&label=host=rec-1&granularity=line`);
      const leaves: FlameNode[] = [];
      const walk = (n: FlameNode): void => (n.children.length ? n.children.forEach(walk) : void leaves.push(n));
      walk(byLine.body.root);
      for (const n of ['a', 'b', 'c']) expect(leaves.find((l) => l.name === n)?.line, n).toBe(hot(n));
    });

    it('filters the recorded threads by thread name', async () => {
      for (const name of ['kiln-alpha', 'kiln-beta', 'kiln-gamma', 'kiln-delta']) {
        const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=recorded&${window(t)}&label=thread_name=${name}`);
        const expected = threadsRec.samples.filter((s) => s.labels.thread_name === name).reduce((a, s) => a + s.count, 0);
        expect(f.body.total, name).toBe(expected);
        const top = await get<TopResponse>(`/api/v1/top?service=recorded&${window(t)}&label=thread_name=${name}&limit=1`);
        expect(top.body.functions[0]?.name).toBe(`spin_${name.slice(5)}`);
      }
      const labels = await get<LabelsResponse>(`/api/v1/labels?service=recorded&${window(t)}`);
      expect(labels.body.labels.find((l) => l.name === 'thread_name')?.values).toEqual(
        expect.arrayContaining(['kiln-alpha', 'kiln-beta', 'kiln-gamma', 'kiln-delta']),
      );
    });
  });

  describe('flame graph', () => {
    it('returns the tree with values, shares, file and line', async () => {
      const r = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=shop&${window(T1)}&label=host=web-1`);
      expect(r.status).toBe(200);
      const root = r.body.root;
      expect(root.value).toBe(1000);
      const run = find(root, ['<module>', 'main', 'run'])!;
      expect(run).toMatchObject({ value: 1000, file: '/srv/app/workload.py', line: 28 });
      expect(find(run, ['a'])).toMatchObject({ value: 600, self: 600, file: '/srv/app/workload.py', line: 6, children: [] });
      expect(find(run, ['b'])).toMatchObject({ value: 300, self: 300, line: 12 });
      expect(find(run, ['Worker.c'])).toMatchObject({ value: 100, self: 100, line: 19 });
      expect(r.body).toMatchObject({ service: 'shop', granularity: 'function', total: 1000, nodes: 7, fullNodes: 7 });
    });

    it('merges every range and label set by default (the last hour)', async () => {
      const r = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop');
      expect(r.body.total).toBe(grandTotal);
      expect(find(r.body.root, ['<module>', 'main', 'run', 'a'])?.value).toBe(600 + 300 + 300);
      expect(find(r.body.root, ['Thread._bootstrap_inner', 'Thread.run', 'worker_loop'])).toMatchObject({
        value: 500,
        self: 100,
        file: '/srv/app/workload.py',
      });
    });

    it('splits frames by line with granularity=line', async () => {
      const r = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=shop&${window(T1)}&label=host=web-1&granularity=line`);
      const main = find(r.body.root, ['<module>', 'main'])!;
      expect(main.line).toBe(44);
      const runs = main.children.filter((c) => c.name === 'run');
      expect(runs.map((x) => [x.line, x.value]).sort()).toEqual([
        [31, 600],
        [32, 300],
        [33, 100],
      ]);
      const c = runs.find((x) => x.line === 33)!.children;
      expect(c.map((x) => [x.name, x.line, x.value]).sort()).toEqual([
        ['Worker.c', 21, 70],
        ['Worker.c', 22, 30],
      ]);
    });

    it('filters on sample labels and series labels, alone and together', async () => {
      const worker = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop&label=thread_name=worker-1');
      expect(worker.body.total).toBe(500);
      expect(worker.body.root.children.map((c) => c.name)).toEqual(['Thread._bootstrap_inner']);
      const mainOnWeb2 = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop&label=host=web-2&label=thread_name=MainThread');
      expect(mainOnWeb2.body.total).toBe(500);
      const either = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop&label=host=web-1&label=host=web-2');
      expect(either.body.total).toBe(grandTotal);
      const notWeb1 = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop&label=host!=web-1');
      expect(notWeb1.body.total).toBe(total(threads));
      const selector = await get<FlamegraphResponse>('/api/v1/flamegraph?query=shop%7Bhost%3D%22web-2%22%2Cthread_name%3D%22worker-1%22%7D');
      expect(selector.body.total).toBe(500);
      const none = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop&label=host=nowhere');
      expect(none.body.total).toBe(0);
      expect(none.body.root.children).toEqual([]);
    });

    it('merges the smallest nodes under maxNodes instead of dropping them', async () => {
      const full = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop');
      for (const maxNodes of [2, 5, 9]) {
        const r = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=shop&maxNodes=${maxNodes}`);
        expect(r.body.nodes).toBeLessThanOrEqual(maxNodes);
        expect(countNodes(r.body.root)).toBe(r.body.nodes);
        expect(r.body.fullNodes).toBe(full.body.nodes);
        expect(r.body.total).toBe(grandTotal);
        const check = (n: FlameNode): void => {
          expect(n.children.reduce((s, c) => s + c.value, 0) + n.self).toBe(n.value);
          n.children.forEach(check);
        };
        check(r.body.root);
        const others: FlameNode[] = [];
        const walk = (n: FlameNode): void => {
          if (n.name === '[other]') others.push(n);
          n.children.forEach(walk);
        };
        walk(r.body.root);
        expect(others.length).toBeGreaterThan(0);
        expect(others.every((o) => (o.merged ?? 0) > 0)).toBe(true);
      }
    });

    it('treats request text as data, never SQL', async () => {
      const evil = encodeURIComponent("shop' OR 1=1 --");
      const r = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=${evil}&label=host=${encodeURIComponent("x') OR ('1'='1")}`);
      expect(r.status).toBe(200);
      expect(r.body.total).toBe(0);
      const q = await post<IngestResponse>(`/api/v1/profiles?service=${evil}&note=${encodeURIComponent("a'\t\n\\b")}&time=${T1}`, fixture('cpu-bound.pb.gz'));
      expect(q.status).toBe(200);
      const labels = await get<LabelsResponse>(`/api/v1/labels?service=${evil}&${window(T1)}`);
      expect(labels.body.labels.find((l) => l.name === 'note')?.values).toEqual(["a'\t\n\\b"]);
    });
  });

  describe('diff', () => {
    it('compares two ranges, normalised by each side', async () => {
      const r = await get<DiffResponse>(
        `/api/v1/diff?service=shop&label=host=web-1&baseFrom=${T1 - 60_000}&baseTo=${T1 + 60_000}&comparisonFrom=${T2 - 60_000}&comparisonTo=${T2 + 60_000}`,
      );
      expect(r.status).toBe(200);
      expect(r.body.base.total).toBe(1000);
      expect(r.body.comparison.total).toBe(1000);
      const run = find<DiffNode>(r.body.root, ['<module>', 'main', 'run'])!;
      expect(find(run, ['a'])).toMatchObject({ base: 600, comparison: 300, baseShare: 0.6, comparisonShare: 0.3, delta: -300, value: 900 });
      expect(find(run, ['b'])).toMatchObject({ base: 300, comparison: 600, delta: 300 });
      expect(find(run, ['Worker.c'])).toMatchObject({ base: 100, comparison: 100, delta: 0 });
      expect(find(run, ['a'])?.file).toBe('/srv/app/workload.py');
    });

    it('compares two label sets, scaling the base to the comparison total', async () => {
      const r = await get<DiffResponse>('/api/v1/diff?service=shop&baseLabel=host=web-2&comparisonLabel=host=web-1');
      const bt = total(threads);
      const ct = total(cpuBound) + total(regressed);
      expect(r.body.base.total).toBe(bt);
      expect(r.body.comparison.total).toBe(ct);
      expect(r.body.baseScale).toBeCloseTo(ct / bt, 9);
      // worker-1's frames exist only in the base: shown, and marked as gone.
      const gone = find<DiffNode>(r.body.root, ['Thread._bootstrap_inner'])!;
      expect(gone).toMatchObject({ base: 500, comparison: 0, baseShare: 0.5 });
      expect(gone.delta).toBeCloseTo(-gone.value, 6);
      const a = find<DiffNode>(r.body.root, ['<module>', 'main', 'run', 'a'])!;
      expect(a.base).toBe(300);
      expect(a.comparison).toBe(900);
      expect(a.delta).toBeCloseTo(900 - 300 * (ct / bt), 6);
      expect(r.body.root.delta).toBeCloseTo(0, 6);
    });
  });

  describe('top, timeline, labels, services', () => {
    it('lists functions with self and total, sortable', async () => {
      const expected = functionTotals([cpuBound, threads, regressed]);
      const bySelf = await get<TopResponse>('/api/v1/top?service=shop');
      expect(bySelf.body.total).toBe(grandTotal);
      expect(bySelf.body.count).toBe(expected.size);
      expect(bySelf.body.functions[0]).toMatchObject({ name: 'a', self: 1200, total: 1200, file: '/srv/app/workload.py', line: 6 });
      for (const fn of bySelf.body.functions) expect({ self: fn.self, total: fn.total }).toEqual(expected.get(`${fn.name}\0${fn.file}`));
      const selfs = bySelf.body.functions.map((f) => f.self);
      expect(selfs).toEqual([...selfs].sort((x, y) => y - x));

      const byTotal = await get<TopResponse>('/api/v1/top?service=shop&sort=total&limit=3');
      expect(byTotal.body.functions).toHaveLength(3);
      expect(byTotal.body.functions[0]).toMatchObject({ name: '<module>', total: 2500, self: 0, totalShare: 2500 / grandTotal });
      const byName = await get<TopResponse>('/api/v1/top?service=shop&sort=name');
      const names = byName.body.functions.map((f) => f.name);
      expect(names).toEqual([...names].sort());
      const asc = await get<TopResponse>('/api/v1/top?service=shop&sort=self&order=asc');
      expect(asc.body.functions[0]!.self).toBe(0);
    });

    it('buckets samples over time', async () => {
      const r = await get<TimelineResponse>(`/api/v1/timeline?service=shop&from=${T1 - 30_000}&to=${T2 + 30_000}&step=10`);
      expect(r.status).toBe(200);
      expect(r.body.step).toBe(10_000);
      expect(r.body.total).toBe(grandTotal);
      // Buckets are aligned to the epoch, so they cover [from, to) and a little before.
      const first = Math.floor((T1 - 30_000) / 10_000);
      expect(r.body.points).toHaveLength(Math.ceil((T2 + 30_000) / 10_000) - first);
      expect(r.body.points[0]!.t).toBe(first * 10_000);
      const at = (t: number): number => r.body.points.find((p) => p.t <= t && t < p.t + r.body.step)!.value;
      expect(at(T1)).toBe(1000);
      expect(at(T1 + 10_000)).toBe(1000);
      expect(at(T2)).toBe(1000);
      expect(r.body.points.reduce((s, p) => s + p.value, 0)).toBe(grandTotal);
      const worker = await get<TimelineResponse>(`/api/v1/timeline?service=shop&label=thread_name=worker-1`);
      expect(worker.body.total).toBe(500);
    });

    it('answers the same from the rollups as from raw samples', async () => {
      // Two hours with whole 10-minute and hourly buckets inside: read mostly from rollups.
      const long = `from=${now - 2 * 3_600_000}&to=${now + 60_000}`;
      const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=shop&${long}`);
      expect(f.body.total).toBe(grandTotal);
      const raw = await get<FlamegraphResponse>('/api/v1/flamegraph?service=shop&granularity=function&from=now-1h');
      expect(f.body.root).toEqual(raw.body.root);
      for (const step of [600, 3600]) {
        const t = await get<TimelineResponse>(`/api/v1/timeline?service=shop&${long}&step=${step}`);
        expect(t.body.total, `step ${step}`).toBe(grandTotal);
        const bucket = (x: number): number => t.body.points.find((p) => p.t <= x && x < p.t + t.body.step)!.value;
        if (step === 600) {
          const expected = new Map<number, number>();
          for (const x of [T1, T1 + 10_000, T2]) expected.set(Math.floor(x / 600_000), (expected.get(Math.floor(x / 600_000)) ?? 0) + 1000);
          for (const [b, v] of expected) expect(bucket(b * 600_000)).toBe(v);
        }
      }
      const filtered = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=shop&${long}&label=thread_name=worker-1`);
      expect(filtered.body.total).toBe(500);
      const labels = await get<LabelsResponse>(`/api/v1/labels?service=shop&${long}`);
      expect(labels.body.labels.find((l) => l.name === 'host')?.values).toEqual(['web-1', 'web-2']);
    });

    it('lists label names and values', async () => {
      const r = await get<LabelsResponse>('/api/v1/labels?service=shop');
      const byName = Object.fromEntries(r.body.labels.map((l) => [l.name, l.values]));
      expect(byName).toMatchObject({
        host: ['web-1', 'web-2'],
        region: ['eu'],
        thread_name: ['MainThread', 'worker-1'],
        tid: ['4242', '4250'],
        python_version: ['3.11.9'],
      });
    });

    it('lists services', async () => {
      const r = await get<ServicesResponse>('/api/v1/services');
      const shop = r.body.services.find((s) => s.name === 'shop');
      expect(shop).toMatchObject({ profiles: 3, samples: grandTotal });
      expect(shop!.firstSeen).toBe(T1);
      expect(shop!.lastSeen).toBe(T2);
    });
  });

  describe('pprof export', () => {
    it('returns a gzipped pprof whose totals equal what was ingested', async () => {
      const r = await fetch(`${url}/api/v1/pprof?service=shop`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/octet-stream/);
      const buf = Buffer.from(await r.arrayBuffer());
      expect(buf[0]).toBe(0x1f);
      const p = PprofProfile.decode(gunzipSync(buf));
      const str = (i: number | bigint): string => p.stringTable.strings[Number(i)] ?? '';
      expect(p.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`)).toEqual(['samples/count', 'cpu/nanoseconds']);
      const sum = p.sample.reduce((s, x) => s + Number(x.value[0]), 0);
      expect(sum).toBe(grandTotal);
      // cpu time = samples x the period the profiles were recorded with (97 Hz).
      const cpu = p.sample.reduce((s, x) => s + Number(x.value[1]), 0);
      expect(cpu).toBe(grandTotal * Math.round(1e9 / 97));
      const names = new Set(p.function.map((f) => `${str(f.name)}@${str(f.filename)}:${Number(f.startLine)}`));
      expect(names).toContain('a@/srv/app/workload.py:6');
      expect(names).toContain('Worker.c@/srv/app/workload.py:19');
      // Kiln's own reader agrees, function by function.
      const back = profileFromPprof(p);
      expect(functionTotals([back])).toEqual(functionTotals([cpuBound, threads, regressed]));
    });
  });

  describe('Pyroscope push', () => {
    const fromS = (t: number): number => Math.floor(t / 1000);

    it('stores pprof pushed to /ingest like a native push', async () => {
      const t = T1;
      const r = await post<IngestResponse>(
        `/ingest?name=${encodeURIComponent('pyapp.cpu{env=prod,host=py-1}')}&from=${fromS(t)}&until=${fromS(t) + 10}&format=pprof&sampleRate=97&spyName=pyspy`,
        fixture('cpu-bound.pb.gz'),
      );
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ service: 'pyapp', labels: { env: 'prod', host: 'py-1' }, samples: 1000, format: 'pprof' });
      const native = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=shop&${window(T1)}&label=host=web-1`);
      const pushed = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=pyapp&${window(t)}&label=env=prod`);
      expect(pushed.body.root).toEqual(native.body.root);
    });

    it('takes pyroscope-go style multipart pprof', async () => {
      const boundary = '----kiln-test-boundary';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="profile"; filename="profile.pprof"\r\nContent-Type: application/octet-stream\r\n\r\n`),
        fixture('threads.pb.gz'),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const t = T1 + 120_000;
      const r = await post<IngestResponse>(`/ingest?name=goapp.cpu%7B%7D&from=${fromS(t)}&until=${fromS(t) + 10}`, body, {
        'content-type': `multipart/form-data; boundary=${boundary}`,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=goapp&${window(t)}&label=thread_name=worker-1`);
      expect(f.body.total).toBe(500);
    });

    it('stores folded stacks, with py-spy file:line frames', async () => {
      const folded = [
        '<module> (/srv/app/workload.py:48);main (/srv/app/workload.py:44);run (/srv/app/workload.py:31);a (/srv/app/workload.py:8) 60',
        '<module> (/srv/app/workload.py:48);main (/srv/app/workload.py:44);run (/srv/app/workload.py:32);b (/srv/app/workload.py:14) 30',
        '<module> (/srv/app/workload.py:48);main (/srv/app/workload.py:44);run (/srv/app/workload.py:33);Worker.c (/srv/app/workload.py:21) 10',
        '',
      ].join('\n');
      const t = T1 + 240_000;
      const r = await post<IngestResponse>(
        `/ingest?name=foldedapp%7Bhost%3Dpy-2%7D&from=${fromS(t)}&until=${fromS(t) + 10}&format=folded&sampleRate=100&spyName=pyspy`,
        folded,
        { 'content-type': 'text/plain' },
      );
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ service: 'foldedapp', samples: 100, stacks: 3, format: 'folded' });
      const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=foldedapp&${window(t)}&label=host=py-2&granularity=line`);
      expect(f.body.total).toBe(100);
      expect(find(f.body.root, ['<module>', 'main', 'run', 'a'])).toMatchObject({ value: 60, file: '/srv/app/workload.py', line: 8 });
      const top = await get<TopResponse>(`/api/v1/top?service=foldedapp&${window(t)}`);
      expect(top.body.functions.slice(0, 3).map((x) => [x.name, x.selfShare])).toEqual([
        ['a', 0.6],
        ['b', 0.3],
        ['Worker.c', 0.1],
      ]);
      // sampleRate=100 -> 10 ms per sample in the export.
      const pp = await fetch(`${url}/api/v1/pprof?service=foldedapp&${window(t)}`);
      const p = PprofProfile.decode(gunzipSync(Buffer.from(await pp.arrayBuffer())));
      expect(Number(p.period)).toBe(10_000_000);
    });

    it('tells raw (not gzipped) pprof from folded text without a format', async () => {
      const t = T1 + 360_000;
      const raw = gunzipSync(fixture('cpu-bound.pb.gz'));
      expect(raw[0]).toBe(0x0a); // sample_type's tag is a newline byte
      const r = await post<IngestResponse>(`/ingest?name=rawpprof&from=${fromS(t)}&until=${fromS(t) + 10}`, raw);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ format: 'pprof', samples: 1000 });
    });

    it('defaults to folded for a plain text body without a format', async () => {
      const t = T1 + 300_000;
      const r = await post<IngestResponse>(`/ingest?name=plain&from=${fromS(t)}&until=${fromS(t) + 10}`, 'main;work 7\nmain;idle 3\n');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ format: 'folded', samples: 10 });
    });
  });

  describe('bad input', () => {
    const expectError = (r: { status: number; body: unknown }, status: number, error?: RegExp): void => {
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      const b = r.body as ApiError;
      expect(typeof b.error).toBe('string');
      if (error) expect(b.error).toMatch(error);
    };

    it('413 for a body over the size limit', async () => {
      const big = Buffer.alloc(5 * 1024 * 1024, 7);
      expectError(await post(`/api/v1/profiles?service=shop`, big), 413);
      expectError(await post(`/ingest?name=shop&format=folded`, big), 413);
      await expectIntact();
    });

    it('413 for a gzip bomb, stopped while inflating', async () => {
      const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024));
      expect(bomb.length).toBeLessThan(1024 * 1024);
      const before = process.memoryUsage().arrayBuffers;
      const r = await post<ApiError>(`/api/v1/profiles?service=shop`, bomb);
      expectError(r, 413, /too large/);
      expect(r.body.detail).toMatch(/inflates to more than/);
      // Inflating stopped at the 4 MiB cap, not at 256 MiB.
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
      // The same bomb as Content-Encoding: gzip over a raw zero-filled "pprof".
      expectError(await post(`/api/v1/profiles?service=shop`, bomb, { 'content-encoding': 'gzip' }), 413);
      expectError(await post(`/ingest?name=shop&format=folded`, bomb), 413);
      await expectIntact();
    });

    it('400 for a malformed pprof', async () => {
      for (const body of [
        Buffer.from('this is not a profile'),
        Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
        gzipSync(Buffer.from([0x12, 0x05, 0x08])),
        fixture('cpu-bound.pb.gz').subarray(0, 100),
        Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]),
      ]) {
        const r = await post<ApiError>(`/api/v1/profiles?service=shop`, body);
        expectError(r, 400);
        expect(r.body.detail?.length ?? 0).toBeGreaterThan(0);
      }
      expectError(await post(`/ingest?name=shop&format=pprof`, Buffer.from('garbage')), 400);
      expectError(await post(`/api/v1/profiles?service=shop`, Buffer.alloc(0)), 400, /empty/);
      await expectIntact();
    });

    it('400 for an unknown format or a malformed folded profile', async () => {
      expectError(await post(`/ingest?name=shop&format=jfr`, 'whatever'), 400, /unknown format/);
      expectError(await post(`/ingest?name=shop&format=folded`, 'main;run without count\n'), 400, /folded/);
      expectError(await post(`/ingest?format=folded`, 'a 1\n'), 400, /name/);
      await expectIntact();
    });

    it('400 for a bad time range', async () => {
      expectError(await get(`/api/v1/flamegraph?service=shop&from=now&to=now-1h`), 400, /time range/);
      expectError(await get(`/api/v1/flamegraph?service=shop&from=yesterday`), 400, /bad from/);
      expectError(await get(`/api/v1/top?service=shop&from=now-90d`), 400, /time range/);
      expectError(await get(`/api/v1/diff?service=shop&baseFrom=now&baseTo=now-2h`), 400, /time range/);
      expectError(await get(`/api/v1/timeline?service=shop&step=0.5`), 400, /step/);
      expectError(await get(`/api/v1/timeline?service=shop&from=now-30d&step=1`), 400, /step/);
      expectError(await post(`/ingest?name=shop&from=${Math.floor(T1 / 1000)}&until=${Math.floor(T1 / 1000) - 10}&format=folded`, 'a 1\n'), 400, /time range/);
      expectError(await post(`/api/v1/profiles?service=shop&time=now-400d`, fixture('cpu-bound.pb.gz')), 400, /time range/);
      await expectIntact();
    });

    it('400 for too many or too long labels', async () => {
      const many = Array.from({ length: 31 }, (_, i) => `l${i}=v`).join('&');
      expectError(await post(`/api/v1/profiles?service=shop&${many}`, fixture('cpu-bound.pb.gz')), 400, /too many labels/);
      expectError(await post(`/api/v1/profiles?service=shop&host=${'x'.repeat(3000)}`, fixture('cpu-bound.pb.gz')), 400, /too long/);
      expectError(await post(`/api/v1/profiles?service=shop&${'n'.repeat(1100)}=v`, fixture('cpu-bound.pb.gz')), 400, /too long/);
      expectError(await post(`/api/v1/profiles?service=shop&bad-name=v`, fixture('cpu-bound.pb.gz')), 400, /bad label name/);
      expectError(await post(`/api/v1/profiles?service=shop&host=a&host=b`, fixture('cpu-bound.pb.gz')), 400);
      const pyMany = Array.from({ length: 31 }, (_, i) => `l${i}=v`).join(',');
      expectError(await post(`/ingest?name=${encodeURIComponent(`shop{${pyMany}}`)}&format=folded`, 'a 1\n'), 400, /too many labels/);
      const filters = Array.from({ length: 31 }, (_, i) => `label=l${i}=v`).join('&');
      expectError(await get(`/api/v1/flamegraph?service=shop&${filters}`), 400, /too many label filters/);
      expectError(await get(`/api/v1/flamegraph?service=shop&label=noequals`), 400);
      // Too many labels on one pprof sample.
      const labelled = pprofWith(1, 101);
      expectError(await post(`/api/v1/profiles?service=shop&time=${T1}`, labelled), 400, /too many labels/);
      await expectIntact();
    });

    it('400 for too many samples', async () => {
      expectError(await post(`/api/v1/profiles?service=shop&time=${T1}`, pprofWith(16_001, 0)), 400, /too many samples/);
      const folded = Array.from({ length: 16_001 }, (_, i) => `main;f${i} 1`).join('\n');
      expectError(await post(`/ingest?name=shop&format=folded`, folded), 400, /too many samples/);
      await expectIntact();
    });

    it('400 for missing or bad query parameters', async () => {
      expectError(await get(`/api/v1/flamegraph`), 400, /service/);
      expectError(await get(`/api/v1/flamegraph?service=shop&maxNodes=0`), 400, /maxNodes/);
      expectError(await get(`/api/v1/flamegraph?service=shop&granularity=byte`), 400, /granularity/);
      expectError(await get(`/api/v1/top?service=shop&sort=fast`), 400, /sort/);
      expectError(await get(`/api/v1/nope`), 404);
      expectError(await post(`/api/v1/profiles`, fixture('cpu-bound.pb.gz')), 400, /service/);
      await expectIntact();
    });

    it('cuts stacks deeper than the frame limit at the root side', async () => {
      const r = await post<IngestResponse>(`/api/v1/profiles?service=deep&time=${T1}`, pprofWith(1, 0, 1_200));
      expect(r.status).toBe(200);
      expect(r.body.truncatedStacks).toBe(1);
      const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=deep&${window(T1)}`);
      let depth = 0;
      let n: FlameNode | undefined = f.body.root;
      while (n && n.children.length > 0) {
        n = n.children[0];
        depth++;
      }
      expect(depth).toBe(1_000);
      expect(n?.name).toBe('[truncated]');
      expect(f.body.root.children[0]?.name).toBe('f0');
      await expectIntact();
    });

    it('401 for writes without the token; reads stay open', async () => {
      const body = fixture('cpu-bound.pb.gz');
      expectError(await post(`/api/v1/profiles?service=shop`, body, { authorization: '' }), 401);
      expectError(await post(`/api/v1/profiles?service=shop`, body, { authorization: 'Bearer wrong-token-123' }), 401);
      expectError(await post(`/ingest?name=shop&format=folded`, 'a 1', { authorization: `Basic ${WRITE}` }), 401);
      expect((await get(`/api/v1/services`)).status).toBe(200);
      await expectIntact();
    });

    it('stays up and keeps its data under concurrent writes and reads', async () => {
      const t = T1 + 400_000;
      const writes = Array.from({ length: 24 }, (_, i) =>
        post<IngestResponse>(`/api/v1/profiles?service=busy&host=h${i % 4}&time=${t + i * 100}`, fixture('threads.pb.gz')),
      );
      const reads = Array.from({ length: 12 }, () => get<FlamegraphResponse>('/api/v1/flamegraph?service=shop'));
      const results = await Promise.all([...writes, ...reads]);
      for (const r of results) expect(r.status).toBe(200);
      const f = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=busy&${window(t)}`);
      expect(f.body.total).toBe(24 * total(threads));
      const h2 = await get<FlamegraphResponse>(`/api/v1/flamegraph?service=busy&${window(t)}&label=host=h2`);
      expect(h2.body.total).toBe(6 * total(threads));
      await expectIntact();
    });
  });

  describe('more than one process, auth on reads, schema', () => {
    it('a second process on the same store sees the data, with reads behind a token', async () => {
      // Each process has an ingest log of its own: the first one's is taken.
      await expect(serve({ ...options, port: 0, readToken: READ, walDir: h.kiln.committer.log.dir })).rejects.toThrow(/ingest log .* is in use/);
      const walDir = mkdtempSync(join(tmpdir(), 'kiln-log-'));
      const second = await serve({ ...options, port: 0, readToken: READ, walDir });
      try {
        const denied = await fetch(`${second.url}/api/v1/flamegraph?service=shop`);
        expect(denied.status).toBe(401);
        const asReader = await fetch(`${second.url}/api/v1/flamegraph?service=shop`, { headers: { authorization: `Bearer ${READ}` } });
        expect(asReader.status).toBe(200);
        expect(((await asReader.json()) as FlamegraphResponse).total).toBe(grandTotal);
        const asWriter = await fetch(`${second.url}/api/v1/top?service=shop`, { headers: { authorization: `Bearer ${WRITE}` } });
        expect(asWriter.status).toBe(200);
        const readerWrites = await fetch(`${second.url}/api/v1/profiles?service=shop`, {
          method: 'POST',
          body: bodyBytes(fixture('cpu-bound.pb.gz')),
          headers: { authorization: `Bearer ${READ}` },
        });
        expect(readerWrites.status).toBe(401);
      } finally {
        await second.close();
        rmSync(walDir, { recursive: true, force: true });
      }
      await expectIntact();
    });

    it('migrates idempotently and applies a new retention to the TTLs', async () => {
      const ttlOf = async (): Promise<string> => {
        const rows = await h.kiln.store.rows(
          `SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name LIKE 'kiln_samples%' AND engine LIKE '%MergeTree'`,
          { db: h.kiln.store.ctx.database },
        );
        return String(rows[0]?.[0] ?? '');
      };
      expect(await ttlOf()).toContain('toIntervalDay(30)');
      // Other services on this store, each with an ingest log of its own.
      const walDir = mkdtempSync(join(tmpdir(), 'kiln-log-'));
      const again = await serve({ ...options, port: 0, retentionDays: 7, walDir });
      try {
        expect(await ttlOf()).toContain('toIntervalDay(7)');
        const r = await fetch(`${again.url}/api/v1/flamegraph?service=shop`);
        expect(((await r.json()) as FlamegraphResponse).total).toBe(grandTotal);
      } finally {
        await again.close();
      }
      const back = await serve({ ...options, port: 0, retentionDays: 30, walDir });
      await back.close();
      rmSync(walDir, { recursive: true, force: true });
      expect(await ttlOf()).toContain('toIntervalDay(30)');
      await expectIntact();
    });
  });
});

describe('kiln serve without its store', () => {
  it('answers 503 with {error} while ClickHouse is unreachable, and stays up', async () => {
    // Port 9 (discard) on localhost: nothing listens there, connections are refused.
    const walDir = mkdtempSync(join(tmpdir(), 'kiln-log-'));
    const h = await serve({ port: 0, clickhouseUrl: 'http://127.0.0.1:9', walDir, log: quiet });
    try {
      for (const path of ['/api/v1/flamegraph?service=x', '/api/v1/services', '/api/v1/top?service=x']) {
        const r = await fetch(`${h.url}${path}`);
        expect(r.status, path).toBe(503);
        expect(((await r.json()) as ApiError).error).toBe('storage unavailable');
      }
      const w = await fetch(`${h.url}/api/v1/profiles?service=x&time=now`, { method: 'POST', body: bodyBytes(fixture('cpu-bound.pb.gz')) });
      expect(w.status).toBe(503);
      const health = await fetch(`${h.url}/healthz`);
      expect(health.status).toBe(503);
      // Bad input is still told apart from an unavailable store.
      const bad = await fetch(`${h.url}/api/v1/flamegraph?service=x&from=never`);
      expect(bad.status).toBe(400);
    } finally {
      await h.close();
      rmSync(walDir, { recursive: true, force: true });
    }
  });

  it('serves the web UI from uiDir when it exists', async () => {
    const ui = mkdtempSync(join(tmpdir(), 'kiln-ui-'));
    mkdirSync(join(ui, 'assets'));
    writeFileSync(join(ui, 'index.html'), '<!doctype html><title>Kiln</title>');
    writeFileSync(join(ui, 'assets', 'app.js'), 'console.log(1)');
    const h = await serve({ port: 0, clickhouseUrl: 'http://127.0.0.1:9', uiDir: ui, walDir: join(ui, 'log'), log: quiet });
    try {
      expect(await (await fetch(`${h.url}/`)).text()).toContain('<title>Kiln</title>');
      expect((await fetch(`${h.url}/assets/app.js`)).status).toBe(200);
    } finally {
      await h.close();
      rmSync(ui, { recursive: true, force: true });
    }
  });
});

/**
 * A pprof with `samples` samples (distinct stacks), `labels` labels on the
 * first sample, and stacks `depth` frames deep (f0 at the root).
 */
function pprofWith(samples: number, labels: number, depth = 3): Buffer {
  const st = new StringTable();
  const functions: PprofFunction[] = [];
  const locations: Location[] = [];
  const fileIdx = st.dedup('/srv/deep.py');
  const loc = (name: string): number => {
    const id = locations.length + 1;
    functions.push(new PprofFunction({ id, name: st.dedup(name), systemName: st.dedup(name), filename: fileIdx, startLine: id }));
    locations.push(new Location({ id, line: [new Line({ functionId: id, line: id })] }));
    return id;
  };
  const spine = Array.from({ length: depth - 1 }, (_, i) => loc(`f${i}`));
  const sampleList: Sample[] = [];
  for (let i = 0; i < samples; i++) {
    const leaf = loc(`leaf${i}`);
    const lab =
      i === 0
        ? Array.from({ length: labels }, (_, j) => ({ key: st.dedup(`k${j}`), str: st.dedup('v') }))
        : [];
    sampleList.push(new Sample({ locationId: [leaf, ...[...spine].reverse()], value: [1], label: lab }));
  }
  const p = new PprofProfile({
    sampleType: [new ValueType({ type: st.dedup('samples'), unit: st.dedup('count') })],
    sample: sampleList,
    location: locations,
    function: functions,
    stringTable: st,
    timeNanos: BigInt(Date.now()) * 1_000_000n,
  });
  return gzipSync(p.encode());
}
