/**
 * `kiln serve` + `kiln agent` + real Python services, as a host of a fleet
 * runs them: services named from KILN_SERVICE, processes started after the
 * agent and on another CPython in a chroot, an ingest outage and an agent
 * killed with SIGKILL, with nothing lost and nothing sent twice.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ServicesResponse, TimelineResponse, TopResponse } from '../ingest/api.js';
import { startDaemon, startServe, startWorkload, tempDir, type Workload } from '../kit/harness.js';
import { hostPython, pythonFor } from '../kit/pythons.js';

function startAgent(url: string, queue: string) {
  // a generous CPU budget: this test is about the pipeline, and CI machines are shared
  return startDaemon(['agent', '--server', url, '--upload-interval', '5s', '--queue-dir', queue, '--metrics-port', '0', '--cpu-budget', '50'], /metrics on :(\d+)/);
}

async function get<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    const early = await startWorkload(hostPython(), 'shares.py', ['60'], { KILN_SERVICE: 'svc-shares' });
    stops.push(() => early.stop());
    const agent = await startAgent(serve.url, `${tmp.dir}/queue1`);
    stops.push(() => agent.stop());
    await sleep(3000);
    const late = await startWorkload(hostPython(), 'threads.py', ['60'], { KILN_SERVICE: 'svc-threads' });
    stops.push(() => late.stop());
    const py313 = pythonFor('3.13');
    if (!py313) throw new Error('Python 3.13 root missing: run bash test/setup-pythons.sh');
    const chrooted: Workload = await startWorkload(py313, 'recursion.py', ['60', '50'], { KILN_SERVICE: 'svc-recursion' });
    stops.push(() => chrooted.stop());
    await sleep(30_000);

    const services = await get<ServicesResponse>(`${serve.url}/api/v1/services?from=now-5m`);
    const names = services.services.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['svc-shares', 'svc-threads', 'svc-recursion']));
    const top = async (service: string) =>
      (await get<TopResponse>(`${serve.url}/api/v1/top?service=${service}&from=now-5m&sort=self&limit=10`)).functions.map((f) => f.name);
    expect((await top('svc-shares'))[0]).toBe('a');
    expect(await top('svc-threads')).toEqual(expect.arrayContaining(['spin_alpha', 'spin_beta', 'spin_gamma', 'spin_delta']));
    expect((await top('svc-recursion'))[0]).toBe('recurse');
    // labels the agent adds
    const labels = await get<{ labels: { name: string; values: string[] }[] }>(`${serve.url}/api/v1/labels?service=svc-recursion&from=now-5m`);
    const byName = new Map(labels.labels.map((l) => [l.name, l.values]));
    expect(byName.get('python_version')).toEqual(['3.13.5']);
    expect(byName.get('pid')).toEqual([String(chrooted.pid)]);
    expect(byName.get('host')?.length).toBe(1);
  }, 180_000);

  it('loses nothing while ingest is down for 30 s, sends nothing twice, and sends its queue after SIGKILL', async () => {
    const data = `${tmp.dir}/data2`;
    const queue = `${tmp.dir}/queue2`;
    const service = 'svc-outage';
    // the agent profiles every Python process here; count only this service's profiles, on disk and in ingest
    const queued = () =>
      readdirSync(queue)
        .filter((f) => f.endsWith('.pb.gz'))
        .filter((f) => {
          const raw = readFileSync(join(queue, f));
          return (JSON.parse(raw.subarray(4, 4 + raw.readUInt32LE(0)).toString()) as { service: string }).service === service;
        }).length;
    const stored = async () => {
      const info = (await get<ServicesResponse>(`${serve.url}/api/v1/services?from=now-1h`)).services.find((x) => x.name === service)!;
      const tl = await get<TimelineResponse>(`${serve.url}/api/v1/timeline?service=${service}&from=${info.firstSeen}&to=${info.lastSeen + 1}&step=5`);
      return { info, points: tl.points };
    };

    let serve = await startServe(data);
    stops.push(() => serve.stop());
    const port = Number(new URL(serve.url).port);
    const w = await startWorkload(hostPython(), 'shares.py', ['150'], { KILN_SERVICE: service });
    stops.push(() => w.stop());
    let agent = await startAgent(serve.url, queue);
    stops.push(() => agent.stop());
    await sleep(12_000);

    await serve.stop();
    await sleep(30_000);
    expect(queued()).toBeGreaterThanOrEqual(5); // ~6 periods of 5 s
    serve = await startServe(data, port);
    // the backoff is at most 30 s; give the queue time to drain
    for (let i = 0; i < 60 && queued() > 0; i++) await sleep(1000);
    expect(queued()).toBe(0);

    // one profile per 5-s window, every window from the first to the last: none missing, none twice
    let { info, points } = await stored();
    const windows = Math.round((info.lastSeen - info.firstSeen) / 5000) + 1;
    expect(windows).toBeGreaterThanOrEqual(9);
    expect(info.profiles).toBe(windows);
    expect(points.filter((p) => p.value === 0)).toEqual([]);
    expect(Math.max(...points.map((p) => p.value))).toBeLessThan(5 * 99 * 1.3);
    const before = info.profiles;

    // SIGKILL with profiles on disk: a new agent sends them
    await serve.stop();
    await sleep(12_000);
    const onDisk = queued();
    expect(onDisk).toBeGreaterThanOrEqual(2);
    await agent.stop('SIGKILL');
    serve = await startServe(data, port);
    agent = await startAgent(serve.url, queue);
    expect(agent.log()).toMatch(/queue holds \d+ profile\(s\) from before/);
    for (let i = 0; i < 30 && queued() > 0; i++) await sleep(1000);
    ({ info, points } = await stored());
    expect(info.profiles).toBeGreaterThanOrEqual(before + onDisk);
    expect(Math.max(...points.map((p) => p.value))).toBeLessThan(5 * 99 * 1.3);
  }, 300_000);
});
