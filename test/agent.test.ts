/**
 * `kiln serve` + `kiln agent` + real Python services, as a host of a fleet
 * runs them: services named from KILN_SERVICE, processes started after the
 * agent and on another CPython in a chroot, an ingest outage and an agent
 * killed with SIGKILL, with nothing lost and nothing sent twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServicesResponse, TopResponse } from '../ingest/api.js';
import { REPO, startWorkload, tempDir, type Workload } from './harness.js';
import { hostPython, pythonFor } from './pythons.js';

const KILN = `${REPO}/bin/kiln`;

interface Daemon {
  proc: ChildProcess;
  log: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function daemon(args: string[], ready: RegExp): Promise<Daemon & { match: RegExpExecArray }> {
  const proc = spawn(process.execPath, [KILN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln ${args.join(' ')} did not start:\n${out}`)), 90_000);
    const poll = setInterval(() => {
      const m = ready.exec(out);
      if (!m) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve({
        proc,
        match: m,
        log: () => out,
        async stop(signal: NodeJS.Signals = 'SIGTERM') {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          await exited;
        },
      });
    }, 100);
    void exited.then(() => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`kiln ${args[0]} exited:\n${out}`));
    });
  });
}

async function startServe(data: string, port = 0) {
  const d = await daemon(['serve', '--port', String(port), '--data', data], /serving on :(\d+)/);
  return { ...d, url: `http://127.0.0.1:${d.match[1]}` };
}

function startAgent(url: string, queue: string) {
  return daemon(['agent', '--server', url, '--upload-interval', '5s', '--queue-dir', queue, '--metrics-port', '0'], /metrics on :(\d+)/);
}

async function get<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function metric(agentMetricsPort: string, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${agentMetricsPort}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function profilesOf(url: string, service: string): Promise<number> {
  const s = await get<ServicesResponse>(`${url}/api/v1/services?from=now-1h`);
  return s.services.find((x) => x.name === service)?.profiles ?? 0;
}

describe('kiln agent with kiln serve', () => {
  const tmp = tempDir();
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    tmp.cleanup();
  });

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
      (await get<TopResponse>(`${serve.url}/api/v1/top?service=${service}&from=now-5m&sort=self&limit=5`)).functions.map((f) => f.name);
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
    let serve = await startServe(data);
    const port = new URL(serve.url).port;
    const w = await startWorkload(hostPython(), 'shares.py', ['150'], { KILN_SERVICE: 'svc-outage' });
    stops.push(() => w.stop());
    let agent = await startAgent(serve.url, queue);
    const metricsPort = () => agent.match[1]!;
    await sleep(12_000);

    console.log('outage starts', new Date().toISOString());
    await serve.stop();
    console.log('ingest stopped', new Date().toISOString());
    await sleep(30_000);
    const queuedDuringOutage = await metric(metricsPort(), 'kiln_agent_queue_profiles');
    expect(queuedDuringOutage).toBeGreaterThanOrEqual(5); // ~6 periods of 5 s
    expect(await metric(metricsPort(), 'kiln_agent_upload_failures_total{reason="unreachable"}')).toBeGreaterThan(0);

    serve = await startServe(data, Number(port));
    // the backoff is at most 30 s; give the queue time to drain
    for (let i = 0; i < 60 && (await metric(metricsPort(), 'kiln_agent_queue_profiles')) > 0; i++) await sleep(1000);
    expect(await metric(metricsPort(), 'kiln_agent_queue_profiles')).toBe(0);
    const queued = await metric(metricsPort(), 'kiln_agent_profiles_total');
    const accepted = await metric(metricsPort(), 'kiln_agent_uploads_total');
    expect(accepted).toBe(queued);
    expect(await profilesOf(serve.url, 'svc-outage')).toBe(accepted);

    // SIGKILL with profiles queued on disk: a new agent sends them
    await serve.stop();
    await sleep(12_000);
    const queuedBeforeKill = await metric(metricsPort(), 'kiln_agent_queue_profiles');
    expect(queuedBeforeKill).toBeGreaterThanOrEqual(2);
    await agent.stop('SIGKILL');
    serve = await startServe(data, Number(port));
    stops.push(() => serve.stop());
    agent = await startAgent(serve.url, queue);
    stops.push(() => agent.stop());
    expect(agent.log()).toContain(`queue holds ${queuedBeforeKill} profile(s) from before`);
    for (let i = 0; i < 30 && (await profilesOf(serve.url, 'svc-outage')) < accepted + queuedBeforeKill; i++) await sleep(1000);
    expect(await profilesOf(serve.url, 'svc-outage')).toBeGreaterThanOrEqual(accepted + queuedBeforeKill);
  }, 300_000);
});
