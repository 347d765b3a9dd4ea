/**
 * The Connect endpoints of a real `kiln serve` (bin/kiln, embedded chDB):
 * PushRequests built with the messages generated from Pyroscope's protos
 * (gzip, Basic auth, protobuf and JSON), and the querier driven the way
 * Grafana's Pyroscope data source drives it, with a Connect client generated
 * from the same protos speaking binary protobuf. What the querier answers is
 * checked against the JSON API for the same range and selector; bad input
 * gets Connect errors with the right codes while /healthz stays up.
 */

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create, fromBinary, toBinary, toJson } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { compressionGzip, createConnectTransport } from '@connectrpc/connect-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlameNode, FlamegraphResponse, LabelsResponse, ServicesResponse, TimelineResponse } from '../ingest/api.js';
import { PushRequestSchema, PushResponseSchema, PusherService, type PushRequest } from '../ingest/connect/gen/push/v1/push_pb.js';
import { QuerierService, type FlameGraph } from '../ingest/connect/gen/querier/v1/querier_pb.js';
import { TimeSeriesAggregationType } from '../ingest/connect/gen/types/v1/types_pb.js';
import { asBody, startServe, type Daemon } from '../kit/harness.js';
import { goHeapPprof } from '../kit/pprof-shapes.js';
import { pprofBytes } from '../profile/pprof.js';
import type { Frame, Profile } from '../profile/profile.js';

const WRITE = 'connect-write-token';
const READ = 'connect-read-token';
const CPU = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
const INUSE = 'memory:inuse_space:bytes:space:bytes';
/** The pushed CPU profiles' period: Pyroscope's clients read CPU in nanoseconds, Kiln stores counts of it. */
const PERIOD_NS = 10_000_000;
/** Whole minutes, a while ago: every push below lands in [T0, T0 + 3 min). */
const T0 = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
const FROM = T0 - 60_000;
const TO = T0 + 5 * 60_000;

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function frame(name: string, line = 1): Frame {
  return { name, systemName: name.split('.').at(-1)!, filename: `/srv/app/${name.split('.')[0]}.py`, startLine: line, line: line + 1 };
}

/** A profile whose stacks (root first) and counts are given, starting at `ms`. */
function profileAt(ms: number, stacks: [string[], number][]): Uint8Array {
  const p: Profile = {
    samples: stacks.map(([names, count]) => ({ frames: names.map((n) => frame(n)).reverse(), labels: {}, count })),
    periodNs: PERIOD_NS,
    startNs: BigInt(ms) * 1_000_000n,
    durationNs: 10e9,
  };
  return gzipSync(pprofBytes(p));
}

function pushRequest(service: string, labels: Record<string, string>, profiles: { body: Uint8Array; id?: string }[], name = 'process_cpu'): PushRequest {
  return create(PushRequestSchema, {
    series: [
      {
        labels: [
          { name: '__name__', value: name },
          { name: 'service_name', value: service },
          ...Object.entries(labels).map(([name, value]) => ({ name, value })),
        ],
        samples: profiles.map((p) => ({ rawProfile: p.body, ID: p.id ?? randomUUID() })),
      },
    ],
  });
}

interface Answer {
  status: number;
  body: Buffer;
  json(): { code?: string; message?: string };
}

describe('Connect: Push API and Grafana querier on kiln serve', () => {
  let dir: string;
  let kiln: Daemon & { url: string };

  async function post(path: string, body: Uint8Array | string, headers: Record<string, string>): Promise<Answer> {
    const r = await fetch(`${kiln.url}${path}`, { method: 'POST', body: asBody(body), headers });
    const buf = Buffer.from(await r.arrayBuffer());
    return { status: r.status, body: buf, json: () => JSON.parse(buf.toString('utf8')) as { code?: string; message?: string } };
  }

  const protoPush = (req: PushRequest, auth = basic('tenant-1', WRITE)): Promise<Answer> =>
    post('/push.v1.PusherService/Push', gzipSync(toBinary(PushRequestSchema, req)), {
      'content-type': 'application/proto',
      'content-encoding': 'gzip',
      authorization: auth,
    });

  async function api<T>(path: string): Promise<T> {
    const r = await fetch(`${kiln.url}/api/v1/${path}`, { headers: { authorization: `Bearer ${READ}` } });
    expect(r.status, await r.clone().text()).toBe(200);
    return (await r.json()) as T;
  }

  const flame = (service: string, extra = ''): Promise<FlamegraphResponse> =>
    api<FlamegraphResponse>(`flamegraph?service=${service}&from=${FROM}&to=${TO}${extra}`);

  async function healthy(): Promise<void> {
    const r = await fetch(`${kiln.url}/healthz`);
    expect(r.status).toBe(200);
  }

  function transport(binary: boolean, auth: string, gzip = false) {
    const withAuth: Interceptor = (next) => (req) => {
      req.header.set('authorization', auth);
      return next(req);
    };
    return createConnectTransport({
      baseUrl: kiln.url,
      httpVersion: '1.1',
      useBinaryFormat: binary,
      interceptors: [withAuth],
      ...(gzip ? { sendCompression: compressionGzip, compressMinBytes: 1 } : {}),
    });
  }

  /** Grafana's way: binary protobuf over the Connect protocol (here with Basic auth, one of Grafana's settings). */
  const grafana = () => createClient(QuerierService, transport(true, basic('grafana', READ)));

  async function connectError(p: Promise<unknown>): Promise<ConnectError> {
    try {
      await p;
    } catch (e) {
      return ConnectError.from(e);
    }
    throw new Error('expected a Connect error');
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-connect-'));
    kiln = await startServe(dir, 0, ['--auth-token', WRITE, '--read-token', READ, '--batch-delay-ms', '5']);
  });

  afterAll(async () => {
    await kiln?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('Push', () => {
    const shopA = profileAt(T0, [
      [['main', 'app.handle', 'app.render'], 30],
      [['main', 'app.handle', 'db.query'], 12],
      [['main', 'gc.collect'], 3],
    ]);
    const shopB = profileAt(T0 + 60_000, [
      [['main', 'app.handle', 'app.render'], 5],
      [['main', 'worker.run'], 20],
    ]);
    const ids = [randomUUID(), randomUUID()];

    it('stores a gzipped protobuf PushRequest sent with Basic auth, visible in /api/v1/flamegraph', async () => {
      const req = pushRequest('connect-shop', { host: 'h1' }, [{ body: shopA, id: ids[0] }]);
      req.series.push(pushRequest('connect-shop', { host: 'h2' }, [{ body: shopB, id: ids[1] }]).series[0]!);
      const r = await protoPush(req);
      expect(r.status, r.body.toString()).toBe(200);
      expect(fromBinary(PushResponseSchema, r.body)).toBeDefined();
      const f = await flame('connect-shop');
      expect(f.total).toBe(30 + 12 + 3 + 5 + 20);
      const names = new Set<string>();
      const walk = (n: FlameNode): void => {
        names.add(n.name);
        n.children.forEach(walk);
      };
      walk(f.root);
      for (const n of ['main', 'app.handle', 'app.render', 'db.query', 'gc.collect', 'worker.run']) expect(names).toContain(n);
      // service_name is the service, not a label; __name__ describes the push; host is a series label.
      const labels = await api<LabelsResponse>(`labels?service=connect-shop&from=${FROM}&to=${TO}`);
      const host = labels.labels.find((l) => l.name === 'host');
      expect(host?.values).toEqual(['h1', 'h2']);
      expect(labels.labels.map((l) => l.name)).not.toContain('service_name');
      expect(labels.labels.map((l) => l.name)).not.toContain('__name__');
      expect((await flame('connect-shop', '&label=host=h2')).total).toBe(25);
    });

    it('stores each profile once when the same PushRequest is sent again (the sample IDs are idempotency keys)', async () => {
      const req = pushRequest('connect-shop', { host: 'h1' }, [{ body: shopA, id: ids[0] }]);
      req.series.push(pushRequest('connect-shop', { host: 'h2' }, [{ body: shopB, id: ids[1] }]).series[0]!);
      const again = await protoPush(req);
      expect(again.status).toBe(200);
      expect((await flame('connect-shop')).total).toBe(70);
    });

    it('takes the JSON codec with a bearer token, and a Connect client compressing with gzip', async () => {
      const body = profileAt(T0, [[['main', 'json.path'], 7]]);
      const json = toJson(PushRequestSchema, pushRequest('connect-json', {}, [{ body }]));
      const r = await post('/push.v1.PusherService/Push', JSON.stringify(json), {
        'content-type': 'application/json',
        authorization: `Bearer ${WRITE}`,
      });
      expect(r.status, r.body.toString()).toBe(200);
      expect(r.json()).toEqual({});
      const pusher = createClient(PusherService, transport(true, basic('tenant-1', WRITE), true));
      await pusher.push(pushRequest('connect-json', {}, [{ body: profileAt(T0 + 60_000, [[['main', 'client.path'], 4]]) }]));
      expect((await flame('connect-json')).total).toBe(11);
    });

    it('files a heap profile pushed beside CPU under its own types, leaving the CPU flame graph alone', async () => {
      const heap = goHeapPprof([{ stack: ['main', 'cache.fill'], values: [4, 4096, 2, 2048] }], T0 + 30_000);
      const r = await protoPush(pushRequest('connect-shop', { host: 'h1' }, [{ body: gzipSync(heap) }], 'memory'));
      expect(r.status, r.body.toString()).toBe(200);
      expect((await flame('connect-shop')).total).toBe(70);
      const inuse = await flame('connect-shop', `&type=${encodeURIComponent(INUSE)}`);
      expect([inuse.total, inuse.unit]).toEqual([2048, 'bytes']);
    });

    it('refuses a wrong or missing token with unauthenticated, storing nothing', async () => {
      const req = pushRequest('connect-denied', {}, [{ body: shopA }]);
      for (const auth of [basic('tenant-1', 'wrong'), `Bearer ${READ}`, '']) {
        const r = await protoPush(req, auth);
        expect(r.status).toBe(401);
        expect(r.json().code).toBe('unauthenticated');
      }
      const e = await connectError(createClient(PusherService, transport(true, basic('x', 'nope'))).push(req));
      expect(e.code).toBe(Code.Unauthenticated);
      const services = await api<ServicesResponse>(`services?from=${FROM}&to=${TO}`);
      expect(services.services.map((s) => s.name)).not.toContain('connect-denied');
      await healthy();
    });

    it('refuses a series without service_name, and a request with one malformed profile as a whole', async () => {
      const noService = create(PushRequestSchema, { series: [{ labels: [{ name: 'host', value: 'x' }], samples: [{ rawProfile: shopA }] }] });
      const r = await protoPush(noService);
      expect(r.status).toBe(400);
      expect(r.json()).toMatchObject({ code: 'invalid_argument' });
      expect(r.json().message).toMatch(/service_name/);
      const mixed = pushRequest('connect-mixed', {}, [{ body: shopA }, { body: gzipSync(Buffer.from('not a profile at all')) }]);
      const m = await protoPush(mixed);
      expect(m.status).toBe(400);
      expect(m.json().message).toMatch(/profile 1 of 2/);
      const services = await api<ServicesResponse>(`services?from=${FROM}&to=${TO}`);
      expect(services.services.map((s) => s.name)).not.toContain('connect-mixed');
      await healthy();
    });

    it('holds bodies to the limit, compressed and inflated, and refuses garbage and unknown codecs', async () => {
      const huge = Buffer.alloc(8 * 1024 * 1024, 1);
      const big = await post('/push.v1.PusherService/Push', huge, { 'content-type': 'application/proto', authorization: basic('t', WRITE) });
      expect(big.status).toBe(429);
      expect(big.json().code).toBe('resource_exhausted');
      // 64 MiB of zeros in ~64 KiB of gzip.
      const bomb = await post('/push.v1.PusherService/Push', gzipSync(Buffer.alloc(64 * 1024 * 1024)), {
        'content-type': 'application/proto',
        'content-encoding': 'gzip',
        authorization: basic('t', WRITE),
      });
      expect(bomb.json().code).toBe('resource_exhausted');
      // A raw profile that is itself a gzip bomb: stopped in the worker, the request refused whole.
      const inner = await protoPush(pushRequest('connect-bomb', {}, [{ body: shopA }, { body: gzipSync(Buffer.alloc(64 * 1024 * 1024)) }]));
      expect(inner.json().code).toBe('resource_exhausted');
      expect(inner.json().message).toMatch(/profile 1 of 2/);
      const garbage = await post('/push.v1.PusherService/Push', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]), {
        'content-type': 'application/proto',
        authorization: basic('t', WRITE),
      });
      expect(garbage.json().code).toBe('invalid_argument');
      // Unknown groups nested a million deep: a stack overflow in a naive reader.
      const nested = Buffer.concat([Buffer.alloc(1_000_000, 0x1b), Buffer.alloc(1_000_000, 0x1c)]);
      const deep = await post('/push.v1.PusherService/Push', nested, { 'content-type': 'application/proto', authorization: basic('t', WRITE) });
      expect(deep.json().code).toBe('invalid_argument');
      const xml = await post('/push.v1.PusherService/Push', '<x/>', { 'content-type': 'text/xml', authorization: basic('t', WRITE) });
      expect(xml.status).toBe(415);
      expect(xml.json().code).toBe('unimplemented');
      await healthy();
      expect((await flame('connect-shop')).total).toBe(70);
      const services = await api<ServicesResponse>(`services?from=${FROM}&to=${TO}`);
      expect(services.services.map((s) => s.name)).not.toContain('connect-bomb');
      const metrics = await (await fetch(`${kiln.url}/metrics`, { headers: { authorization: `Bearer ${READ}` } })).text();
      expect(metrics).toMatch(/kiln_requests_refused_total\{endpoint="ingest",status="401",error="unauthenticated"\} [1-9]/);
      expect(metrics).toMatch(/kiln_requests_refused_total\{endpoint="ingest",status="429",error="resource_exhausted"\} [1-9]/);
    });
  });

  describe("Grafana's Pyroscope data source", () => {
    it('lists the profile type, the service and its labels', async () => {
      const g = grafana();
      const types = await g.profileTypes({ start: BigInt(FROM), end: BigInt(TO) });
      expect(types.profileTypes.map((t) => t.ID)).toEqual(expect.arrayContaining([CPU, INUSE, 'memory:alloc_space:bytes:space:bytes']));
      const cpu = types.profileTypes.find((t) => t.ID === CPU)!;
      expect([cpu.name, cpu.sampleType, cpu.sampleUnit, cpu.periodType, cpu.periodUnit]).toEqual(CPU.split(':'));
      // Grafana's editor starts with no service: service_name is what there is to pick.
      const first = await g.labelNames({ matchers: ['{}'], start: BigInt(FROM), end: BigInt(TO) });
      expect(first.names).toContain('service_name');
      const services = await g.labelValues({ name: 'service_name', matchers: [], start: BigInt(FROM), end: BigInt(TO) });
      expect(services.names).toEqual(expect.arrayContaining(['connect-shop', 'connect-json']));
      const names = await g.labelNames({ matchers: ['{service_name="connect-shop"}'], start: BigInt(FROM), end: BigInt(TO) });
      expect(names.names).toEqual(['host', 'service_name']);
      const hosts = await g.labelValues({ name: 'host', matchers: ['{service_name="connect-shop"}'], start: BigInt(FROM), end: BigInt(TO) });
      expect(hosts.names).toEqual(['h1', 'h2']);
      const h2 = await g.labelValues({ name: 'host', matchers: ['{service_name="connect-shop", host!="h1"}'], start: BigInt(FROM), end: BigInt(TO) });
      expect(h2.names).toEqual(['h2']);
      // Only h1 has heap profiles; only connect-shop has them at all.
      const heapHosts = await g.labelValues({ name: 'host', matchers: [`{service_name="connect-shop", __profile_type__="${INUSE}"}`], start: BigInt(FROM), end: BigInt(TO) });
      expect(heapHosts.names).toEqual(['h1']);
      const heapServices = await g.labelValues({ name: 'service_name', matchers: [`{__profile_type__="${INUSE}"}`], start: BigInt(FROM), end: BigInt(TO) });
      expect(heapServices.names).toEqual(['connect-shop']);
    });

    /** The flame graph's levels read back into (path, total, self) triples. */
    function readLevels(fg: FlameGraph): Map<string, { total: number; self: number }> {
      const out = new Map<string, { total: number; self: number }>();
      // Each node: [offset from the previous node's end in its row, total, self, name]; a child lies under its parent.
      let parents: { x: number; total: number; path: string }[] = [];
      fg.levels.forEach((level, depth) => {
        const v = level.values.map(Number);
        const row: { x: number; total: number; path: string }[] = [];
        let end = 0;
        for (let i = 0; i < v.length; i += 4) {
          const x = end + v[i]!;
          const total = v[i + 1]!;
          end = x + total;
          const parent = parents.find((p) => x >= p.x && x + total <= p.x + p.total);
          if (depth > 0) expect(parent, `node ${fg.names[v[i + 3]!]} lies under a parent`).toBeDefined();
          const path = depth === 0 ? '' : `${parent!.path};${fg.names[v[i + 3]!]}`;
          out.set(path, { total, self: v[i + 2]! });
          row.push({ x, total, path });
        }
        parents = row;
      });
      return out;
    }

    /** /api/v1/flamegraph's tree as (path, total, self) in the type's unit (its values times its scale). */
    function jsonPaths(f: FlamegraphResponse): Map<string, { total: number; self: number }> {
      const out = new Map<string, { total: number; self: number }>();
      const walk = (n: FlameNode, path: string): void => {
        out.set(path, { total: n.value * f.scale, self: n.self * f.scale });
        for (const c of n.children) walk(c, `${path};${c.name}`);
      };
      walk(f.root, '');
      return out;
    }

    it('SelectMergeStacktraces: the flame graph of /api/v1/flamegraph, node for node, filtered or not', async () => {
      const g = grafana();
      for (const [selector, extra] of [
        ['{service_name="connect-shop"}', ''],
        ['{service_name="connect-shop", host="h1"}', '&label=host=h1'],
        ['{service_name="connect-shop", host!="h1"}', '&label=host!=h1'],
      ] as const) {
        const r = await g.selectMergeStacktraces({ profileTypeID: CPU, labelSelector: selector, start: BigInt(FROM), end: BigInt(TO) });
        const fg = r.flamegraph!;
        const json = await flame('connect-shop', extra);
        expect([json.unit, json.scale]).toEqual(['nanoseconds', PERIOD_NS]);
        expect(Number(fg.total), selector).toBe(json.total * PERIOD_NS);
        expect(fg.names[0]).toBe('total');
        expect(readLevels(fg)).toEqual(jsonPaths(json));
        const selfs = [...jsonPaths(json).values()].map((n) => n.self);
        expect(Number(fg.maxSelf)).toBe(Math.max(...selfs));
      }
      // Memory in bytes, as stored; the type in the selector works as well as in profile_typeID.
      const heap = await g.selectMergeStacktraces({ profileTypeID: INUSE, labelSelector: '{service_name="connect-shop"}', start: BigInt(FROM), end: BigInt(TO) });
      const heapJson = await flame('connect-shop', `&type=${encodeURIComponent(INUSE)}`);
      expect(readLevels(heap.flamegraph!)).toEqual(jsonPaths(heapJson));
      expect(Number(heap.flamegraph!.total)).toBe(2048);
      const bySelector = await g.selectMergeStacktraces({
        profileTypeID: INUSE,
        labelSelector: `{service_name="connect-shop", __profile_type__="${INUSE}"}`,
        start: BigInt(FROM),
        end: BigInt(TO),
      });
      expect(Number(bySelector.flamegraph!.total)).toBe(2048);
    });

    it('SelectMergeStacktraces honours maxNodes as /api/v1/flamegraph does, and answers JSON too', async () => {
      const r = await grafana().selectMergeStacktraces({
        profileTypeID: CPU,
        labelSelector: '{service_name="connect-shop"}',
        start: BigInt(FROM),
        end: BigInt(TO),
        maxNodes: 4n,
      });
      const json = await flame('connect-shop', '&maxNodes=4');
      expect(readLevels(r.flamegraph!)).toEqual(jsonPaths(json));
      const viaJson = await createClient(QuerierService, transport(false, `Bearer ${READ}`)).selectMergeStacktraces({
        profileTypeID: CPU,
        labelSelector: '{service_name="connect-shop"}',
        start: BigInt(FROM),
        end: BigInt(TO),
      });
      expect(Number(viaJson.flamegraph!.total)).toBe(70 * PERIOD_NS);
    });

    it('SelectSeries: the buckets of /api/v1/timeline, and one series per value of a groupBy label', async () => {
      const g = grafana();
      const r = await g.selectSeries({ profileTypeID: CPU, labelSelector: '{service_name="connect-shop"}', start: BigInt(FROM), end: BigInt(TO), step: 60 });
      const t = await api<TimelineResponse>(`timeline?service=connect-shop&from=${FROM}&to=${TO}&step=60`);
      expect(r.series).toHaveLength(1);
      expect(r.series[0]!.points.map((p) => [Number(p.timestamp), p.value])).toEqual(t.points.map((p) => [p.t, p.value * t.scale]));
      expect([t.total, t.scale]).toEqual([70, PERIOD_NS]);
      const byHost = await g.selectSeries({
        profileTypeID: CPU,
        labelSelector: '{service_name="connect-shop"}',
        start: BigInt(FROM),
        end: BigInt(TO),
        step: 60,
        groupBy: ['host'],
      });
      const sums = Object.fromEntries(byHost.series.map((s) => [s.labels.find((l) => l.name === 'host')!.value, s.points.reduce((a, p) => a + p.value, 0)]));
      expect(sums).toEqual({ h1: 45 * PERIOD_NS, h2: 25 * PERIOD_NS });
      const h1 = await api<TimelineResponse>(`timeline?service=connect-shop&from=${FROM}&to=${TO}&step=60&label=host=h1`);
      const s1 = byHost.series.find((s) => s.labels.some((l) => l.value === 'h1'))!;
      expect(s1.points.map((p) => [Number(p.timestamp), p.value])).toEqual(h1.points.map((p) => [p.t, p.value * h1.scale]));
    });

    it('answers Connect errors: no service, a bad selector, a malformed type, a wrong token, an unserved method', async () => {
      const g = grafana();
      const range = { start: BigInt(FROM), end: BigInt(TO) };
      const none = await connectError(g.selectMergeStacktraces({ profileTypeID: CPU, labelSelector: '{host="h1"}', ...range }));
      expect(none.code).toBe(Code.InvalidArgument);
      expect(none.rawMessage).toMatch(/names no service/);
      const noneSeries = await connectError(g.selectSeries({ profileTypeID: CPU, labelSelector: '{}', step: 15, ...range }));
      expect(noneSeries.code).toBe(Code.InvalidArgument);
      const bad = await connectError(g.selectMergeStacktraces({ profileTypeID: CPU, labelSelector: '{service_name="connect-shop", host=~"h.*"}', ...range }));
      expect(bad.code).toBe(Code.InvalidArgument);
      const unclosed = await connectError(g.labelNames({ matchers: ['{service_name="connect-shop'], ...range }));
      expect(unclosed.code).toBe(Code.InvalidArgument);
      const type = await connectError(g.selectMergeStacktraces({ profileTypeID: 'process_cpu', labelSelector: '{service_name="connect-shop"}', ...range }));
      expect(type.code).toBe(Code.InvalidArgument);
      const clash = await connectError(g.selectSeries({ profileTypeID: CPU, labelSelector: `{service_name="connect-shop", __profile_type__="${INUSE}"}`, step: 15, ...range }));
      expect(clash.code).toBe(Code.InvalidArgument);
      // A type the service does not have is no error: there is no data of it.
      const none2 = await g.selectMergeStacktraces({ profileTypeID: 'block:delay:nanoseconds:contentions:count', labelSelector: '{service_name="connect-shop"}', ...range });
      expect(Number(none2.flamegraph!.total)).toBe(0);
      const backwards = await connectError(g.selectSeries({ profileTypeID: CPU, labelSelector: '{service_name="connect-shop"}', start: BigInt(TO), end: BigInt(FROM), step: 15 }));
      expect(backwards.code).toBe(Code.InvalidArgument);
      const denied = await connectError(createClient(QuerierService, transport(true, basic('grafana', 'wrong'))).profileTypes(range));
      expect(denied.code).toBe(Code.Unauthenticated);
      const average = await connectError(
        g.selectSeries({ profileTypeID: CPU, labelSelector: '{service_name="connect-shop"}', step: 15, aggregation: TimeSeriesAggregationType.AVERAGE, ...range }),
      );
      expect(average.code).toBe(Code.Unimplemented);
      const diff = await connectError(g.diff({}));
      expect(diff.code).toBe(Code.Unimplemented);
      await healthy();
    });
  });
});
