/** Running workloads and the kiln CLI from tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { decodePprof, profileFromPprof } from '../profile/pprof.js';
import type { Profile, StackSample } from '../profile/profile.js';
import { stageWorkload, type PythonInterpreter } from './pythons.js';
import { cpuMsOf } from '../unwinder/proc.js';

export const REPO = join(import.meta.dirname, '..');
export const WORKLOADS = join(REPO, 'test', 'workloads');
const KILN = join(REPO, 'bin', 'kiln');

export interface Workload {
  pid: number;
  /** the JSON line the workload printed when ready */
  info: Record<string, unknown>;
  /** the workload's path as its interpreter sees it (what co_filename holds) */
  path: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  /** the next line it prints (with `stdin: true`; otherwise its output is left to whoever reads proc.stdout) */
  nextLine(timeoutMs?: number): Promise<string>;
  /** writes a line to its stdin (with `stdin: true`) */
  send(line: string): void;
  stop(): Promise<void>;
}

/** Starts test/workloads/NAME under `py` and waits until it says it is ready. */
export async function startWorkload(
  py: PythonInterpreter,
  name: string,
  args: string[],
  env: Record<string, string> = {},
  opts: { stdin?: boolean } = {},
): Promise<Workload> {
  const path = stageWorkload(py, join(WORKLOADS, name));
  const [cmd, ...pre] = py.command;
  const proc = spawn(cmd!, [...pre, path, ...args], {
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: proc.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} under ${py.label} did not start within 30 s`)), 30_000);
    lines.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    void exited.then((code) => reject(new Error(`${name} under ${py.label} exited early (${code})`)));
  });
  const info = JSON.parse(first) as Record<string, unknown>;
  // later lines, queued until asked for (only when the caller will ask)
  const queued: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  if (opts.stdin) lines.on('line', (l) => (waiting.length ? waiting.shift()!(l) : queued.push(l)));
  return {
    pid: Number(info.pid),
    info,
    path,
    proc,
    exited,
    nextLine(timeoutMs = 60_000) {
      if (queued.length) return Promise.resolve(queued.shift()!);
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no line within ${timeoutMs} ms`)), timeoutMs);
        waiting.push((l) => {
          clearTimeout(timer);
          resolve(l);
        });
      });
    },
    send(line: string) {
      proc.stdin!.write(line + '\n');
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `kiln ARGS` to completion. */
export function kiln(args: string[], opts: { wrap?: string[]; timeoutMs?: number } = {}): Promise<RunResult> {
  const argv = [...(opts.wrap ?? []), process.execPath, KILN, ...args];
  return new Promise((resolve, reject) => {
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`kiln ${args.join(' ')} timed out\n${stderr}`));
    }, opts.timeoutMs ?? 90_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** CPU seconds a whole process has used (utime + stime, from /proc, in USER_HZ = 100). */
export function cpuSeconds(pid: number): number {
  return cpuMsOf(`/proc/${pid}/stat`) / 1000;
}

/** `kiln record ARGS -o tmp.pb.gz`, decoded; throws with kiln's stderr when it fails. */
export async function recordProfile(args: string[]): Promise<{ profile: Profile; stderr: string; bytes: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-test-'));
  try {
    const out = join(dir, 'profile.pb.gz');
    const r = await kiln(['record', ...args, '-o', out]);
    if (r.code !== 0) throw new Error(`kiln record failed (${r.code}):\n${r.stderr}`);
    const bytes = readFileSync(out);
    return { profile: profileFromPprof(decodePprof(bytes)), stderr: r.stderr, bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Line numbers of the lines marked `# hot: NAME` in a workload. */
export function hotLines(name: string): Record<string, number> {
  const out: Record<string, number> = {};
  readFileSync(join(WORKLOADS, name), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const m = /# hot: (\S+)/.exec(line);
      if (m) out[m[1]!] = i + 1;
    });
  return out;
}

export function samplesOf(profile: Profile, pid: number): StackSample[] {
  return profile.samples.filter((s) => s.labels.pid === String(pid));
}

export function total(samples: StackSample[]): number {
  return samples.reduce((n, s) => n + s.count, 0);
}

/** Samples whose leaf frame is `name`, as a share of `samples` in percent. */
export function leafShare(samples: StackSample[], name: string): number {
  const n = total(samples.filter((s) => s.frames[0]?.name === name));
  return (100 * n) / Math.max(1, total(samples));
}

/** Root-first frame names of a sample. */
export function chain(s: StackSample): string[] {
  return s.frames.map((f) => f.name).reverse();
}

/**
 * Bytes as fetch's BodyInit types them: backed by an ArrayBuffer. Node types a
 * Buffer's store as ArrayBuffer or SharedArrayBuffer, so a Buffer is not one
 * until checked; copying only when it is shared.
 */
export function bodyBytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b);
}

/** A request body for fetch: text as it is, bytes as bodyBytes makes them. */
export function asBody(b: Uint8Array | string): string | Uint8Array<ArrayBuffer> {
  return typeof b === 'string' ? b : bodyBytes(b);
}

/**
 * A KILN_SERVICE name of this test run. `kiln agent` profiles every Python
 * process on the machine, so a run of the same test in another checkout at the
 * same time must not add its processes to this run's services.
 */
export function ownService(name: string): string {
  return `${name}-${process.pid}`;
}

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Daemon {
  proc: ChildProcess;
  /** the `ready` pattern's match in its output */
  match: RegExpExecArray;
  /** everything it printed so far */
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts a long-running `kiln ARGS` (serve, agent) and resolves once its
 * output matches `ready`; rejects if it exits or takes longer than timeoutMs.
 */
export function startDaemon(args: string[], ready: RegExp, timeoutMs = 90_000, kilnCommand = KILN): Promise<Daemon> {
  const proc = spawn(process.execPath, [kilnCommand, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln ${args.join(' ')} did not start:\n${out}`)), timeoutMs);
    const poll = setInterval(() => {
      const match = ready.exec(out);
      if (!match) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve({
        proc,
        match,
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
      reject(new Error(`kiln ${args.join(' ')} exited:\n${out}`));
    });
  });
}

/** `kiln serve --port 0 --data DIR` (or a given port, and more options), with its URL. */
export async function startServe(data: string, port = 0, options: string[] = []): Promise<Daemon & { url: string }> {
  const d = await startDaemon(['serve', '--port', String(port), '--data', data, ...options], /serving on :(\d+)/);
  return { ...d, url: `http://127.0.0.1:${d.match[1]}` };
}

export interface Background {
  /** kiln's stderr lines as they came, with Date.now() of arrival */
  lines: { at: number; line: string }[];
  /** resolves once kiln is sampling */
  started: Promise<void>;
  finished: Promise<{ code: number | null; stderr: string; profile?: Profile }>;
  /** Ctrl-C: kiln stops early and still writes */
  interrupt(): void;
  kill(): void;
}

/** `kiln record ARGS` running in the background. */
export function recordInBackground(args: string[], keepAt?: string): Background {
  const tmp = tempDir();
  // keepAt: where the pprof stays for a test that reads the file itself
  const out = keepAt ?? join(tmp.dir, 'profile.pb.gz');
  const proc = spawn(process.execPath, [join(REPO, 'bin', 'kiln'), 'record', ...args, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const lines: { at: number; line: string }[] = [];
  let onStart: () => void = () => {};
  const started = new Promise<void>((resolve, reject) => {
    onStart = resolve;
    proc.once('exit', (code) => reject(new Error(`kiln record exited (${code}) before recording:\n${stderr}`)));
  });
  started.catch(() => {}); // also reported through `finished`
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    lines.push({ at: Date.now(), line });
    stderr += line + '\n';
    if (line.startsWith('kiln: recording ')) onStart();
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 170_000);
  const finished = new Promise<{ code: number | null; stderr: string; profile?: Profile }>((resolve) => {
    proc.once('exit', (code) => {
      clearTimeout(timer);
      let profile: Profile | undefined;
      if (code === 0 && existsSync(out)) profile = profileFromPprof(decodePprof(readFileSync(out)));
      tmp.cleanup();
      resolve({ code, stderr, profile });
    });
  });
  return {
    lines,
    started,
    finished,
    interrupt: () => proc.kill('SIGINT'),
    kill: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

/**
 * `kiln record ARGS` to its end, and the CPU seconds process `pid` used while
 * it recorded: a busy thread gets ~99 samples per CPU second it is given,
 * which on a loaded machine is less than 99 per second of wall time.
 */
export async function recordWithCpu(
  args: string[],
  pid: number,
  keepAt?: string,
): Promise<{ code: number | null; stderr: string; profile?: Profile; cpu: number }> {
  const rec = recordInBackground(args, keepAt);
  try {
    await rec.started;
    const cpu0 = cpuSeconds(pid);
    const result = await rec.finished;
    return { ...result, cpu: cpuSeconds(pid) - cpu0 };
  } finally {
    rec.kill();
  }
}

/** Resolves when a --wait workload prints {"done": true}. */
export function untilDone(w: Workload): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`pid ${w.pid} did not finish its work within 150 s`)), 150_000);
    w.proc.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('"done"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void w.exited.then((code) => reject(new Error(`pid ${w.pid} exited (${code}) before it was done`)));
  });
}

/**
 * Records a --wait workload's work and nothing else: starts `kiln record`,
 * sends the workload SIGUSR1 once kiln samples, and stops kiln with SIGINT
 * once the workload says it is done. The workload's work is a fixed amount of
 * its own CPU time, so the samples are ~99 per CPU second however busy the
 * machine is, and a slow kiln start cannot miss any of it.
 */
export async function recordWork(w: Workload): Promise<{ profile: Profile; stderr: string }> {
  const rec = recordInBackground(['--pid', String(w.pid), '--duration', '300s']);
  try {
    await rec.started;
    const done = untilDone(w);
    w.proc.kill('SIGUSR1');
    await done;
    rec.interrupt();
    const r = await rec.finished;
    if (r.code !== 0 || !r.profile) throw new Error(`kiln record failed (${r.code}):\n${r.stderr}`);
    return { profile: r.profile, stderr: r.stderr };
  } finally {
    rec.kill();
  }
}

