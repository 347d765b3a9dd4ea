/**
 * `kiln record` as a user meets it: the files it writes, and what it says
 * when the input is wrong (not Python, gone, exiting, no privileges).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile as PprofProfile } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCollapsed } from '../profile/collapsed.js';
import { hotLines, kiln, leafShare, recordProfile, recordWithCpu, samplesOf, startWorkload, tempDir, total, type Workload } from '../kit/harness.js';
import { hostPython } from '../kit/pythons.js';

const str = (p: PprofProfile, i: number | bigint) => p.stringTable.strings[Number(i)]!;

describe('kiln record output', () => {
  let w: Workload;
  const tmp = tempDir();
  beforeAll(async () => {
    w = await startWorkload(hostPython(), 'shares.py', ['60']);
  });
  afterAll(async () => {
    await w.stop();
    tmp.cleanup();
  });

  it('writes a gzipped pprof that pprof-format decodes, with types, period, functions, lines and labels', async () => {
    const out = join(tmp.dir, 'p.pb.gz');
    const r = await recordWithCpu(['--pid', String(w.pid), '--duration', '3s'], w.pid, out);
    expect(r.code, r.stderr).toBe(0);
    const raw = readFileSync(out);
    expect(raw[0]).toBe(0x1f); // gzip magic
    const p = PprofProfile.decode(gunzipSync(raw));
    expect(p.sampleType.map((t) => `${str(p, t.type)}/${str(p, t.unit)}`)).toEqual(['samples/count', 'cpu/nanoseconds']);
    expect(`${str(p, p.periodType!.type)}/${str(p, p.periodType!.unit)}`).toBe('cpu/nanoseconds');
    expect(Number(p.period)).toBe(Math.round(1e9 / 99));
    expect(Number(p.durationNanos)).toBeGreaterThan(2.5e9);
    expect(Number(p.durationNanos)).toBeLessThan(6e9);
    expect(Number(p.timeNanos)).toBeGreaterThan(Date.now() * 1e6 - 60e9);
    let samples = 0;
    for (const s of p.sample) {
      const [count, ns] = s.value.map(Number);
      expect(ns).toBe(count! * Number(p.period));
      samples += count!;
      const keys = s.label.map((l) => str(p, l.key)).sort();
      expect(keys).toEqual(['pid', 'python_version', 'thread_name', 'tid']);
    }
    // at least half of 99 per CPU second shares.py got while recording (a loaded machine gives it less than 3 s)
    expect(r.cpu).toBeGreaterThan(0.3);
    expect(samples).toBeGreaterThanOrEqual(Math.floor(r.cpu * 99 * 0.5));
    const fns = new Map(p.function.map((f) => [Number(f.id), f]));
    const hot = hotLines('shares.py');
    const a = p.function.find((f) => str(p, f.name) === 'a')!;
    // co_name equal to the qualname is left out (pprof tools read such a system name as mangled).
    expect(str(p, a.systemName)).toBe('');
    expect(str(p, a.filename)).toBe(w.path);
    expect(Number(a.startLine)).toBe(hot.a! - 2);
    const run = p.function.find((f) => str(p, f.name) === 'Runner.run')!;
    expect(str(p, run.systemName)).toBe('run');
    for (const loc of p.location) {
      expect(loc.line.length).toBe(1);
      expect(fns.has(Number(loc.line[0]!.functionId))).toBe(true);
      expect(Number(loc.line[0]!.line)).toBeGreaterThan(0);
    }
    // One mapping, the interpreter, holding every location.
    expect(p.mapping.map((m) => str(p, m.filename))).toEqual([expect.stringMatching(/^python3\.\d+$/)]);
    for (const loc of p.location) expect(Number(loc.mappingId)).toBe(1);
    // a's samples sit on its hot line but for the rare one in the lines that run once per call
    const aLines = p.location.filter((l) => Number(l.line[0]!.functionId) === Number(a.id)).map((l) => Number(l.line[0]!.line));
    expect(aLines).toContain(hot.a);
    for (const line of aLines) {
      expect(line).toBeGreaterThanOrEqual(Number(a.startLine));
      expect(line).toBeLessThanOrEqual(hot.a!);
    }
  });

  it('writes folded stacks and speedscope JSON', async () => {
    const folded = join(tmp.dir, 'p.folded');
    let r = await kiln(['record', '--pid', String(w.pid), '--duration', '2s', '--format', 'collapsed', '-o', folded]);
    expect(r.code, r.stderr).toBe(0);
    const stacks = parseCollapsed(readFileSync(folded, 'utf8'));
    const aStacks = stacks.filter((s) => s.frames.at(-1)?.startsWith('a (')).sort((x, y) => y.count - x.count);
    expect(aStacks.length).toBeGreaterThan(0);
    // the heaviest of a's stacks ends on its hot line
    expect(aStacks[0]!.frames[0]).toMatch(/^<module> \(/);
    expect(aStacks[0]!.frames.at(-1)).toBe(`a (${w.path}:${hotLines('shares.py').a})`);

    const ss = join(tmp.dir, 'p.speedscope.json');
    r = await kiln(['record', '--pid', String(w.pid), '--duration', '2s', '--format', 'speedscope', '-o', ss]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(ss, 'utf8')) as {
      $schema: string;
      shared: { frames: { name: string }[] };
      profiles: { type: string; samples: number[][]; weights: number[] }[];
    };
    expect(doc.$schema).toBe('https://www.speedscope.app/file-format-schema.json');
    expect(doc.profiles[0]!.type).toBe('sampled');
    expect(doc.profiles[0]!.samples.length).toBe(doc.profiles[0]!.weights.length);
    expect(doc.shared.frames.some((f) => f.name.startsWith('Runner.run'))).toBe(true);
  });
});

describe('kiln record with bad input', () => {
  it('says a pid that is not Python is not a Python process', async () => {
    const sleeper = spawn('sleep', ['30']);
    try {
      const r = await kiln(['record', '--pid', String(sleeper.pid), '--duration', '1s', '-o', '/dev/null']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`pid ${sleeper.pid} is not a Python process`);
    } finally {
      sleeper.kill();
    }
  });

  it('says a pid that does not exist does not exist', async () => {
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    const r = await kiln(['record', '--pid', String(gone.pid), '--duration', '1s', '-o', '/dev/null']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`pid ${gone.pid}`);
    expect(r.stderr).toContain('no such process');
  });

  it('keeps recording the others when one target exits', async () => {
    const short = await startWorkload(hostPython(), 'shares.py', ['4']);
    const long = await startWorkload(hostPython(), 'shares.py', ['30']);
    try {
      const { profile, stderr } = await recordProfile(['--pid', String(short.pid), '--pid', String(long.pid), '--duration', '6s']);
      expect(stderr).toContain(`pid ${short.pid} exited`);
      const shortN = total(samplesOf(profile, short.pid));
      const longN = total(samplesOf(profile, long.pid));
      // both busy and sampled alike while both run; the long one goes on being
      // sampled after the short one exits (a ratio, which holds on a loaded machine)
      expect(shortN).toBeGreaterThan(30);
      expect(longN).toBeGreaterThan(100);
      expect(longN).toBeGreaterThan(1.3 * shortN);
      expect(Math.abs(leafShare(samplesOf(profile, long.pid), 'a') - 60)).toBeLessThan(5);
    } finally {
      await short.stop();
      await long.stop();
    }
  });

  it('names the missing capabilities when run without privileges', async () => {
    const none = await kiln(['record', '--all', '--duration', '1s', '-o', '/dev/null'], {
      wrap: ['setpriv', '--bounding-set=-all', '--inh-caps=-all', '--ambient-caps=-all', '--'],
    });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('CAP_BPF');
    expect(none.stderr).toContain('CAP_PERFMON');
    expect(none.stderr).toContain('CAP_SYS_PTRACE');

    const noPerfmon = await kiln(['record', '--all', '--duration', '1s', '-o', '/dev/null'], {
      wrap: ['setpriv', '--bounding-set=-perfmon,-sys_admin', '--inh-caps=-all', '--'],
    });
    expect(noPerfmon.code).toBe(1);
    expect(noPerfmon.stderr).toMatch(/needs CAP_PERFMON to profile/);
    expect(noPerfmon.stderr).not.toContain('CAP_BPF');
  });

  it('explains usage mistakes', async () => {
    const r = await kiln(['record', '--duration', '1s']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--pid PID (one or more) or --all');
    const bad = await kiln(['record', '--all', '--duration', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('bad duration "soon"');
  });
});
