/**
 * Sampler bench: what the in-kernel walker costs the profiled process.
 *
 * 1. Overhead. bench/workloads/throughput.py (a fixed pure-Python loop: a
 *    call chain 30 frames deep and some arithmetic) under the host's 3.11
 *    reports its own throughput: iterations per CPU-second of its own, as the
 *    median over 250 ms slices, which holds steady on a shared host where
 *    wall-clock throughput does not (both are recorded). Runs without the
 *    profiler and with a Recorder following it (as `kiln record --pid P`) at
 *    99 Hz and 999 Hz, and following every Python process (as `kiln record
 *    --all`) at 99 Hz, are interleaved off, on, off, on, ...; each "on" run is
 *    compared to the mean of the "off" runs either side of it, and the median
 *    ratio over rounds is reported.
 * 2. BPF run time per sample. With kernel.bpf_stats_enabled=1 the kernel
 *    accounts the sampler program's run time. The program runs at every tick
 *    of every process and returns early for unregistered ones, so the cost of
 *    an early return is measured first with nothing registered, and the cost
 *    of a sample of the workload is
 *      (run time - early returns x their mean cost) / samples of the workload.
 *    Measured on test/workloads/recursion.py (spinning at the leaf of a stack
 *    DEPTH + 2 frames deep) for every available CPython 3.9-3.14, at 50 and
 *    2,000 frames; then again with the kernel timing each stage of a sample
 *    (thread state, walk, code ids, first-sight events, store, count), and,
 *    for "before", with the same bench of main before issue 10 (its own tree
 *    and BPF object, kit/before.ts), in the same run.
 * 3. First sight: test/workloads/churn.py recorded with the kernel copying
 *    each new code object's names and line table into its event, and with
 *    userspace reading it from the process instead: frames left unnamed, the
 *    cost of an event in the kernel and in userspace.
 * 4. Kernel counters (drops must be 0) and the sampler's maps as the kernel
 *    sizes them (from /proc/self/fdinfo while a recorder is live).
 *
 * Runs disturbed by another perf_event BPF program (another kiln, a test) are
 * marked, and left out of the overhead ratios while clean pairs remain; the
 * bench waits up to KILN_BENCH_WAIT_SECONDS in all for such programs to go.
 *
 * Knobs (environment): KILN_BENCH_ROUNDS (4), KILN_BENCH_RUN_SECONDS (4),
 * KILN_BENCH_SAMPLE_SECONDS (4), KILN_BENCH_WAIT_SECONDS (30),
 * KILN_BENCH_BEFORE (a git revision for the "before" figures, or none),
 * KILN_BENCH_PARTS (overhead,before,runtime,first-sight).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KernelStats, StatName } from '../bpf/abi.js';
import { STAT_NAMES } from '../bpf/abi.js';
import { requireCapabilities } from '../bpf/capabilities.js';
import { koffi, libbpf } from '../bpf/libbpf.js';
import type { BpfRunStats } from '../bpf/sampler.js';
import { SYNTHETIC, totalSamples } from '../profile/profile.js';
import { Recorder, type ProcessProfile } from '../unwinder/recorder.js';
import { BEFORE_REVISION, checkoutBefore } from '../kit/before.js';
import { startWorkload } from '../kit/harness.js';
import { misnamedFrames } from '../kit/names.js';
import { hostPython, pythonFor, stageWorkload, type PythonInterpreter } from '../kit/pythons.js';

export type BenchResults = Record<string, number | string>;

const REPO = join(import.meta.dirname, '..');
const THROUGHPUT = join(REPO, 'bench', 'workloads', 'throughput.py');
const VERSIONS = ['3.9', '3.10', '3.11', '3.12', '3.13', '3.14'];
const DEPTHS = [50, 2000];
/** recursion.py's stack: <module> and main above DEPTH recurse frames */
const EXTRA_FRAMES = 2;
const BPF_STATS = '/proc/sys/kernel/bpf_stats_enabled';
const MAX_SAMPLE_RATE = '/proc/sys/kernel/perf_event_max_sample_rate';

const envNumber = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

const say = (m: string) => console.log(m);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function recorderOptions(pids: number[], frequency: number, all = false, log: (m: string) => void = () => {}) {
  return { pids, all, frequency, maxDepth: 4096, drainIntervalMs: 1000, scanIntervalMs: 1000, log };
}

const samplesOf = (parts: ProcessProfile[], pid: number): number =>
  parts.filter((p) => p.pid === pid).reduce((n, p) => n + totalSamples(p.profile), 0);

const SYNTHETIC_NAMES = new Set<string>(Object.values(SYNTHETIC));

/**
 * Python frames per sample of `pid`, from the recorded stacks (the kernel's
 * counters are read one by one and can disagree by a sample mid-walk).
 * Samples the kernel flagged (no thread state, lost) carry one synthetic
 * frame and are left out.
 */
function framesPerSampleOf(parts: ProcessProfile[], pid: number): number {
  let frames = 0;
  let n = 0;
  for (const s of parts.filter((p) => p.pid === pid).flatMap((p) => p.profile.samples)) {
    if (s.frames.some((f) => SYNTHETIC_NAMES.has(f.name))) continue;
    frames += s.frames.length * s.count;
    n += s.count;
  }
  return n ? frames / n : NaN;
}

// ---------------------------------------------------------------- kernel state

/** Kernel counters summed over the recorders the bench ran. */
const kernelTotals: KernelStats = Object.fromEntries(STAT_NAMES.map((n) => [n, 0])) as KernelStats;
function addKernel(k: KernelStats): void {
  for (const n of STAT_NAMES) kernelTotals[n] += k[n];
}

interface MapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  memlock: number;
}

/**
 * The BPF maps this process holds open, as the kernel reports them (fdinfo),
 * named by bpftool when it is installed. Only one recorder is live when this
 * is called, so these are its maps.
 */
function liveMaps(): MapInfo[] {
  const byId = new Map<number, Omit<MapInfo, 'name'>>();
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:bpf-map') continue;
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const field = (k: string) => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    byId.set(field('map_id'), {
      type: field('map_type'),
      keySize: field('key_size'),
      valueSize: field('value_size'),
      maxEntries: field('max_entries'),
      memlock: field('memlock'),
    });
  }
  const names = new Map<number, string>();
  const r = spawnSync('bpftool', ['-j', 'map', 'show'], { encoding: 'utf8' });
  if (r.status === 0) {
    for (const m of JSON.parse(r.stdout) as { id: number; name?: string }[]) if (m.name) names.set(m.id, m.name);
  }
  return [...byId.entries()]
    .map(([id, m]) => ({ name: names.get(id) ?? `map#${id}`, ...m }))
    .filter((m) => m.name.startsWith('kiln_') || m.name.startsWith('map#'))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Ids of the BPF programs this process holds. */
function ownProgramIds(): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

let bpftoolMissing = false;
/**
 * perf_event BPF programs loaded by someone else (another profiler, another
 * kiln, a test run): they run at every tick too and, if they follow the
 * workload, walk its stack, which would be counted as ours. Undefined when
 * bpftool is not there to ask.
 */
function foreignSamplers(): string[] | undefined {
  const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) {
    bpftoolMissing = true;
    return undefined;
  }
  const own = ownProgramIds();
  return (JSON.parse(r.stdout) as { id: number; type: string; name?: string }[])
    .filter((p) => p.type === 'perf_event' && !own.has(p.id))
    .map((p) => `${p.name ?? 'prog'}#${p.id}`);
}

/** Seconds the bench may spend in all waiting for foreign samplers to go. */
let waitBudgetMs = envNumber('KILN_BENCH_WAIT_SECONDS', 30) * 1000;
const foreignSeen = new Set<string>();

/** Waits (within the budget) until no foreign sampler is loaded; true if none is. */
async function waitForQuiet(): Promise<boolean> {
  let foreign = foreignSamplers();
  if (!foreign) return true;
  if (foreign.length) say(`  (waiting for other samplers to unload: ${foreign.join(', ')})`);
  while (foreign.length && waitBudgetMs > 0) {
    await sleep(1000);
    waitBudgetMs -= 1000;
    foreign = foreignSamplers() ?? [];
  }
  for (const f of foreign) foreignSeen.add(f);
  return foreign.length === 0;
}

function stillQuiet(): boolean {
  const foreign = foreignSamplers() ?? [];
  for (const f of foreign) foreignSeen.add(f);
  return foreign.length === 0;
}

// ---------------------------------------------------------------- 1. overhead

type Mode = 'off' | 'pid99' | 'pid999' | 'all99';
const MODES: Record<Exclude<Mode, 'off'>, { frequency: number; all: boolean; label: string }> = {
  pid99: { frequency: 99, all: false, label: '--pid, 99 Hz' },
  pid999: { frequency: 999, all: false, label: '--pid, 999 Hz' },
  all99: { frequency: 99, all: true, label: '--all, 99 Hz' },
};

interface ThroughputRun {
  mode: Mode;
  /** median over 250 ms slices of iterations per CPU-second: what is compared */
  ips: number;
  /** iterations per CPU-second over the whole run */
  cpuIps: number;
  /** iterations per wall-clock second: shown, too noisy on a shared host */
  wallIps: number;
  /** share of the wall time the workload was on a CPU */
  cpuShare: number;
  /** the process's CPU time in all, warm-up included (samples cover that too) */
  processCpuSeconds: number;
  /** Python frames per sample of the workload, from the kernel's counters */
  framesPerSample: number;
  /** samples recorded of the workload */
  samples: number;
  /** processes the recorder followed (more than 1 with --all on a busy host) */
  followed: number;
  /** another perf_event BPF program was loaded at the start or the end */
  disturbed: boolean;
}

const mapsSeen = new Map<number, MapInfo[]>();

async function throughputRun(py: PythonInterpreter, mode: Mode, seconds: number): Promise<ThroughputRun> {
  let quiet = await waitForQuiet();
  const [cmd, ...pre] = py.command;
  const proc = spawn(cmd!, [...pre, stageWorkload(py, THROUGHPUT), String(seconds), '0.5'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  let recorder: Recorder | undefined;
  try {
    const first = await lines.next();
    if (first.done) throw new Error(`throughput.py exited early (${await exited})`);
    const pid = Number((JSON.parse(first.value) as { pid: number }).pid);
    let followed = 0;
    if (mode !== 'off') {
      const m = MODES[mode];
      recorder = Recorder.start(
        recorderOptions([pid], m.frequency, m.all, (msg) => {
          if (msg.startsWith('following pid')) followed++;
        }),
      );
      if (!mapsSeen.has(m.frequency)) mapsSeen.set(m.frequency, liveMaps());
    }
    proc.stdin!.write('go\n');
    const result = await lines.next();
    if (result.done) throw new Error(`throughput.py exited without a result (${await exited})`);
    const res = JSON.parse(result.value) as {
      iterations_per_second: number;
      iterations_per_cpu_second: number;
      slice_median_per_cpu_second: number;
      seconds: number;
      cpu_seconds: number;
      process_cpu_seconds: number;
    };
    quiet = stillQuiet() && quiet;
    let samples = 0;
    let framesPerSample = NaN;
    if (recorder) {
      const parts = await recorder.stop();
      const k = recorder.kernelStats();
      addKernel(k);
      samples = samplesOf(parts, pid);
      framesPerSample = framesPerSampleOf(parts, pid);
      recorder = undefined;
    }
    return {
      mode,
      ips: res.slice_median_per_cpu_second,
      cpuIps: res.iterations_per_cpu_second,
      wallIps: res.iterations_per_second,
      cpuShare: res.cpu_seconds / res.seconds,
      processCpuSeconds: res.process_cpu_seconds,
      framesPerSample,
      samples,
      followed,
      disturbed: !quiet,
    };
  } finally {
    if (recorder) await recorder.stop().catch(() => undefined);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  }
}

async function benchOverhead(out: BenchResults): Promise<void> {
  const rounds = envNumber('KILN_BENCH_ROUNDS', 4);
  const seconds = envNumber('KILN_BENCH_RUN_SECONDS', 4);
  const py = hostPython();
  const onModes = Object.keys(MODES) as Exclude<Mode, 'off'>[];
  // off, A, off, B, off, C, off, A, ...: every "on" run has an "off" run on each side
  const order: Mode[] = ['off'];
  for (let r = 0; r < rounds; r++) for (const m of onModes) order.push(m, 'off');
  say(`\n== overhead: throughput.py on ${py.label}, ${order.length} runs of ${seconds} s (+0.5 s warm-up), interleaved`);
  say('   (compared: median over 250 ms slices of iterations per CPU-second of the workload; the whole run per');
  say('   CPU-second and per wall-clock second, and the CPU share the workload got, are shown too)');

  const runs: ThroughputRun[] = [];
  for (const [i, mode] of order.entries()) {
    const r = await throughputRun(py, mode, seconds);
    runs.push(r);
    const extra =
      (mode === 'off' ? '' : `  ${r.samples} samples${r.followed > 1 ? `, ${r.followed} processes followed` : ''}`) +
      (r.disturbed ? '  [another sampler was loaded]' : '');
    say(
      `  ${String(i + 1).padStart(2)}/${order.length} ${(mode === 'off' ? 'off' : MODES[mode].label).padEnd(14)}` +
        ` ${fmtInt(r.ips).padStart(9)} it/cpu-s (slice median)  ${fmtInt(r.cpuIps).padStart(9)} it/cpu-s  ${fmtInt(r.wallIps).padStart(9)} it/s  on CPU ${(r.cpuShare * 100).toFixed(0).padStart(3)} %${extra}`,
    );
  }

  const cleanOffs = runs.filter((r) => r.mode === 'off' && !r.disturbed);
  const offs = cleanOffs.length >= 2 ? cleanOffs : runs.filter((r) => r.mode === 'off');
  out['overhead.python'] = py.label;
  out['overhead.run_seconds'] = seconds;
  out['overhead.rounds'] = rounds;
  out['overhead.off.median_ips_cpu'] = Math.round(median(offs.map((r) => r.ips)));
  out['overhead.off.median_ips_wall'] = Math.round(median(offs.map((r) => r.wallIps)));
  out['overhead.off.spread_pct'] = round(spread(offs.map((r) => r.ips)) * 100, 2);
  out['overhead.off.wall_spread_pct'] = round(spread(offs.map((r) => r.wallIps)) * 100, 2);
  out['overhead.min_cpu_share'] = round(Math.min(...runs.map((r) => r.cpuShare)), 3);
  say('\n  mode             ratio with/without, per CPU-second (median; each round)   slowdown   wall-clock ratio   samples/run');
  for (const mode of onModes) {
    const triplets = runs.flatMap((r, i) => (r.mode === mode ? [[runs[i - 1]!, r, runs[i + 1]!] as const] : []));
    const clean = triplets.filter((t) => t.every((r) => !r.disturbed));
    // pairs disturbed by another sampler are left out while any clean one is left
    const used = clean.length ? clean : triplets;
    const ratios = used.map(([before, r, after]) => r.ips / ((before.ips + after.ips) / 2));
    const wallRatios = used.map(([before, r, after]) => r.wallIps / ((before.wallIps + after.wallIps) / 2));
    const mine = runs.filter((r) => r.mode === mode);
    const ratio = median(ratios);
    const key = `overhead.${mode}`;
    out[`${key}.ratio`] = round(ratio, 4);
    out[`${key}.slowdown_pct`] = round((1 - ratio) * 100, 2);
    out[`${key}.ratios`] = ratios.map((x) => x.toFixed(4)).join(' ');
    out[`${key}.pairs_used`] = used.length;
    out[`${key}.pairs_disturbed`] = triplets.length - clean.length;
    if (!clean.length) out[`${key}.disturbed`] = 'every pair ran alongside another sampler';
    out[`${key}.wall_ratio`] = round(median(wallRatios), 4);
    out[`${key}.median_ips_cpu`] = Math.round(median(mine.map((r) => r.ips)));
    out[`${key}.samples_per_run`] = Math.round(median(mine.map((r) => r.samples)));
    out[`${key}.samples_per_cpu_second`] = round(median(mine.map((r) => r.samples / r.processCpuSeconds)), 1);
    out[`${key}.frames_per_sample`] = round(median(mine.map((r) => r.framesPerSample)), 1);
    if (mode === 'all99') out[`${key}.processes_followed`] = Math.max(...mine.map((r) => r.followed));
    say(
      `  ${MODES[mode].label.padEnd(16)} ${ratio.toFixed(4)}  (${ratios.map((x) => x.toFixed(4)).join(', ')})`.padEnd(76) +
        `${((1 - ratio) * 100).toFixed(2).padStart(6)} %   ${median(wallRatios).toFixed(4).padStart(16)}   ${Math.round(median(mine.map((r) => r.samples)))}` +
        (used.length < triplets.length ? `   (${triplets.length - used.length} disturbed pair(s) left out)` : '') +
        (!clean.length ? '   (! every pair disturbed)' : ''),
    );
  }
  say(
    `  off runs: median ${fmtInt(median(offs.map((r) => r.ips)))} it/cpu-s, spread ${out['overhead.off.spread_pct']} %` +
      ` (wall-clock spread ${out['overhead.off.wall_spread_pct']} %); least CPU share of any run ${(Number(out['overhead.min_cpu_share']) * 100).toFixed(0)} %`,
  );
}

/** (max - min) / median */
function spread(xs: number[]): number {
  return (Math.max(...xs) - Math.min(...xs)) / median(xs);
}

const fmtInt = (x: number) => Math.round(x).toLocaleString('en-US');

// ---------------------------------------------------------------- 2. BPF run time

interface Snapshot {
  run: BpfRunStats;
  kernel: KernelStats;
}
const snap = (r: Recorder): Snapshot => ({ run: r.runStats(), kernel: r.kernelStats() });

/** Mean cost of a run that returns early (nothing of this process is registered). */
async function earlyReturnCost(seconds: number): Promise<{ nsPerRun: number; runs: number }> {
  const r = Recorder.start(recorderOptions([], 99));
  try {
    await sleep(300);
    const a = r.runStats();
    await sleep(seconds * 1000);
    const b = r.runStats();
    const runs = b.runCount - a.runCount;
    return { nsPerRun: runs ? (b.runTimeNs - a.runTimeNs) / runs : NaN, runs };
  } finally {
    await r.stop();
  }
}

/** Per sample of the workload, from the kernel's counters. */
interface Stages {
  /** µs finding the thread state, walking (of which identifying code objects, and reporting first sights), storing, counting */
  thread: number;
  walk: number;
  code: number;
  events: number;
  store: number;
  count: number;
  frameReads: number;
  codeReads: number;
  /** share of samples whose stack was stored already in the generation */
  reused: number;
}

interface WalkCost {
  samples: number;
  stages: Stages;
  /** the recorder's own CPU (this process) over the window, per sample */
  userUs: number;
  framesPerSample: number;
  /** all of the program's run time over the window, per sample of the workload */
  grossUs: number;
  /** less the early returns for everything else */
  netUs: number;
  /** the program's own mean over every run */
  rawNsPerRun: number;
  runs: number;
  depthSeen: number;
  tstateWalks: number;
  noTstate: number;
  disturbed: boolean;
}

async function walkCost(py: PythonInterpreter, depth: number, seconds: number, earlyNs: number, timing = false, sampleRing = false): Promise<WalkCost> {
  const quiet = await waitForQuiet();
  const w = await startWorkload(py, 'recursion.py', [String(seconds + 15), String(depth)]);
  try {
    const r = Recorder.start({ ...recorderOptions([w.pid], 99), sampleRing });
    r.setStageTiming(timing);
    let cpu: NodeJS.CpuUsage;
    let a: Snapshot;
    let b: Snapshot;
    let parts: ProcessProfile[];
    let disturbed = false;
    try {
      await sleep(500); // thread state cached, chunks stored once
      a = snap(r);
      const cpu0 = process.cpuUsage();
      await sleep(seconds * 1000);
      cpu = process.cpuUsage(cpu0);
      b = snap(r);
    } finally {
      disturbed = !quiet || !stillQuiet();
      parts = await r.stop();
    }
    addKernel(r.kernelStats());
    const dT = b.run.runTimeNs - a.run.runTimeNs;
    const dN = b.run.runCount - a.run.runCount;
    const S = b.kernel.samples - a.kernel.samples;
    const noTstate = b.kernel.no_tstate - a.kernel.no_tstate;
    const stacks = parts.filter((p) => p.pid === w.pid).flatMap((p) => p.profile.samples);
    const depthSeen = stacks.reduce((m, s) => Math.max(m, s.frames.length), 0);
    const per = (k: StatName, scale = 1) => (b.kernel[k] - a.kernel[k]) / S / scale;
    return {
      samples: S,
      userUs: (cpu.user + cpu.system) / S,
      stages: {
        thread: per('ns_thread', 1000),
        walk: per('ns_walk', 1000),
        code: per('ns_code', 1000),
        events: per('ns_events', 1000),
        store: per('ns_store', 1000),
        count: per('ns_count', 1000),
        frameReads: per('frame_reads'),
        codeReads: per('code_reads'),
        reused: per('stacks_reused'),
      },
      framesPerSample: framesPerSampleOf(parts, w.pid),
      grossUs: dT / S / 1000,
      netUs: (dT - (dN - S) * earlyNs) / S / 1000,
      rawNsPerRun: dT / dN,
      runs: dN,
      depthSeen,
      tstateWalks: b.kernel.tstate_walks - a.kernel.tstate_walks,
      noTstate,
      disturbed,
    };
  } finally {
    await w.stop();
  }
}

/**
 * Run-time statistics for as long as the returned fd is open: a reference of
 * its own on the kernel's switch, so another process setting
 * kernel.bpf_stats_enabled back to 0 meanwhile (say, restoring its own
 * change) does not stop the counting. Undefined if libbpf cannot do it.
 */
function holdBpfStats(): number | undefined {
  try {
    const enable = koffi.load('libbpf.so.1').func('int bpf_enable_stats(int type)');
    const fd = enable(0 /* BPF_STATS_RUN_TIME */) as number;
    return fd >= 0 ? fd : undefined;
  } catch {
    return undefined;
  }
}

async function benchRunTime(out: BenchResults): Promise<void> {
  const seconds = envNumber('KILN_BENCH_SAMPLE_SECONDS', 4);
  const old = readFileSync(BPF_STATS, 'utf8').trim();
  let statsFd: number | undefined;
  const restore = () => {
    if (statsFd !== undefined) libbpf().close(statsFd);
    statsFd = undefined;
    writeFileSync(BPF_STATS, old);
  };
  const onSignal = () => {
    restore();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  writeFileSync(BPF_STATS, '1');
  statsFd = holdBpfStats();
  try {
    say(`\n== BPF run time per sample (kernel.bpf_stats_enabled=1 for this part; was ${old}), ${seconds} s per stack at 99 Hz`);
    const early = await earlyReturnCost(3);
    if (!early.runs) throw new Error('the kernel counted no runs of the sampler: BPF run-time statistics are not working here');
    out['bpf.early_return_ns'] = round(early.nsPerRun, 1);
    say(`  early return (process not registered): ${early.nsPerRun.toFixed(0)} ns per run over ${early.runs} runs`);

    stageRows.length = 0;
    const available = VERSIONS.map((v) => ({ v, py: pythonFor(v) }));
    const rows: string[][] = [];
    if (statsFd === undefined) say('  (no BPF_ENABLE_STATS fd: counting relies on the sysctl alone)');
    for (const { v, py } of available) {
      if (!py) {
        say(`  ${v}: not available (bash test/setup-pythons.sh, or KILN_PYTHON_${v.replace('.', '_')})`);
        out[`bpf.${v}`] = 'not available';
        continue;
      }
      const costs: WalkCost[] = [];
      for (const depth of DEPTHS) {
        const c = await walkCost(py, depth, seconds, early.nsPerRun);
        costs.push(c);
        const k = `bpf.${v}.d${depth}`;
        if (!c.runs) {
          // nothing counted: run-time statistics were off
          out[`${k}.us_per_sample`] = 'not counted (bpf stats were off)';
          say(`  ${v.padEnd(5)} ${String(depth + EXTRA_FRAMES).padStart(5)} frames: no runs counted (kernel.bpf_stats_enabled turned off meanwhile?)`);
          continue;
        }
        out[`${k}.us_per_sample`] = round(c.netUs, 2);
        out[`${k}.gross_us_per_sample`] = round(c.grossUs, 2);
        out[`${k}.raw_ns_per_run`] = round(c.rawNsPerRun, 1);
        out[`${k}.runs`] = c.runs;
        out[`${k}.samples`] = c.samples;
        out[`${k}.frames_per_sample`] = round(c.framesPerSample, 1);
        if (c.disturbed) out[`${k}.disturbed`] = 'another sampler was loaded';
        say(
          `  ${v.padEnd(5)} ${String(depth + EXTRA_FRAMES).padStart(5)} frames: ${c.netUs.toFixed(2).padStart(7)} µs/sample` +
            ` (gross ${c.grossUs.toFixed(2)}; raw ${c.rawNsPerRun.toFixed(0)} ns/run over ${c.runs} runs;` +
            ` ${c.samples} samples, ${c.framesPerSample.toFixed(1)} frames each, deepest ${c.depthSeen};` +
            ` ${c.tstateWalks} thread-list walks${c.noTstate ? `, ${c.noTstate} without a thread state` : ''})` +
            (c.disturbed ? ' [another sampler was loaded]' : ''),
        );
        if (Math.round(c.framesPerSample) !== depth + EXTRA_FRAMES)
          say(`    ! expected ${depth + EXTRA_FRAMES} frames per sample`);
        if (c.samples < seconds * 30) say(`    ! few samples: the workload got little CPU (busy host?)`);
        // the same again with the kernel timing each stage (which costs a few clock reads)
        const t = await walkCost(py, depth, seconds, early.nsPerRun, true);
        const st = t.stages;
        for (const [name, v] of Object.entries(st)) out[`${k}.stage.${name}`] = round(v, name === 'reused' ? 3 : 2);
        out[`${k}.timed_us_per_sample`] = round(t.netUs, 2);
        stageRows.push([
          `${v} ${depth + EXTRA_FRAMES}`,
          t.netUs.toFixed(2),
          st.thread.toFixed(2),
          st.walk.toFixed(2),
          st.code.toFixed(2),
          st.events.toFixed(2),
          st.store.toFixed(2),
          st.count.toFixed(2),
          st.frameReads.toFixed(1),
          st.codeReads.toFixed(1),
          `${(st.reused * 100).toFixed(0)} %`,
        ]);
      }
      const [shallow, deep] = costs as [WalkCost, WalkCost];
      if (!shallow.runs || !deep.runs) continue;
      const perFrameNs = ((deep.netUs - shallow.netUs) * 1000) / (deep.framesPerSample - shallow.framesPerSample);
      out[`bpf.${v}.ns_per_frame`] = round(perFrameNs, 1);
      const before = (d: number) => out[`before.bpf.${v}.d${d}.us_per_sample`];
      const vs = (d: number, now: number) => (typeof before(d) === 'number' ? `${Number(before(d)).toFixed(2)} → ${now.toFixed(2)} (${(Number(before(d)) / now).toFixed(1)}x)` : now.toFixed(2));
      rows.push([`${v} (${py.label.startsWith('chroot') ? 'Debian' : py.label.startsWith('host') ? 'host' : 'pyenv'})`, vs(DEPTHS[0]!, shallow.netUs), vs(DEPTHS[1]!, deep.netUs), perFrameNs.toFixed(1)]);
    }
    say('\n' + table(['CPython', `µs/sample, ${DEPTHS[0]! + EXTRA_FRAMES} frames (before → after)`, `µs/sample, ${DEPTHS[1]! + EXTRA_FRAMES} frames (before → after)`, 'ns/frame'], rows));
    say(`\nstage breakdown (µs per sample, timed in a second run; walk includes code ids, code includes first-sight events):\n` + table(STAGE_HEAD, stageRows));

    // The other way to take stacks to userspace: every sample through a ring
    // buffer, hashed there, against stacks stored once per generation.
    const ringRows: string[][] = [];
    for (const v of ['3.11', '3.13']) {
      const py = pythonFor(v);
      if (!py) continue;
      for (const depth of DEPTHS) {
        for (const ring of [false, true]) {
          const c = await walkCost(py, depth, seconds, early.nsPerRun, true, ring);
          const k = `stacks.${v}.d${depth}.${ring ? 'ring' : 'stored'}`;
          out[`${k}.timed_us_per_sample`] = round(c.netUs, 2);
          out[`${k}.store_count_us`] = round(c.stages.store + c.stages.count, 2);
          out[`${k}.userspace_us_per_sample`] = round(c.userUs, 1);
          ringRows.push([
            `${v} ${depth + EXTRA_FRAMES}, ${ring ? 'ring buffer' : 'stored once'}`,
            c.netUs.toFixed(2),
            (c.stages.store + c.stages.count).toFixed(2),
            c.userUs.toFixed(1),
          ]);
        }
      }
    }
    say(`\nstacks to userspace: stored once per generation (memo + chunks + counts) vs every sample through a ring buffer:\n` +
      table(['stack, how', 'BPF µs/sample (timed)', 'store + count µs', 'userspace µs/sample'], ringRows));
  } finally {
    restore();
    process.off('SIGINT', onSignal);
  }
}

const STAGE_HEAD = ['stack', 'timed µs', 'thread', 'walk', 'code ids', 'events', 'store', 'count', 'frame reads', 'code reads', 'stack reused'];
const stageRows: string[][] = [];

// ---------------------------------------------------------------- 3. first sight

const CHURN_GENERATIONS = 12;

interface FirstSight {
  samples: number;
  unknownShare: number;
  misnamed: number;
  events: number;
  /** in the BPF program, per first sight reported */
  kernelUs: number;
  /** in userspace, naming it */
  userUs: number;
  /** reads of the process's memory per first sight */
  reads: number;
  /** the recorder's own CPU over the run, share of one core (its polling included) */
  cpuShare: number;
}

/**
 * test/workloads/churn.py (modules written, imported, run and dropped,
 * generation after generation) recorded with the kernel copying each new
 * code object's names and line table into its first-sight event, or with
 * userspace reading the code object from the process as soon as it polls
 * the event (every 10 ms).
 */
async function churnRun(py: PythonInterpreter, copyObjects: boolean): Promise<FirstSight> {
  const dir = `/tmp/kiln-bench-churn-${process.pid}`;
  rmSync(join(py.root, dir), { recursive: true, force: true });
  const w = await startWorkload(py, 'churn.py', [String(CHURN_GENERATIONS), dir, '--wait']);
  try {
    const r = Recorder.start({ ...recorderOptions([w.pid], 99), copyObjects, eventPollMs: 10 });
    r.setStageTiming(true);
    const done = new Promise<void>((resolve) => w.proc.stdout!.on('data', (d: Buffer) => d.toString().includes('"done"') && resolve()));
    const k0 = r.kernelStats();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    w.proc.kill('SIGUSR1');
    await done;
    const cpu = process.cpuUsage(cpu0);
    const wall = Number(process.hrtime.bigint() - t0) / 1e3;
    const parts = await r.stop();
    const k = r.kernelStats();
    const code = r.codeStats();
    const samples = parts.filter((p) => p.pid === w.pid).flatMap((p) => p.profile.samples);
    const all = samples.reduce((n, s) => n + s.count, 0);
    const unknown = samples.filter((s) => s.frames.some((f) => f.name === SYNTHETIC.unknownCode)).reduce((n, s) => n + s.count, 0);
    const events = k.code_events - k0.code_events;
    return {
      samples: all,
      unknownShare: unknown / Math.max(1, all),
      misnamed: misnamedFrames(samples, py.root).length,
      events,
      kernelUs: (k.ns_events - k0.ns_events) / Math.max(1, events) / 1000,
      userUs: code.learnNs / Math.max(1, code.events) / 1000,
      reads: code.reads / Math.max(1, code.events),
      cpuShare: (cpu.user + cpu.system) / wall,
    };
  } finally {
    await w.stop();
    rmSync(join(py.root, dir), { recursive: true, force: true });
  }
}

async function benchFirstSight(out: BenchResults): Promise<void> {
  say(`\n== first sight: ${CHURN_GENERATIONS} generations of churn.py, the kernel copying names and line tables vs userspace reading code objects`);
  const rows: string[][] = [];
  for (const v of ['3.11', '3.13']) {
    const py = pythonFor(v);
    if (!py) continue;
    for (const copy of [true, false]) {
      await waitForQuiet();
      const r = await churnRun(py, copy);
      const mode = copy ? 'kernel copies' : 'userspace reads';
      const k = `first_sight.${v}.${copy ? 'copy' : 'read'}`;
      out[`${k}.unknown_pct`] = round(r.unknownShare * 100, 2);
      out[`${k}.misnamed`] = r.misnamed;
      out[`${k}.events`] = r.events;
      out[`${k}.kernel_us_per_event`] = round(r.kernelUs, 2);
      out[`${k}.user_us_per_event`] = round(r.userUs, 1);
      out[`${k}.reads_per_event`] = round(r.reads, 2);
      out[`${k}.recorder_cpu_pct`] = round(r.cpuShare * 100, 2);
      rows.push([`${v}, ${mode}`, String(r.samples), `${(r.unknownShare * 100).toFixed(2)} %`, String(r.misnamed), String(r.events), r.kernelUs.toFixed(2), r.userUs.toFixed(1), r.reads.toFixed(2), `${(r.cpuShare * 100).toFixed(2)} %`]);
    }
  }
  say(table(['CPython, first sight', 'samples', '[unknown code]', 'misnamed', 'events', 'kernel µs/event', 'userspace µs/event', 'reads/event', 'recorder CPU'], rows));
}

/**
 * "Before": the run-time part of this bench as the sampler was before the
 * boundary was rebuilt (kit/before.ts), from its own tree and BPF object,
 * with its own bench, in this run and by the same method, so the two are
 * compared under the same conditions.
 */
async function benchBefore(out: BenchResults): Promise<void> {
  const before = checkoutBefore();
  if (!before) {
    out['before.revision'] = `${process.env.KILN_BENCH_BEFORE ?? BEFORE_REVISION} (none, or not in this clone: skipped)`;
    say('\n== before: skipped (KILN_BENCH_BEFORE=none, or the revision is not in this clone)');
    return;
  }
  out['before.revision'] = before.revision;
  try {
    say(`\n== before: the same measurement on revision ${before.revision} (its own tree, BPF object and bench)`);
    // its overhead part is cut short: only its run-time figures are used
    const env = { ...process.env, KILN_BENCH_ROUNDS: '1', KILN_BENCH_RUN_SECONDS: '1' };
    const r = spawnSync(process.execPath, [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'bench/run.ts', '--only', 'sampler'], {
      cwd: before.dir,
      env,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    const lines = r.stdout.split('\n').filter((l) => /^\s+3\.\d+\s+\d+ frames:|early return/.test(l));
    for (const l of lines) say(`  before:${l}`);
    const results = JSON.parse(readFileSync(join(before.dir, 'build', 'bench-results.json'), 'utf8')) as { sampler?: BenchResults };
    for (const [k, v] of Object.entries(results.sampler ?? {})) if (k.startsWith('bpf.')) out[`before.${k}`] = v;
    if (r.status !== 0) say(`  ! the before bench exited with ${r.status}:\n${r.stderr.slice(-2000)}`);
  } finally {
    before.cleanup();
  }
}

/**
 * What part 2 says part 1 should have found: samples per CPU-second of the
 * workload times the cost of a sample of its depth on 3.11 (linear between
 * the two depths measured). The BPF program's run time only: the perf
 * interrupt itself and cache disturbance come on top.
 */
function predictOverhead(out: BenchResults): void {
  const c0 = Number(out[`bpf.3.11.d${DEPTHS[0]}.us_per_sample`]);
  const perFrame = Number(out['bpf.3.11.ns_per_frame']) / 1000;
  const f0 = Number(out[`bpf.3.11.d${DEPTHS[0]}.frames_per_sample`]);
  if (!Number.isFinite(c0) || !Number.isFinite(perFrame)) return;
  say('\n== cross-check: BPF run time per sample x samples per CPU-second (3.11)');
  for (const mode of ['pid99', 'pid999'] as const) {
    const rate = Number(out[`overhead.${mode}.samples_per_cpu_second`]);
    const frames = Number(out[`overhead.${mode}.frames_per_sample`]);
    const us = c0 + (frames - f0) * perFrame;
    const pct = (rate * us) / 1e4;
    out[`overhead.${mode}.bpf_share_pct`] = round(pct, 3);
    say(
      `  ${MODES[mode].label.padEnd(14)} ${rate.toFixed(1)} samples/cpu-s x ${us.toFixed(1)} µs (${frames.toFixed(0)} frames)` +
        ` = ${pct.toFixed(2)} % of the CPU in the BPF program; measured slowdown ${Number(out[`overhead.${mode}.slowdown_pct`]).toFixed(2)} %`,
    );
  }
}

// ---------------------------------------------------------------- report

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The sampler's figures as a block to paste into a README. */
export function samplerSummary(r: BenchResults): string {
  const pct = (k: string) => `${Number(r[`overhead.${k}.slowdown_pct`]).toFixed(2)} %`;
  const lines = [
    `Overhead on a CPU-bound CPython 3.11 loop (a 30-frame call chain), iterations per CPU-second`,
    `(median of 250 ms slices),`,
    `with / without Kiln, median over interleaved runs of ${r['overhead.run_seconds']} s, each "with" run against the` +
      ` "without" runs either side (off-run spread ${r['overhead.off.spread_pct']} %):`,
    '',
    table(
      ['mode', 'throughput ratio', 'slowdown', 'pairs used', 'BPF program share'],
      (['pid99', 'pid999', 'all99'] as const).map((m) => [
        MODES[m].label,
        Number(r[`overhead.${m}.ratio`]).toFixed(4),
        pct(m),
        `${r[`overhead.${m}.pairs_used`]} of ${r['overhead.rounds']}${r[`overhead.${m}.disturbed`] ? ' (all disturbed)' : ''}`,
        r[`overhead.${m}.bpf_share_pct`] === undefined ? '' : `${Number(r[`overhead.${m}.bpf_share_pct`]).toFixed(2)} %`,
      ]),
    ),
    '',
    `(Pairs run while another perf_event BPF program was loaded are left out while clean ones remain.` +
      ` BPF program share: samples per CPU-second x the run time per sample measured below, at that depth.)`,
    '',
    `BPF program run time per sample (kernel.bpf_stats_enabled), stack of recursion.py spinning at the leaf:`,
    '',
  ];
  const rows = VERSIONS.filter((v) => typeof r[`bpf.${v}.ns_per_frame`] === 'number').map((v) => [
    v,
    Number(r[`bpf.${v}.d${DEPTHS[0]}.us_per_sample`]).toFixed(2),
    Number(r[`bpf.${v}.d${DEPTHS[1]}.us_per_sample`]).toFixed(2),
    Number(r[`bpf.${v}.ns_per_frame`]).toFixed(1),
  ]);
  lines.push(
    table(['CPython', `${DEPTHS[0]! + EXTRA_FRAMES} frames (µs)`, `${DEPTHS[1]! + EXTRA_FRAMES} frames (µs)`, 'per frame (ns)'], rows),
    '',
    `Early return for processes not followed: ${r['bpf.early_return_ns']} ns per tick. ` +
      `Kernel: ${r['kernel.count_drops']} samples and ${r['kernel.chunk_drops']} stacks dropped, ${r['kernel.read_errors']} unreadable walks.`,
    r['maps.99hz.summary'] === r['maps.999hz.summary']
      ? `Maps at 99 and 999 Hz: ${r['maps.99hz.summary']}.`
      : `Maps at 99 Hz: ${r['maps.99hz.summary']}; at 999 Hz: ${r['maps.999hz.summary']}.`,
    `(${r['env.cpus']} CPUs, Linux ${r['env.kernel']}, ${r['env.cpu_model']}; load average ${r['env.loadavg_at_start']} at start;` +
      ` other samplers seen: ${r['env.foreign_samplers']})`,
  );
  return lines.join('\n');
}

/**
 * The kernel's complaints about long interrupts: the sampler runs in the
 * cpu-clock hrtimer's interrupt, and a deep walk keeps it there for a while.
 * Undefined when the kernel log cannot be read.
 */
function slowInterruptMessages(): string[] | undefined {
  const r = spawnSync('dmesg', [], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) return undefined;
  return r.stdout.split('\n').filter((l) => /hrtimer: interrupt took|perf: interrupt took too long/.test(l));
}

/** CONFIG_IRQ_TIME_ACCOUNTING of the running kernel: 'y', 'n', or 'unknown'. */
function irqTimeAccounting(): string {
  const r = spawnSync('sh', ['-c', `zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null`], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (!r.stdout) return 'unknown';
  return /^CONFIG_IRQ_TIME_ACCOUNTING=y$/m.test(r.stdout) ? 'y' : 'n';
}

function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}

export async function benchSampler(): Promise<BenchResults> {
  requireCapabilities();
  execFileSync('make', ['-s', '-C', join(REPO, 'bpf')], { stdio: 'inherit' });
  const out: BenchResults = {};
  const started = Date.now();
  const maxRateBefore = readFileSync(MAX_SAMPLE_RATE, 'utf8').trim();
  const slowBefore = slowInterruptMessages();
  out['env.cpus'] = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  out['env.kernel'] = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  out['env.cpu_model'] = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  out['env.loadavg_at_start'] = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  out['env.irq_time_accounting'] = irqTimeAccounting();
  if (out['env.irq_time_accounting'] === 'y')
    say('! this kernel has CONFIG_IRQ_TIME_ACCOUNTING=y: interrupt time (the BPF program) is not charged to the workload,' +
      ' so per-CPU-second ratios leave it out; go by the wall-clock ratios and the BPF program share instead');

  const parts = (process.env.KILN_BENCH_PARTS ?? 'overhead,before,runtime,first-sight').split(',');
  if (parts.includes('overhead')) await benchOverhead(out);
  if (parts.includes('before')) await benchBefore(out);
  if (parts.includes('runtime')) await benchRunTime(out);
  if (parts.includes('first-sight')) await benchFirstSight(out);

  predictOverhead(out);

  say('\n== kernel counters (summed over every recorder the bench ran)');
  for (const n of STAT_NAMES) out[`kernel.${n}`] = kernelTotals[n];
  say('  ' + STAT_NAMES.map((n) => `${n} ${kernelTotals[n]}`).join(', '));
  const lost = kernelTotals.count_drops + kernelTotals.chunk_drops;
  say(lost ? `  ! ${lost} samples/stacks were dropped: the maps were too small` : '  no drops');

  say('\n== sampler maps (as the kernel sized them)');
  for (const [hz, maps] of [...mapsSeen.entries()].sort((a, b) => a[0] - b[0])) {
    const total = maps.reduce((n, m) => n + m.memlock, 0);
    say(`  at ${hz} Hz (${maps.length} maps, ${formatBytes(total)} memlock):`);
    for (const m of maps) {
      say(`    ${m.name.padEnd(14)} ${String(m.maxEntries).padStart(7)} x (${m.keySize} + ${m.valueSize} B)  ${formatBytes(m.memlock).padStart(9)}`);
      out[`maps.${hz}hz.${m.name}.max_entries`] = m.maxEntries;
      out[`maps.${hz}hz.${m.name}.memlock_bytes`] = m.memlock;
    }
    out[`maps.${hz}hz.memlock_bytes`] = total;
    const entries = (name: string) => maps.find((m) => m.name === name)?.maxEntries ?? '?';
    out[`maps.${hz}hz.summary`] =
      `counts 2 x ${entries('kiln_counts_0')}, chunks ${entries('kiln_chunks')} entries, ${formatBytes(total)} locked in all`;
  }

  out['env.foreign_samplers'] = bpftoolMissing ? 'unknown (no bpftool)' : [...foreignSeen].join(' ') || 'none';
  if (foreignSeen.size)
    say(`\n  ! other perf_event BPF programs were loaded during some runs (${[...foreignSeen].join(', ')}); those runs are marked`);

  const slowAfter = slowInterruptMessages();
  if (slowBefore && slowAfter) {
    const fresh = slowAfter.filter((l) => !slowBefore.includes(l));
    out['kernel.slow_interrupt_messages'] = fresh.length;
    if (fresh.length) say(`  kernel messages about slow interrupts during the bench:\n${fresh.map((l) => `    ${l}`).join('\n')}`);
  }

  const maxRateAfter = readFileSync(MAX_SAMPLE_RATE, 'utf8').trim();
  out['kernel.perf_event_max_sample_rate'] = maxRateAfter;
  if (maxRateAfter !== maxRateBefore)
    say(`  ! kernel.perf_event_max_sample_rate went from ${maxRateBefore} to ${maxRateAfter} (perf throttled a slow handler)`);
  out['env.loadavg_at_end'] = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  out['seconds'] = Math.round((Date.now() - started) / 1000);
  say(`\nsampler bench took ${out['seconds']} s (load average at start ${out['env.loadavg_at_start']}, at end ${out['env.loadavg_at_end']})`);
  return out;
}
