/**
 * `kiln record` end to end: the real BPF sampler on real interpreters (3.11 on
 * the host; 3.9, 3.13 and 3.14 in Debian roots; 3.10 and 3.12 where pyenv or
 * KILN_PYTHON_3_X provides them), checked against workloads with known profiles.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SYNTHETIC, type StackSample } from '../profile/profile.js';
import { chain, hotLines, leafShare, recordProfile, recordWithCpu, samplesOf, startWorkload, total } from '../kit/harness.js';
import { misnamedFrames } from '../kit/names.js';
import { pythonFor, testedVersions } from '../kit/pythons.js';

const versions = testedVersions('record');

const results = new Map<string, Map<string, string>>();
function check(version: string, name: string, fn: () => Promise<void>, timeout = 120_000): void {
  it(`${version}: ${name}`, async () => {
    const row = results.get(version) ?? new Map<string, string>();
    results.set(version, row);
    row.set(name, 'FAIL');
    await fn();
    row.set(name, 'pass');
  }, timeout);
}

afterAll(() => {
  const checks = [...new Set([...results.values()].flatMap((r) => [...r.keys()]))];
  const lines = [['version', ...checks].join(' | ')];
  for (const [v, row] of results) lines.push([v.padEnd(7), ...checks.map((c) => (row.get(c) ?? '-').padEnd(c.length))].join(' | '));
  console.log(`\nkiln record acceptance, version x check:\n${lines.join('\n')}\n`);
});

/**
 * Records `pid`, whose busy thread must get more than `minCpu` CPU seconds
 * meanwhile, and expects at least half of the 99 samples per CPU second it
 * got: on a loaded machine it gets less than the wall time (as for shares).
 */
async function recordBusy(args: string[], pid: number, minCpu: number): Promise<StackSample[]> {
  const rec = await recordWithCpu(args, pid);
  expect(rec.code, rec.stderr).toBe(0);
  const samples = samplesOf(rec.profile!, pid);
  expect(rec.cpu).toBeGreaterThan(minCpu);
  expect(total(samples)).toBeGreaterThanOrEqual(Math.floor(rec.cpu * 99 * 0.5));
  return samples;
}

/** What the workloads' <module>/main chain looks like where a version has no co_qualname. */
const runQualname = 'Runner.run';

for (const version of versions) {
  describe(`CPython ${version}`, () => {
    const py = () => {
      const p = pythonFor(version);
      if (!p) throw new Error(`Python ${version} is required and missing: run bash test/setup-pythons.sh`);
      return p;
    };

    check(version, 'shares 60/30/10', async () => {
      const w = await startWorkload(py(), 'shares.py', ['16']);
      try {
        // ~99 samples per CPU second the busy thread gets while recording (at least half, as in
        // shapes.test.ts: a throttled vCPU counts its lost time as the task's): not 99 Hz x 10 s,
        // which a loaded machine does not give it
        const { code, stderr, profile: recorded, cpu } = await recordWithCpu(['--pid', String(w.pid), '--duration', '10s'], w.pid);
        expect(code, stderr).toBe(0);
        const profile = recorded!;
        const samples = samplesOf(profile, w.pid);
        console.log(`${version} shares: ${total(samples)} samples for ${cpu.toFixed(2)} CPU seconds while recording`);
        expect(cpu).toBeGreaterThan(2); // enough of a recording for shares to mean something
        expect(total(samples)).toBeGreaterThanOrEqual(Math.floor(cpu * 99 * 0.5));
        expect(misnamedFrames(samples, py().root), 'frames named otherwise than their source says').toEqual([]);
        const shares = { a: leafShare(samples, 'a'), b: leafShare(samples, 'b'), c: leafShare(samples, 'c') };
        console.log(`${version} shares: a ${shares.a.toFixed(1)}%, b ${shares.b.toFixed(1)}%, c ${shares.c.toFixed(1)}% of ${total(samples)}`);
        expect(Math.abs(shares.a - 60)).toBeLessThanOrEqual(3);
        expect(Math.abs(shares.b - 30)).toBeLessThanOrEqual(3);
        expect(Math.abs(shares.c - 10)).toBeLessThanOrEqual(3);

        const hot = hotLines('shares.py');
        for (const fn of ['a', 'b', 'c']) {
          const mine = samples.filter((s) => s.frames[0]?.name === fn);
          for (const s of mine) {
            expect(chain(s)).toEqual(['<module>', 'main', runQualname, fn]);
            expect(s.frames[0]!.filename).toBe(w.path);
            expect(s.frames[0]!.systemName).toBe(fn);
          }
          // the hot loop is one line; nearly every sample of fn is on it
          const onHot = total(mine.filter((s) => s.frames[0]!.line === hot[fn]));
          expect(onHot / total(mine)).toBeGreaterThan(0.95);
        }
        const one = samples.find((s) => s.frames[0]?.name === 'a')!;
        expect(one.labels.python_version).toMatch(new RegExp(`^${version.replace('.', '\\.')}`));
        expect(one.labels.tid).toBe(String(w.pid));
      } finally {
        await w.stop();
      }
    });

    check(version, 'recursion 2000 deep', async () => {
      const w = await startWorkload(py(), 'recursion.py', ['20', '2000']);
      try {
        const samples = await recordBusy(['--pid', String(w.pid), '--duration', '3s'], w.pid, 0.5);
        for (const s of samples) {
          const names = chain(s);
          expect(names[0]).toBe('<module>');
          expect(names[1]).toBe('main');
          expect(names.filter((n) => n === 'recurse').length).toBe(2000);
          expect(names).toHaveLength(2002);
          expect(s.frames[0]!.line).toBe(hotLines('recursion.py').leaf);
        }

        const cutSamples = await recordBusy(['--pid', String(w.pid), '--duration', '2s', '--max-depth', '100'], w.pid, 0.3);
        for (const s of cutSamples) {
          const names = chain(s);
          expect(names[0]).toBe(SYNTHETIC.truncated);
          expect(names).toHaveLength(101);
          expect(names.slice(1).every((n) => n === 'recurse')).toBe(true);
        }
      } finally {
        await w.stop();
      }
    });

    check(version, '4,096 frames whole', async () => {
      // the deepest stack the kernel keeps: <module>, main and 4,094 recurse frames
      const w = await startWorkload(py(), 'recursion.py', ['20', '4094']);
      try {
        const samples = await recordBusy(['--pid', String(w.pid), '--duration', '2s'], w.pid, 0.3);
        for (const s of samples) {
          const names = chain(s);
          expect(names.slice(0, 2)).toEqual(['<module>', 'main']);
          expect(names.filter((n) => n === 'recurse').length).toBe(4094);
          expect(names).toHaveLength(4096);
        }
      } finally {
        await w.stop();
      }
    });

    check(version, 'four threads labelled', async () => {
      const w = await startWorkload(py(), 'threads.py', ['14']);
      try {
        const { profile } = await recordProfile(['--pid', String(w.pid), '--duration', '6s']);
        const samples = samplesOf(profile, w.pid);
        expect(misnamedFrames(samples, py().root), 'frames named otherwise than their source says').toEqual([]);
        const threads = w.info.threads as Record<string, number>;
        expect(Object.keys(threads)).toHaveLength(4);
        for (const [name, tid] of Object.entries(threads)) {
          const mine = samples.filter((s) => s.labels.tid === String(tid));
          expect(total(mine), `samples of ${name}`).toBeGreaterThan(50);
          expect(mine.every((s) => s.labels.thread_name === name)).toBe(true);
          const fn = `spin_${name.slice('kiln-'.length)}`;
          const inFn = total(mine.filter((s) => s.frames[0]?.name === fn && s.frames[0].line === hotLines('threads.py')[fn]));
          expect(inFn / total(mine), `${name} busy in ${fn}`).toBeGreaterThan(0.9);
          // spin_x runs under threading's Thread.run
          const frames = mine.find((s) => s.frames[0]?.name === fn)!.frames;
          expect(frames.some((f) => f.systemName === 'run' && f.filename.endsWith('threading.py'))).toBe(true);
        }
      } finally {
        await w.stop();
      }
    });
  });
}
