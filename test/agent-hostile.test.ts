/**
 * The real `kiln agent` on a host with hostile processes beside a normal
 * one, its queue on a small tmpfs of its own (mounted here, as root,
 * unmounted after) holding files it did not write: a process whose code
 * objects name a FIFO and paths climbing out of its root, one whose line
 * table is 1 MiB of 0xF7, one that maps a fake libpython with a 1 GiB symbol
 * table, one that floods the kernel with new code objects; then the queue's
 * disk fills up and frees again. The normal process is profiled all along,
 * the flood is dropped once with its reason, nothing outside the process's
 * root or outside the queue is read or written, every profile is sent or
 * counted as dropped, and the agent never stops.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServicesResponse, TopResponse } from '../ingest/api.js';
import { writeCraftedElf } from '../kit/crafted-elf.js';
import { ownService, startDaemon, startServe, startWorkload, tempDir, type Daemon } from '../kit/harness.js';
import { hostPython, pythonFor } from '../kit/pythons.js';
import { getJson as get, mountQueueDisk, PRECIOUS, sleep, until, type QueueDisk } from '../kit/agent-kit.js';

/** Prometheus text -> { 'name{labels}': value }. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Fills the filesystem at `dir` to its last byte (a file that grows until the disk says no). */
function fill(path: string): void {
  const fd = openSync(path, 'a');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    // and the last bytes a whole page would not fit in
    for (let n = 2048; n >= 1; n >>= 1) {
      try {
        for (;;) writeSync(fd, chunk, 0, n);
      } catch {
        /* smaller */
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe('kiln agent beside hostile processes, its queue on a small disk', () => {
  const tmp = tempDir();
  let disk: QueueDisk | undefined;
  const canaryDir = `/tmp/kiln-canary-${randomBytes(4).toString('hex')}`;
  const py39 = pythonFor('3.9');
  let stops: (() => Promise<void>)[] = [];

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    disk?.unmount();
    rmSync(canaryDir, { recursive: true, force: true });
    if (py39) rmSync(join(py39.root, canaryDir), { recursive: true, force: true });
    tmp.cleanup();
  });

  it('profiles the normal process throughout, drops the flood once, reads and writes nothing it should not, and counts every profile', async () => {
    if (!py39) throw new Error('Python 3.9 (a chroot) is required and missing: run scripts/setup.sh --test');
    disk = mountQueueDisk(tmp.dir, '2m', 'kiln-agent-queue-test');
    const { mnt, queue, outside, precious } = disk;
    // what the agent did not write, in its queue
    writeFileSync(join(queue, 'junk.pb.gz'), 'junk');
    symlinkSync(join(outside, 'gone'), join(queue, '000000000007-1700000000000-aaaaaaaaaaaa.pb.gz'));
    symlinkSync(precious, join(queue, '000000000008-1700000000000-bbbbbbbbbbbb.pb.gz'));
    symlinkSync(precious, join(queue, '000000000009-1700000000000-cccccccccccc.pb.gz.tmp'));

    const serve = await startServe(join(tmp.dir, 'data'));
    stops.push(() => serve.stop());
    const normal = await startWorkload(hostPython(), 'shares.py', ['300'], { KILN_SERVICE: ownService('svc-normal') });
    stops.push(() => normal.stop());
    mkdirSync(canaryDir, { recursive: true });
    mkdirSync(join(py39.root, canaryDir), { recursive: true });
    const names = await startWorkload(py39, 'hostile.py', ['filenames', `${canaryDir}/fifo`, `${canaryDir}/leak.py`], { KILN_SERVICE: ownService('svc-filenames') });
    stops.push(() => names.stop());
    // outside its root, what must never be read; inside, what its names mean there
    const source = (cls: string) => {
      const out = [`class ${cls}:`];
      for (const fn of ['in_escape_abs', 'in_escape_rel']) {
        while (out.length < (names.info[fn] as number) - 1) out.push('');
        out.push(`    def ${fn}(ms):`, '        pass');
      }
      return out.join('\n') + '\n';
    };
    writeFileSync(join(canaryDir, 'leak.py'), source('Leaked'));
    writeFileSync(join(py39.root, canaryDir, 'leak.py'), source('Inside'));
    const table = await startWorkload(hostPython(), 'hostile.py', ['linetable'], { KILN_SERVICE: ownService('svc-linetable') });
    stops.push(() => table.stop());
    const fakePath = join(tmp.dir, 'libpython3.11.so');
    writeCraftedElf(fakePath, { symtabBytes: 1 << 30 });
    const fake = await startWorkload(hostPython(), 'hostile.py', ['fake-elf', fakePath], { KILN_SERVICE: ownService('svc-fake-elf') });
    stops.push(() => fake.stop());
    const flood = await startWorkload(hostPython(), 'hostile.py', ['flood'], { KILN_SERVICE: ownService('svc-flood') });
    stops.push(() => flood.stop());

    const agent: Daemon = await startDaemon(
      ['agent', '--server', serve.url, '--upload-interval', '2s', '--queue-dir', queue, '--metrics-port', '0', '--cpu-budget', '50'],
      /metrics on :(\d+)/,
    );
    stops.push(() => agent.stop());
    const metricsUrl = `http://127.0.0.1:${agent.match[1]}/metrics`;
    const metrics = async () => parseMetrics(await (await fetch(metricsUrl)).text());
    const top = async (service: string) =>
      (await get<TopResponse>(`${serve.url}/api/v1/top?service=${service}&from=now-5m&sort=self&limit=50`)).functions.map((f) => f.name);

    // it started, left what is not its own alone, and cleaned the partial write planted where it writes
    expect(agent.log()).toMatch(/holds 3 entries that are not the agent's/);
    expect((await metrics()).get('kiln_agent_queue_foreign_files')).toBe(3);
    expect(readdirSync(queue).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // the flood is dropped, once, with its reason; the others are profiled
    const floodLine = new RegExp(`pid ${flood.pid} \\(.*\\) is no longer profiled: \\d+ first sights of code objects in 10 s, over its budget of 20000`);
    await until('the flood dropped', 30_000, () => floodLine.test(agent.log()));
    await until('every service profiled', 60_000, async () => {
      const services = (await get<ServicesResponse>(`${serve.url}/api/v1/services?from=now-5m`)).services.map((s) => s.name);
      return [ownService('svc-normal'), ownService('svc-filenames'), ownService('svc-linetable'), ownService('svc-fake-elf')].every((s) => services.includes(s));
    });
    // counted in /metrics at the end of the period
    await until('the flood counted', 10_000, async () => ((await metrics()).get('kiln_agent_processes_dropped_total{reason="budget_first_sights"}') ?? 0) >= 1);
    const floodDropped = Date.now();
    await sleep(6000);
    expect(agent.log().split('\n').filter((l) => floodLine.test(l))).toHaveLength(1);
    expect((await top(ownService('svc-normal')))[0]).toBe('a');
    expect(await top(ownService('svc-linetable'))).toContain('spin');
    expect(await top(ownService('svc-fake-elf'))).toContain('spin');
    // named as the files inside its root say; the canary outside was never read
    const hostileNames = await top(ownService('svc-filenames'));
    expect(hostileNames).toEqual(expect.arrayContaining(['in_fifo', 'Inside.in_escape_abs', 'Inside.in_escape_rel', 'in_shadow']));
    expect(hostileNames.filter((n) => n.includes('Leaked'))).toEqual([]);
    // nothing of the flood kept after it was dropped
    const floodAfter = await get<TopResponse>(`${serve.url}/api/v1/top?service=${ownService('svc-flood')}&from=${floodDropped + 2000}&to=now&limit=5`).catch(() => undefined);
    expect(floodAfter?.total ?? 0).toBe(0);

    // the disk fills up: profiles are dropped and counted, the agent goes on
    const filler = join(mnt, 'filler');
    const fullSince = Date.now();
    const keepFull = setInterval(() => fill(filler), 200);
    try {
      fill(filler);
      await until('a full disk said', 20_000, () => /cannot write to the queue .* \(no space left\)/.test(agent.log()));
      await until('drops counted', 20_000, async () => ((await metrics()).get('kiln_agent_profiles_dropped_total{reason="no_space"}') ?? 0) >= 3);
      expect(readdirSync(queue).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      clearInterval(keepFull);
      rmSync(filler);
    }
    const freed = Date.now();
    await until('writing again', 20_000, () => /writing to the queue again/.test(agent.log()));
    await until('the normal process profiled again', 30_000, async () => {
      const after = await get<TopResponse>(`${serve.url}/api/v1/top?service=${ownService('svc-normal')}&from=${freed}&to=now&limit=5`);
      return after.total > 0;
    });
    expect(fullSince).toBeLessThan(freed);

    // every profile made is sent, dropped (counted by reason) or still queued
    await until('every profile accounted for', 30_000, async () => {
      const m = await metrics();
      let dropped = 0;
      for (const [k, v] of m) if (k.startsWith('kiln_agent_profiles_dropped_total{')) dropped += v;
      const made = m.get('kiln_agent_profiles_total') ?? 0;
      return made > 0 && made === (m.get('kiln_agent_uploads_total') ?? 0) + dropped + (m.get('kiln_agent_queue_profiles') ?? 0);
    });

    // nothing outside the queue written, what was not the agent's left as it was
    expect(readFileSync(precious, 'utf8')).toBe(PRECIOUS);
    expect(readdirSync(outside)).toEqual(['precious']);
    expect(readdirSync(queue).filter((f) => !/^\d{12}-\d+-[0-9a-f]{12}\.pb\.gz$/.test(f))).toEqual(['junk.pb.gz']);
    const m = await metrics();
    console.log(
      [...agent.log().split('\n').filter((l) => /no longer profiled|queue|skipping/.test(l)), ...[...m].filter(([k]) => /dropped|profiles_total|uploads_total|foreign/.test(k)).map(([k, v]) => `${k} ${v}`)].join('\n'),
    );
    // and it stops as asked, having never stopped before
    expect(agent.proc.exitCode).toBeNull();
    await agent.stop();
    expect(agent.proc.exitCode).toBe(0);
  }, 240_000);
});
