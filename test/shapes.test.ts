/**
 * The "CPython 3.9 to 3.14" issue, end to end with the real BPF sampler on
 * every available interpreter: the code shapes real programs have (generators,
 * closures, comprehensions, methods, non-ASCII names and files, lambdas,
 * module-level and exec'd code), asyncio tasks, line numbers inside a
 * multi-line loop, and a process that execs another interpreter; then, across
 * versions, `--all` picking up and letting go of processes, and Pythons Kiln
 * cannot walk (too old, no readable symbols) reported without stopping it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { decodePprof, profileFromPprof } from '../profile/pprof.js';
import { SYNTHETIC, type Frame, type Profile, type StackSample } from '../profile/profile.js';
import {
  REPO,
  WORKLOADS,
  recordWithCpu,
  cpuSeconds,
  recordInBackground,
  recordWork,
  chain,
  hotLines,
  kiln,
  leafShare,
  samplesOf,
  startWorkload,
  tempDir,
  total,
  type Workload,
} from '../kit/harness.js';
import { misnamedFrames } from '../kit/names.js';
import { pythonFor, stageWorkload, testedVersions, type PythonInterpreter } from '../kit/pythons.js';

const versions = testedVersions('shapes');

const results = new Map<string, Map<string, string>>();
/** A test whose outcome goes into the table under each of `rows` (versions). */
function check(rows: string[], name: string, fn: () => Promise<void>, timeout = 180_000): void {
  it(`${rows.join('+')}: ${name}`, async () => {
    for (const v of rows) {
      const row = results.get(v) ?? new Map<string, string>();
      results.set(v, row);
      row.set(name, 'FAIL');
    }
    await fn();
    for (const v of rows) results.get(v)!.set(name, 'pass');
  }, timeout);
}

afterAll(() => {
  const checks = [...new Set([...results.values()].flatMap((r) => [...r.keys()]))];
  const lines = [['version', ...checks].join(' | ')];
  const rows = [...results].sort(([a], [b]) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  for (const [v, row] of rows) lines.push([v.padEnd(7), ...checks.map((c) => (row.get(c) ?? '-').padEnd(c.length))].join(' | '));
  console.log(`\nCPython 3.9-3.14 shapes, version x check:\n${lines.join('\n')}\n`);
});

function required(version: string): PythonInterpreter {
  const p = pythonFor(version);
  if (!p) throw new Error(`Python ${version} is required and missing: run bash test/setup-pythons.sh`);
  return p;
}

const minor = (version: string) => Number(version.split('.')[1]);
const isSynthetic = (f: Frame) => (Object.values(SYNTHETIC) as string[]).includes(f.name);
const fmt = (s: StackSample) => s.frames.map((f) => `${f.name}@${f.filename}:${f.line}`).reverse().join(' > ');

/*
 * cpuFloor: a process sampled at 99 Hz gets ~99 samples per CPU second it uses,
 * and that is what the tests expect -- but only half of it at least: in a VM
 * whose vCPUs the host throttles, the guest counts the lost time as the
 * task's CPU time while the sampling timer, not running, coalesces its ticks.
 */


/** Starts a program that prints {"pid": N} when ready (the fake interpreters). */
async function startProgram(argv: string[]): Promise<{ pid: number; stop(): Promise<void> }> {
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv[0]} did not start`)), 30_000);
    createInterface({ input: proc.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    void exited.then(() => reject(new Error(`${argv[0]} exited early`)));
  });
  return {
    pid: Number((JSON.parse(line) as { pid: number }).pid),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Stops every workload, even when one of them fails to. */
async function stopAll(ws: ({ stop(): Promise<void> } | undefined)[]): Promise<void> {
  await Promise.allSettled(ws.map((w) => w?.stop()));
}

/** Lines of kiln's stderr that mention `pid` (as a whole number). */
function linesAbout(stderr: string, pid: number): string[] {
  return stderr.split('\n').filter((l) => new RegExp(`\\bpid ${pid}\\b`).test(l));
}

/** What kiln said about `pid`, one entry per line, without its details: "following pid 12", "pid 12 exited". */
function eventsAbout(stderr: string, pid: number): string[] {
  return linesAbout(stderr, pid).map((l) => l.replace(/^kiln: /, '').replace(/: .*/, ''));
}

// ---------------------------------------------------------------------------
// per version

/**
 * What is wrong with a sample of task_SIZE busy in crunch_SIZE, if anything:
 * it must go root -> main -> asyncio.run ... run_until_complete ... _run_once
 * -> Handle._run -> task_SIZE -> crunch_SIZE (Task.__step is C, so the task's
 * coroutine sits right on Handle._run).
 */
function taskChainProblem(s: StackSample, size: string, path: string): string | undefined {
  const frames = [...s.frames].reverse(); // root first
  const names = frames.map((f) => f.name);
  const at = (name: string, file: string) => frames.findIndex((f) => f.systemName === name && f.filename.endsWith(file));
  const run = at('run', 'asyncio/runners.py');
  const untilComplete = at('run_until_complete', 'asyncio/base_events.py');
  const once = at('_run_once', 'asyncio/base_events.py');
  const handle = at('_run', 'asyncio/events.py');
  const ok =
    names[0] === '<module>' &&
    names[1] === 'main' &&
    names.at(-2) === `task_${size}` &&
    names.at(-1) === `crunch_${size}` &&
    frames.at(-1)!.filename === path &&
    frames.at(-2)!.filename === path &&
    run > 1 &&
    run < untilComplete &&
    untilComplete < once &&
    once < handle &&
    handle === frames.length - 3 &&
    frames[handle]!.name === 'Handle._run' &&
    frames[once]!.name === 'BaseEventLoop._run_once';
  return ok ? undefined : fmt(s);
}

interface ShapeSpec {
  /** samples whose leaf is this shape */
  pick: (leaf: Frame) => boolean;
  qualname: string;
  name: string;
  filename: string;
  line: number;
  /** qualnames of the frames above the leaf, nearest first (a prefix of them) */
  callers: string[];
}

function shapeSpecs(version: string, w: Workload): Record<string, ShapeSpec> {
  const hot = hotLines('shapes.py');
  const path = w.path;
  const mod = join(dirname(path), 'modül_ß.py');
  const spec = (qualname: string, name: string, line: number, callers: string[], filename = path): ShapeSpec => ({
    pick: (f) => f.systemName === name && f.filename === filename,
    qualname,
    name,
    filename,
    line,
    callers,
  });
  return {
    generator: spec('gen_numbers', 'gen_numbers', hot.gen_numbers!, ['consume_generator', '<module>']),
    'nested function': spec('outer.<locals>.inner', 'inner', hot.inner!, ['outer', '<module>']),
    // 3.12+ inline comprehensions (PEP 709): the time is in comprehension() itself
    comprehension:
      minor(version) <= 11
        ? spec('comprehension.<locals>.<listcomp>', '<listcomp>', hot.comprehension!, ['comprehension', '<module>'])
        : spec('comprehension', 'comprehension', hot.comprehension!, ['<module>']),
    method: spec('Shape.area', 'area', hot['Shape.area']!, ['<module>']),
    staticmethod: spec('Shape.helper', 'helper', hot['Shape.helper']!, ['<module>']),
    'non-ASCII name': spec('größe', 'größe', hot['größe']!, ['<module>']),
    'non-ASCII file': spec('grüße_λ', 'grüße_λ', hotLines('modül_ß.py')['grüße_λ']!, ['<module>'], mod),
    lambda: spec('<lambda>', '<lambda>', hot.lambda!, ['call_lambda', '<module>']),
    'module level': spec('<module>', '<module>', hot.module!, []),
    exec: spec('<module>', '<module>', 1, ['<module>'], '<string>'),
  };
}

for (const version of versions) {
  describe(`CPython ${version}`, () => {
    check([version], 'shapes', async () => {
      const py = required(version);
      stageWorkload(py, join(WORKLOADS, 'modül_ß.py'));
      const w = await startWorkload(py, 'shapes.py', ['5', '--wait']);
      try {
        const { profile, stderr } = await recordWork(w);
        const samples = samplesOf(profile, w.pid);
        const all = total(samples);
        expect(all, stderr).toBeGreaterThan(5 * 99 * 0.5); // 5 CPU seconds (see cpuFloor)
        const synthetic = total(samples.filter((s) => s.frames.some(isSynthetic)));
        expect(synthetic / all, 'share of stacks with a synthetic frame').toBeLessThan(0.02);
        expect(misnamedFrames(samples, py.root), 'frames named otherwise than their source says').toEqual([]);

        const specs = shapeSpecs(version, w);
        const report: string[] = [];
        for (const [shape, want] of Object.entries(specs)) {
          const mine = samples.filter((s) => s.frames[0] && want.pick(s.frames[0]));
          const n = total(mine);
          report.push(`${shape} ${((100 * n) / all).toFixed(1)}%`);
          // ten shapes share the CPU about equally
          expect(n / all, `${shape}: share of samples`).toBeGreaterThan(0.05);
          for (const s of mine) {
            const leaf = s.frames[0]!;
            expect({ qualname: leaf.name, name: leaf.systemName, filename: leaf.filename }, `${shape}: ${fmt(s)}`).toEqual({
              qualname: want.qualname,
              name: want.name,
              filename: want.filename,
            });
          }
          // Callers up to the script's <module>. A sample can land inside CPython's
          // own frame switch and see a torn chain (3.12 only, seen as a lone
          // gen_numbers frame about once a run: its YIELD_VALUE sets current_frame
          // and clears the generator's `previous` in either order): at most 2 or 1%.
          const whole = (s: StackSample) =>
            s.frames.slice(1, 1 + want.callers.length).every((f, i) => f.name === want.callers[i]) &&
            s.frames.length > want.callers.length &&
            s.frames.at(-1)!.name === '<module>' &&
            s.frames.at(-1)!.filename === w.path;
          const torn = mine.filter((s) => !whole(s));
          if (torn.length) console.log(`${version} ${shape}: ${total(torn)} of ${n} stacks torn:`, torn.map(fmt));
          expect(total(torn), `${shape}: stacks without their callers`).toBeLessThanOrEqual(Math.max(2, 0.01 * n));
          const onHot = total(mine.filter((s) => s.frames[0]!.line === want.line));
          expect(onHot / n, `${shape}: samples on line ${want.line}`).toBeGreaterThan(0.95);
        }
        if (minor(version) >= 12) {
          // inlined: no <listcomp> frame anywhere
          expect(samples.filter((s) => s.frames.some((f) => f.systemName === '<listcomp>'))).toEqual([]);
        }
        console.log(`${version} shapes (${all} samples): ${report.join(', ')}`);
      } finally {
        await w.stop();
      }
    });

    check([version], 'asyncio 50/30/20', async () => {
      const w = await startWorkload(required(version), 'tasks.py', ['8', '--wait']);
      try {
        const { profile, stderr } = await recordWork(w);
        const samples = samplesOf(profile, w.pid);
        const all = total(samples);
        expect(all, stderr).toBeGreaterThan(8 * 99 * 0.5); // 8 CPU seconds (see cpuFloor)
        expect(misnamedFrames(samples, required(version).root), 'frames named otherwise than their source says').toEqual([]);
        const hot = hotLines('tasks.py');
        const sizes = { large: 50, medium: 30, small: 20 } as const;
        const taskOf = (s: StackSample) => s.frames.find((f) => f.systemName.startsWith('task_') && f.filename === w.path)?.systemName;
        const inTasks = total(samples.filter((s) => taskOf(s) !== undefined));
        // the event loop's own work is small
        expect(inTasks / all, 'share of samples inside a task').toBeGreaterThan(0.9);
        const shares: string[] = [];
        for (const [size, want] of Object.entries(sizes)) {
          const mine = samples.filter((s) => taskOf(s) === `task_${size}`);
          const share = (100 * total(mine)) / inTasks;
          shares.push(`task_${size} ${share.toFixed(1)}%`);
          expect(Math.abs(share - want), `task_${size}: ${share.toFixed(1)}% of task samples, want ${want}%`).toBeLessThanOrEqual(3);

          // root -> ... -> the event loop -> task_SIZE -> crunch_SIZE
          const crunching = mine.filter((s) => s.frames[0]!.systemName === `crunch_${size}`);
          expect(total(crunching) / total(mine), `task_${size} busy in crunch_${size}`).toBeGreaterThan(0.9);
          // as with generators, a sample inside a yield can see a torn chain: rare
          const torn = crunching.filter((s) => taskChainProblem(s, size, w.path) !== undefined);
          if (torn.length) console.log(`${version} task_${size}: ${total(torn)} torn stacks:`, torn.map((s) => taskChainProblem(s, size, w.path)));
          expect(total(torn), `task_${size}: stacks not root -> loop -> task -> crunch`).toBeLessThanOrEqual(Math.max(2, 0.01 * total(crunching)));
          // every sample of task_SIZE is named right, torn or not
          for (const s of crunching) expect(s.frames[0]!.name).toBe(`crunch_${size}`);
          const onHot = total(crunching.filter((s) => s.frames[0]!.line === hot[`crunch_${size}`]));
          expect(onHot / total(crunching), `crunch_${size} on its hot line`).toBeGreaterThan(0.95);
        }
        console.log(`${version} asyncio (${all} samples, ${((100 * inTasks) / all).toFixed(1)}% in tasks): ${shares.join(', ')}`);
      } finally {
        await w.stop();
      }
    });

    check([version], 'line numbers', async () => {
      const w = await startWorkload(required(version), 'lines.py', ['3', '--wait']);
      try {
        const { profile, stderr } = await recordWork(w);
        const samples = samplesOf(profile, w.pid);
        const spin = samples.filter((s) => s.frames[0]?.systemName === 'spin');
        expect(total(spin), stderr).toBeGreaterThan(3 * 99 * 0.5); // 3 CPU seconds (see cpuFloor)
        expect(total(spin) / total(samples)).toBeGreaterThan(0.95);
        const source = readFileSync(join(WORKLOADS, 'lines.py'), 'utf8').split('\n');
        const defLine = source.findIndex((l) => l.startsWith('def spin(')) + 1;
        const loopStart = source.findIndex((l) => l.includes('# loop: while')) + 1;
        const hot = hotLines('lines.py');
        const marked = ['for', 'l1', 'l2', 'l3', 'l4'].map((k) => hot[k]!);
        const loopEnd = Math.max(...marked);
        expect(defLine).toBeGreaterThan(0);
        expect(loopStart).toBeGreaterThan(defLine);

        const byLine = new Map<number, number>();
        for (const s of spin) {
          const f = s.frames[0]!;
          expect(f.name).toBe('spin');
          expect(f.filename).toBe(w.path);
          expect(f.startLine).toBe(defLine);
          byLine.set(f.line, (byLine.get(f.line) ?? 0) + s.count);
        }
        const dist = [...byLine].sort(([a], [b]) => a - b);
        console.log(`${version} lines of spin() (def ${defLine}, loop ${loopStart}-${loopEnd}): ${dist.map(([l, n]) => `${l}:${n}`).join(' ')}`);
        // spin's lines outside its loop (def line before the first instruction, the
        // deadline, the return) run once, for far less than a sampling period: at
        // most one sample lands there, and on one of spin's own lines
        const outside = dist.filter(([line]) => line < loopStart || line > loopEnd);
        expect(outside.reduce((n, [, count]) => n + count, 0), 'samples outside the loop').toBeLessThanOrEqual(1);
        for (const [line] of outside) {
          expect(line, "one of spin's lines").toBeGreaterThanOrEqual(defLine);
          expect(line, "one of spin's lines").toBeLessThanOrEqual(loopEnd + 1);
        }
        for (const line of marked) expect(byLine.get(line) ?? 0, `samples on marked line ${line}`).toBeGreaterThan(0);
      } finally {
        await w.stop();
      }
    });

    check([version], 'exec', async () => {
      const py = required(version);
      const after = stageWorkload(py, join(WORKLOADS, 'exec_after.py'));
      // 2.5 + 1 CPU seconds in before_exec, then exec into exec_after.py for 2.5 more
      const w = await startWorkload(py, 'exec_before.py', ['2.5', '2.5']);
      try {
        const { profile, stderr } = await recordWork(w);
        const samples = samplesOf(profile, w.pid);
        expect(misnamedFrames(samples, py.root), 'frames named otherwise than their source says').toEqual([]);
        const about = linesAbout(stderr, w.pid);
        expect(about.filter((l) => l.includes(`following pid ${w.pid}: CPython ${version}`)), stderr).toHaveLength(2);
        expect(about.filter((l) => l.includes(`pid ${w.pid} exec'd: looking at it again`)), stderr).toHaveLength(1);
        expect(about.filter((l) => /no longer|skipping|exited/.test(l)), stderr).toEqual([]);

        const hotBefore = hotLines('exec_before.py').spin_at!;
        const hotAfter = hotLines('exec_after.py').after_exec!;
        const before = samples.filter((s) => s.frames[0]?.systemName === 'spin_at');
        const afterExec = samples.filter((s) => s.frames[0]?.systemName === 'after_exec');
        const deeper = before.filter((s) => s.frames.length > 4);
        console.log(`${version} exec: ${total(before)} samples before (${total(deeper)} in the last, deeper second), ${total(afterExec)} after, of ${total(samples)}`);
        expect(total(before), stderr).toBeGreaterThan(3.5 * 99 * 0.5); // before_exec's 3.5 CPU seconds (see cpuFloor)
        expect(total(afterExec)).toBeGreaterThan(50); // from when the recorder looks again (next drain, <= 1 s)
        const spinDef = readFileSync(join(WORKLOADS, 'exec_before.py'), 'utf8').split('\n').findIndex((l) => l.startsWith('def spin_at(')) + 1;
        for (const s of before) {
          const names = chain(s);
          expect(names.slice(0, 4)).toEqual(['<module>', 'main', 'before_exec', 'spin_at']);
          expect(names.slice(4).every((n) => n === 'spin_at')).toBe(true);
          expect(s.frames.every((f) => f.filename === w.path)).toBe(true);
          // in spin_at: its loop, or (going deeper) its recursive call, or its def line
          // for a frame sampled before its first instruction (CPython itself says so
          // for a negative f_lasti; the last second makes ~5,000 such calls)
          expect(s.frames[0]!.line).toBeGreaterThanOrEqual(spinDef);
          expect(s.frames[0]!.line).toBeLessThanOrEqual(hotBefore);
        }
        expect(total(before.filter((s) => s.frames[0]!.line === hotBefore)) / total(before)).toBeGreaterThan(0.95);
        // the last second: new stacks, the last of them drained only after the exec and
        // named by the old image's symbolizer from the code objects it had read
        expect(total(deeper), stderr).toBeGreaterThan(0);
        const afterDef = readFileSync(join(WORKLOADS, 'exec_after.py'), 'utf8').split('\n').findIndex((l) => l.startsWith('def after_exec(')) + 1;
        for (const s of afterExec) {
          expect(chain(s)).toEqual(['<module>', 'after_exec']);
          expect(s.frames.map((f) => f.filename)).toEqual([after, after]);
          expect(s.frames[0]!.line).toBeGreaterThanOrEqual(afterDef);
          expect(s.frames[0]!.line).toBeLessThanOrEqual(hotAfter);
        }
        // after_exec's lines before its loop run once, for far less than a sampling
        // period: at most one sample can land there
        expect(total(afterExec.filter((s) => s.frames[0]!.line !== hotAfter))).toBeLessThanOrEqual(1);
        // The old image's last samples are named by the old image's symbolizer: a
        // symbolizer of the new image once named them from other memory at the
        // old code objects' addresses, and whole stacks came out as [unknown code].
        // The new image's start-up (imports) is named from what the kernel copied.
        const unknown = samples.filter((s) => s.frames.some((f) => f.name === SYNTHETIC.unknownCode));
        expect(unknown.map(fmt)).toEqual([]);
        expect(samples.every((s) => s.labels.python_version?.startsWith(version))).toBe(true);
      } finally {
        await w.stop();
      }
    });
  });
}

// ---------------------------------------------------------------------------
// across versions

describe('host-wide', () => {
  check(['3.11', '3.13'], '--all', async () => {
    const late = required('3.11');
    const leaving = required('3.13');
    let a: Workload | undefined;
    let b: Workload | undefined;
    const rec = recordInBackground(['--all', '--duration', '8s']);
    try {
      await rec.started;
      const t0 = Date.now();
      b = await startWorkload(leaving, 'shares.py', ['3']); // busy for 3 s, then exits
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + 2000 - Date.now())));
      const aSpawned = Date.now();
      a = await startWorkload(late, 'shares.py', ['120']); // started 2 s into the recording
      const aReady = Date.now(); // its main() runs from here
      const { code, stderr, profile } = await rec.finished;
      const ended = rec.lines.find((l) => l.line.startsWith('kiln: wrote '))?.at ?? Date.now();
      // the brief's (8 - 2 - 2) s x 99 Hz x 0.8 assumes a whole CPU for a; on a busy
      // machine it gets less, and its samples follow its CPU time
      const share = Math.min(1, cpuSeconds(a.pid) / ((Date.now() - aSpawned) / 1000));
      expect(code, stderr).toBe(0);
      const sa = samplesOf(profile!, a.pid);
      const sb = samplesOf(profile!, b.pid);
      const want = Math.floor((8 - 2 - 2) * 99 * 0.8 * share);
      const followedA = rec.lines.find((l) => l.line.startsWith(`kiln: following pid ${a!.pid}:`));
      const pickup = followedA ? followedA.at - aSpawned : Infinity;
      console.log(
        `--all: late 3.11 pid ${a.pid} followed ${pickup} ms after it was started: ${total(sa)} samples ` +
          `(want >= ${want}: it had ${(100 * share).toFixed(0)}% of a CPU); leaving 3.13 pid ${b.pid}: ${total(sb)} samples`,
      );
      // picked up within 2 s of starting
      expect(pickup, stderr).toBeLessThanOrEqual(2000);
      expect(total(sa)).toBeGreaterThanOrEqual(want);
      for (const [w, ss, v] of [
        [a, sa, '3.11'],
        [b, sb, '3.13'],
      ] as const) {
        const busy = ss.filter((x) => ['a', 'b', 'c'].includes(x.frames[0]?.name ?? ''));
        // the rest: the interpreter starting (imports) or exiting, which a scan can catch
        const others = ss.filter((x) => !busy.includes(x));
        if (total(others)) console.log(`--all: pid ${w.pid}: ${total(others)} samples outside a, b, c, e.g.`, others.slice(0, 3).map(fmt));
        // Every frame named, and as its source file says: a fresh machine once met
        // a json/__init__.py <module> named `28288`, read from a code object freed
        // before it was symbolized. Start-up's module code is freed once imported;
        // the kernel reports it when it first sees it run, names included.
        expect(misnamedFrames(ss, v === '3.11' ? late.root : leaving.root), 'frames named otherwise than their source says').toEqual([]);
        expect(ss.filter((x) => x.frames.some((f) => f.name === SYNTHETIC.unknownCode || f.name === SYNTHETIC.readError)).map(fmt)).toEqual([]);
        expect(ss.every((s) => s.labels.python_version?.startsWith(v))).toBe(true);
        for (const s of busy) {
          expect(chain(s).slice(0, 3)).toEqual(['<module>', 'main', 'Runner.run']);
          expect(s.frames[0]!.filename).toBe(w.path);
        }
      }
      // b's 3 s in a, b and c come after its start; a gets there if it started in time
      expect(total(sb.filter((x) => ['a', 'b', 'c'].includes(x.frames[0]?.name ?? '')))).toBeGreaterThan(0);
      if (ended - aReady >= 2000) expect(leafShare(sa, 'a') + leafShare(sa, 'b') + leafShare(sa, 'c')).toBeGreaterThan(0);
      expect(await b.exited).toBe(0);
      // a: followed; b: followed, then exited; nothing else said about them, and no errors at all
      expect(eventsAbout(stderr, a.pid), stderr).toEqual([`following pid ${a.pid}`]);
      expect(eventsAbout(stderr, b.pid), stderr).toEqual([`following pid ${b.pid}`, `pid ${b.pid} exited`]);
      expect(stderr.split('\n').filter((l) => /error|fail|exception/i.test(l))).toEqual([]);
    } finally {
      rec.kill();
      await stopAll([a, b]);
    }
  });

  check(['3.11'], 'unsupported', async () => {
    const tmp = tempDir();
    const started: { pid: number; stop(): Promise<void> }[] = [];
    try {
      const fake = (name: string, body: string) => {
        const src = join(tmp.dir, `${name}.c`);
        const bin = join(tmp.dir, name);
        writeFileSync(
          src,
          `#include <stdio.h>\n#include <unistd.h>\n${body}\n` +
            `int main(void) { printf("{\\"pid\\": %d}\\n", getpid()); fflush(stdout); for (;;) pause(); }\n`,
        );
        execFileSync('gcc', ['-O0', '-rdynamic', '-o', bin, src]);
        return bin;
      };
      // an interpreter outside 3.9-3.14: its _PyRuntime and Py_Version say 3.8.18
      const py38 = fake(
        'python3.8',
        '__attribute__((used, visibility("default"))) unsigned char _PyRuntime[4096];\n' +
          '__attribute__((used, visibility("default"))) const unsigned long Py_Version = 0x030812f0;',
      );
      // a "3.11" whose symbols give no _PyRuntime
      const py311 = fake('python3.11', '');
      const old = await startProgram([py38]);
      started.push(old);
      const unreadable = await startProgram([py311]);
      started.push(unreadable);
      const real38 = realPython38();
      let real: { pid: number; stop(): Promise<void> } | undefined;
      if (real38) {
        real = await startProgram([real38, '-c', 'import json, os, time; print(json.dumps({"pid": os.getpid()}), flush=True); time.sleep(300)']);
        started.push(real);
      } else console.log('unsupported: no pyenv 3.8 here, only the fake 3.8 is checked');
      const good = await startWorkload(required('3.11'), 'shares.py', ['120']);
      started.push(good);

      const { code, stderr, profile, cpu } = await recordWithCpu(['--all', '--duration', '5s'], good.pid);
      expect(code, stderr).toBe(0); // it kept going

      // each bad one: one line, by pid, with the reason
      const bad: [number, string][] = [
        [old.pid, 'CPython 3.8.18 is not supported (Kiln walks 3.9 to 3.14)'],
        [unreadable.pid, `cannot read the symbols of ${py311}: no _PyRuntime`],
      ];
      if (real) bad.push([real.pid, 'CPython 3.8 is not supported (Kiln walks 3.9 to 3.14)']);
      for (const [pid, reason] of bad) {
        const lines = linesAbout(stderr, pid);
        expect(lines, stderr).toHaveLength(1);
        expect(lines[0], stderr).toContain(`skipping pid ${pid}: ${reason}`);
        expect(samplesOf(profile!, pid)).toEqual([]);
      }
      // the real 3.11's profile is whole: sampled all along, every frame named
      expect(eventsAbout(stderr, good.pid), stderr).toEqual([`following pid ${good.pid}`]);
      const samples = samplesOf(profile!, good.pid);
      const n = total(samples);
      console.log(`unsupported: real 3.11 pid ${good.pid}: ${n} samples for ${cpu.toFixed(2)} CPU seconds while recording`);
      expect(n).toBeGreaterThanOrEqual(Math.floor(cpu * 99 * 0.5));
      expect(samples.filter((s) => s.frames.some(isSynthetic)).map(fmt)).toEqual([]);
      expect(leafShare(samples, 'a') + leafShare(samples, 'b') + leafShare(samples, 'c')).toBeGreaterThan(98);
      for (const s of samples) expect(chain(s).slice(0, 3)).toEqual(['<module>', 'main', 'Runner.run']);

      // naming an unsupported process is an error: exit 1, and why
      const byPid = await kiln(['record', '--pid', String(old.pid), '--duration', '1s', '-o', join(tmp.dir, 'x.pb.gz')], { timeoutMs: 150_000 });
      expect(byPid.code, byPid.stderr).toBe(1);
      expect(byPid.stderr).toContain(`pid ${old.pid}: CPython 3.8.18 is not supported (Kiln walks 3.9 to 3.14)`);
      const byPid311 = await kiln(['record', '--pid', String(unreadable.pid), '--duration', '1s', '-o', join(tmp.dir, 'y.pb.gz')], {
        timeoutMs: 150_000,
      });
      expect(byPid311.code, byPid311.stderr).toBe(1);
      expect(byPid311.stderr).toContain(`pid ${unreadable.pid}: cannot read the symbols of ${py311}: no _PyRuntime`);
    } finally {
      await stopAll(started);
      tmp.cleanup();
    }
  }, 240_000);
});

/** A real CPython 3.8 from pyenv, when there is one. */
function realPython38(): string | undefined {
  const dir = join(process.env.PYENV_ROOT ?? join(homedir(), '.pyenv'), 'versions');
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir)
    .filter((v) => /^3\.8\.\d+$/.test(v))
    .map((v) => join(dir, v, 'bin', 'python3.8'))
    .find((p) => existsSync(p));
}
