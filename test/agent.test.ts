/**
 * `kiln serve` + `kiln agent` + real Python services, as a host of a fleet
 * runs them: services named from KILN_SERVICE, processes started after the
 * agent and on another CPython in a chroot, an ingest outage and an agent
 * killed with SIGKILL, with nothing lost and nothing sent twice.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { FlamegraphResponse, ServicesResponse, TimelineResponse, TopResponse } from '../ingest/api.js';
import { bodyBytes, ownService, startDaemon, startServe, startWorkload, tempDir, type Workload } from '../kit/harness.js';
import { hostPython, pythonFor } from '../kit/pythons.js';
import { getJson as get, sleep, until } from '../kit/agent-kit.js';
import { NATIVE_CONTENT_TYPE, decodeNative } from '../profile/native.js';
import { encodePprof } from '../profile/pprof.js';

function startAgent(url: string, queue: string) {
  // a generous CPU budget: this test is about the pipeline, and CI machines are shared
  return startDaemon(['agent', '--server', url, '--upload-interval', '5s', '--queue-dir', queue, '--metrics-port', '0', '--cpu-budget', '50'], /metrics on :(\d+)/);
}

/**
 * Between the agent and ingest A: forwards every push to A, and when A takes
 * a native one, sends the same profile as pprof to ingest B. The pprof is
 * decoded from the native bodies with the definitions every earlier body
 * carried, as a receiver that kept them would. In "older" mode it answers a
 * native push as a Kiln without the native form did (the body read as pprof).
 * `seen` counts the pushes of `service` (the agent sends every Python process
 * on the machine).
 */
function startProxy(a: () => string, b: string, service: string) {
  const definitions = new Map<string, string>();
  /** Pushes A took: native ones, native ones counting stacks defined only in earlier bodies, pprof ones. */
  const seen = { native: 0, nativeLeaningOnEarlier: 0, pprof: 0 };
  let older = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const native = String(req.headers['content-type']).startsWith(NATIVE_CONTENT_TYPE);
      const mine = new URL(req.url!, 'http://x').searchParams.get('service') === service;
      if (native && older) {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"malformed pprof","detail":"pprof: wire type 7 at offset 0"}');
        return;
      }
      const headers: Record<string, string> = { 'content-type': String(req.headers['content-type']), 'idempotency-key': String(req.headers['idempotency-key']) };
      if (req.headers['content-encoding']) headers['content-encoding'] = String(req.headers['content-encoding']);
      let answer: Response;
      try {
        answer = await fetch(`${a()}${req.url}`, { method: 'POST', body: raw, headers });
      } catch {
        res.writeHead(502).end('{"error":"ingest unreachable"}');
        return;
      }
      const text = await answer.text();
      if (answer.status === 200) {
        let pprof: Uint8Array = raw;
        // counted once B holds the push too, so a test that waits on `seen` compares A and B on the same profiles
        let counted: 'native' | 'pprof' | undefined;
        let leaning = false;
        if (native) {
          const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString();
          const lines = body.split('\n');
          const defining = lines.filter((l) => /^[FLS]\t/.test(l));
          for (const l of defining) definitions.set(l.slice(0, l.indexOf('\t', 2)), l);
          const definedHere = new Set(defining.filter((l) => l[0] === 'S').map((l) => l.split('\t')[1]));
          if (mine) counted = 'native';
          leaning = mine && lines.some((l) => l[0] === 'C' && !definedHere.has(l.split('\t')[1]));
          pprof = await encodePprof(decodeNative([...lines.slice(0, 2), ...definitions.values(), ...lines.slice(2)].join('\n')));
        } else if (mine) counted = 'pprof';
        const toB = await fetch(`${b}${req.url}`, { method: 'POST', body: bodyBytes(pprof), headers: { 'idempotency-key': headers['idempotency-key']! } });
        if (toB.status !== 200) throw new Error(`B refused a profile: ${toB.status} ${await toB.text()}`);
        if (counted) seen[counted]++;
        if (leaning) seen.nativeLeaningOnEarlier++;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(text);
    });
  });
  return new Promise<{ url: string; seen: typeof seen; older(on: boolean): void; stop(): Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        seen,
        older: (on) => (older = on),
        stop: () => new Promise<void>((r) => server.close(() => r())),
      }),
    ),
  );
}

describe('kiln agent with kiln serve', () => {
  const tmp = tempDir();
  let stops: (() => Promise<void>)[] = [];
  // each test stops what it started, so the next one starts on a quiet machine
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    stops = [];
  };
  afterEach(stopAll);
  afterAll(() => tmp.cleanup());

  it('profiles three services, one started later and one on another CPython in a chroot', async () => {
    const serve = await startServe(`${tmp.dir}/data1`);
    stops.push(() => serve.stop());
    const early = await startWorkload(hostPython(), 'shares.py', ['60'], { KILN_SERVICE: ownService('svc-shares') });
    stops.push(() => early.stop());
    const agent = await startAgent(serve.url, `${tmp.dir}/queue1`);
    stops.push(() => agent.stop());
    const services = async () => (await get<ServicesResponse>(`${serve.url}/api/v1/services?from=now-5m`)).services;
    // "started later": once the agent has shipped the first service
    await until('the first upload of svc-shares', 60_000, async () => (await services()).some((s) => s.name === ownService('svc-shares')));
    const late = await startWorkload(hostPython(), 'threads.py', ['60'], { KILN_SERVICE: ownService('svc-threads') });
    stops.push(() => late.stop());
    const py313 = pythonFor('3.13');
    if (!py313) throw new Error('Python 3.13 root missing: run bash test/setup-pythons.sh');
    const chrooted: Workload = await startWorkload(py313, 'recursion.py', ['60', '50'], { KILN_SERVICE: ownService('svc-recursion') });
    stops.push(() => chrooted.stop());
    // three uploads (~15 s) of each: hundreds of samples even where the machine is busy
    const three = [ownService('svc-shares'), ownService('svc-threads'), ownService('svc-recursion')];
    await until('three profiles of each service', 120_000, async () => {
      const have = await services();
      return three.every((name) => (have.find((s) => s.name === name)?.profiles ?? 0) >= 3);
    });
    const top = async (service: string) =>
      (await get<TopResponse>(`${serve.url}/api/v1/top?service=${service}&from=now-5m&sort=self&limit=10`)).functions.map((f) => f.name);
    expect((await top(ownService('svc-shares')))[0]).toBe('a');
    expect(await top(ownService('svc-threads'))).toEqual(expect.arrayContaining(['spin_alpha', 'spin_beta', 'spin_gamma', 'spin_delta']));
    expect((await top(ownService('svc-recursion')))[0]).toBe('recurse');
    // labels the agent adds
    const labels = await get<{ labels: { name: string; values: string[] }[] }>(`${serve.url}/api/v1/labels?service=${ownService('svc-recursion')}&from=now-5m`);
    const byName = new Map(labels.labels.map((l) => [l.name, l.values]));
    // the root's own version (a fresh machine's debootstrap may bring a later 3.13 point release)
    const [cmd, ...pre] = py313.command;
    const version = execFileSync(cmd!, [...pre, '-c', 'import platform; print(platform.python_version())'], { encoding: 'utf8' }).trim();
    expect(version).toMatch(/^3\.13\.\d+$/);
    expect(byName.get('python_version')).toEqual([version]);
    expect(byName.get('pid')).toEqual([String(chrooted.pid)]);
    expect(byName.get('host')?.length).toBe(1);
  }, 300_000);

  it('stores the same flame graph from native uploads as from pprof, and keeps every profile when ingest lost its store or takes pprof only', async () => {
    const service = ownService('svc-native');
    const dataA = `${tmp.dir}/native-a`;
    let a = await startServe(dataA);
    stops.push(() => a.stop());
    const portA = Number(new URL(a.url).port);
    const b = await startServe(`${tmp.dir}/native-b`);
    stops.push(() => b.stop());
    const proxy = await startProxy(() => a.url, b.url, service);
    stops.push(() => proxy.stop());
    const w = await startWorkload(hostPython(), 'shares.py', ['120'], { KILN_SERVICE: service });
    stops.push(() => w.stop());
    const agent = await startAgent(proxy.url, `${tmp.dir}/queue-native`);
    stops.push(() => agent.stop());

    const profilesIn = async (url: string) => (await get<ServicesResponse>(`${url}/api/v1/services?from=now-1h`)).services.find((x) => x.name === service);
    /**
     * A's flame graph over every profile it holds, and B's over the same time.
     * The agent keeps pushing (every 5 s, and A stores a push before the proxy
     * passes it to B), so a push can be in A and not yet in B: they are
     * compared again until equal, and a real difference still fails after 30 s.
     */
    const sameGraph = async () => {
      for (let attempt = 0; ; attempt++) {
        const info = (await profilesIn(a.url))!;
        const range = `service=${service}&from=${info.firstSeen}&to=${info.lastSeen + 1000}`;
        const [fa, fb] = await Promise.all([a.url, b.url].map((u) => get<FlamegraphResponse>(`${u}/api/v1/flamegraph?${range}`)));
        if (attempt < 30 && JSON.stringify(fa!.root) !== JSON.stringify(fb!.root)) {
          await sleep(1000);
          continue;
        }
        expect(fa!.total).toBeGreaterThan(0);
        expect(fa!.root).toEqual(fb!.root);
        expect(JSON.stringify(fa!.root)).not.toContain('[unknown');
        return info.profiles;
      }
    };

    // 1. Native uploads: the first of the day with definitions, then ids and counts, with definitions only of stacks new since.
    await until(`two native pushes counting stacks defined earlier (${JSON.stringify(proxy.seen)} at the start)`, 60_000, () => proxy.seen.nativeLeaningOnEarlier >= 2);
    expect(await sameGraph()).toBeGreaterThanOrEqual(3);
    expect(proxy.seen.pprof).toBe(0);
    const top = await get<TopResponse>(`${a.url}/api/v1/top?service=${service}&from=now-1h&sort=self&limit=3`);
    expect(top.functions[0]!.name).toBe('a');

    // 2. A loses its store: the agent's next pushes count stacks A no longer has (409), and go again with them.
    await a.stop();
    rmSync(dataA, { recursive: true, force: true });
    a = await startServe(dataA, portA);
    await until('two profiles stored after the store was lost', 60_000, async () => ((await profilesIn(a.url))?.profiles ?? 0) >= 2);
    const metrics = await (await fetch(`http://127.0.0.1:${agent.match[1]}/metrics`)).text();
    expect(Number(/^kiln_agent_definitions_resent_total (\d+)/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
    await sameGraph();

    // 3. An older ingest that reads every body as pprof: the agent goes over to pprof.
    const before = (await profilesIn(a.url))!.profiles;
    proxy.older(true);
    await until('two pprof pushes', 60_000, () => proxy.seen.pprof >= 2);
    expect(agent.log()).toMatch(/sending pprof from now on/);
    expect((await profilesIn(a.url))!.profiles).toBeGreaterThan(before);
    await sameGraph();
  }, 240_000);

  it('loses nothing while ingest is down for 30 s, sends nothing twice, and sends its queue after SIGKILL', async () => {
    const data = `${tmp.dir}/data2`;
    const queue = `${tmp.dir}/queue2`;
    const service = ownService('svc-outage');
    // the agent profiles every Python process here; count only this service's profiles, on disk and in ingest
    const queued = () =>
      readdirSync(queue)
        .filter((f) => f.endsWith('.pb.gz'))
        .filter((f) => {
          let raw: Buffer;
          try {
            raw = readFileSync(join(queue, f));
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false; // sent and removed since the listing
            throw e;
          }
          return (JSON.parse(raw.subarray(4, 4 + raw.readUInt32LE(0)).toString()) as { service: string }).service === service;
        }).length;
    /**
     * The stored profiles, each as its second and samples. A profile is stamped
     * with its window's start to the second, so a 1-s timeline shows each one
     * apart; 5-s buckets would not: the windows' phase drifts (timer lateness,
     * drain time) and one can cross a bucket edge, leaving a bucket empty.
     */
    const stored = async () => {
      const info = (await get<ServicesResponse>(`${serve.url}/api/v1/services?from=now-1h`)).services.find((x) => x.name === service)!;
      const tl = await get<TimelineResponse>(`${serve.url}/api/v1/timeline?service=${service}&from=${info.firstSeen}&to=${info.lastSeen + 1000}&step=1`);
      return { info, profiles: tl.points.filter((p) => p.value > 0) };
    };
    /**
     * No profile stored twice: none holds more samples than its window at 99 Hz
     * (a single busy thread) with 30 % to spare; a window runs to the next
     * profile's start when that is one period on, else one period is assumed
     * (the last before an outage or a restart). Twice a window is ~2x that.
     */
    const expectNoneDoubled = (profiles: { t: number; value: number }[]) =>
      profiles.forEach((p, i) => {
        const gap = ((profiles[i + 1]?.t ?? Infinity) - p.t) / 1000;
        const windowS = gap < 8 ? gap : 5;
        expect(p.value, `profile at ${new Date(p.t).toISOString()}`).toBeLessThan(99 * (windowS + 1) * 1.3);
      });

    let serve = await startServe(data);
    stops.push(() => serve.stop());
    const port = Number(new URL(serve.url).port);
    const w = await startWorkload(hostPython(), 'shares.py', ['150'], { KILN_SERVICE: service });
    stops.push(() => w.stop());
    let agent = await startAgent(serve.url, queue);
    stops.push(() => agent.stop());
    let storedBefore = 0;
    await until(
      'two profiles before the outage',
      60_000,
      async () => (storedBefore = (await get<ServicesResponse>(`${serve.url}/api/v1/services?from=now-1h`)).services.find((x) => x.name === service)?.profiles ?? 0) >= 2,
    );

    await serve.stop();
    await sleep(30_000);
    const queuedInOutage = queued();
    expect(queuedInOutage).toBeGreaterThanOrEqual(5); // ~6 periods of 5 s
    serve = await startServe(data, port);
    // the backoff is at most 30 s; give the queue time to drain
    await until('the queue to drain after the outage', 60_000, () => queued() === 0);

    // one profile per 5-s window, every window from the first to the last: none missing, none twice
    let { info, profiles } = await stored();
    // every one stored before the outage and every one queued in it (how many more depends on when the backoff let the queue go)
    expect(profiles.length).toBeGreaterThanOrEqual(storedBefore + queuedInOutage);
    expect(info.profiles, 'profiles sharing a second').toBe(profiles.length);
    const periods = profiles.slice(1).map((p, i) => Math.round((p.t - profiles[i]!.t) / 5000));
    expect(periods.filter((n) => n !== 1), `periods between profiles: ${periods.join(' ')}`).toEqual([]);
    expectNoneDoubled(profiles);
    const before = info.profiles;

    // SIGKILL with profiles on disk: a new agent sends them
    await serve.stop();
    await until('two profiles queued while ingest is down', 60_000, () => queued() >= 2);
    const onDisk = queued();
    await agent.stop('SIGKILL');
    serve = await startServe(data, port);
    agent = await startAgent(serve.url, queue);
    expect(agent.log()).toMatch(/queue holds \d+ profile\(s\) from before/);
    await until('the queue from before the SIGKILL to be sent', 60_000, () => queued() === 0);
    ({ info, profiles } = await stored());
    expect(info.profiles).toBeGreaterThanOrEqual(before + onDisk);
    expect(info.profiles, 'profiles sharing a second').toBe(profiles.length);
    expectNoneDoubled(profiles);
  }, 300_000);
});
