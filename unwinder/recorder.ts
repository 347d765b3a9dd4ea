/**
 * Follows Python processes with the BPF sampler: registers them, drains and
 * symbolizes their stacks periodically, notices exec and exit, and (with
 * `all`) picks up new Python processes. Used by `kiln record` and `kiln agent`.
 */
import {
  type CodeEvent,
  KILN_F_NO_TSTATE,
  KILN_F_READ_ERROR,
  KILN_F_STACK_LOST,
  KILN_F_TRUNCATED,
  type KernelStats,
} from '../bpf/abi.js';
import { Sampler, type BpfRunStats, type RawSample } from '../bpf/sampler.js';
import { BUDGET_WINDOW_MS, DEFAULT_BUDGET, overBudgetText, TargetBudget, type BudgetLimits } from './budget.js';
import { inspectProcess, looksLikePython, NoRuntimeSymbolError, NotPythonError, UnsupportedPythonError, type PythonProcess } from './interpreter.js';
import { kernelProc } from './kernel-layout.js';
import { commOf, listPids, ProcTooLargeError, readMaps, startTime } from './proc.js';
import { interpreterBinary, SYNTHETIC_FRAMES, type Frame, type Profile, type StackSample } from '../profile/profile.js';
import { addSymbolizerStats, emptySymbolizerStats, Symbolizer, type SymbolizerStats } from './symbolizer.js';

let frameKeyCount = 0;
/** Stack keys are unique across processes and their images: a pid's samples after an exec must not merge with its old image's. */
let stackKeyCount = 0;

/** Symbolized stacks kept per process before the cache starts over. */
const MAX_CACHED_STACKS = 50_000;

/**
 * A stack as symbolized, once per process: every kernel stack that names
 * the same frames (another instruction on the same line, say) maps to one of
 * these, so samples are merged by `key` and the same Frame[] object comes
 * back every period (which lets encoders cache by it).
 */
interface SymbolizedStack {
  frames: Frame[];
  key: number;
  /** the code ids it names, kept in use while the stack is */
  codeIds: number[];
}

export interface RecorderOptions {
  /** processes to follow; with `all`, these are followed too */
  pids: number[];
  /** follow every Python process on the host, including ones started later */
  all: boolean;
  frequency: number;
  maxDepth: number;
  /** how often stacks are drained and symbolized */
  drainIntervalMs: number;
  /** how often /proc is scanned for new processes with `all` */
  scanIntervalMs: number;
  /** one line per noteworthy event (process followed, skipped, gone) */
  log: (message: string) => void;
  /** called when a process starts being followed, while it is surely alive */
  onFollow?: (proc: PythonProcess) => void;
  objectPath?: string;
  /**
   * Have the kernel copy names and line tables into first-sight events (the
   * default). Without, userspace reads code objects from the process as the
   * events arrive, polling for them every `eventPollMs` (for comparison:
   * code that dies before it is read goes unnamed).
   */
  copyObjects?: boolean;
  eventPollMs?: number;
  /** every sample through a ring buffer, hashed in userspace (the alternative the bench measures) */
  sampleRing?: boolean;
  /** the work one process may cause per window before it is no longer followed (default DEFAULT_BUDGET per 10 s) */
  budget?: BudgetLimits;
  budgetWindowMs?: number;
}

/** Drains without a sample naming a code object before the kernel is made to forget it. */
const IDLE_DRAINS = 600;

interface Followed {
  proc: PythonProcess;
  startTime: number;
  symbolizer: Symbolizer;
  /** symbolized stacks by flags and kernel stack id */
  stacks: Map<number, Map<bigint, SymbolizedStack>>;
  stackCount: number;
  /** the same, by what they name */
  contents: Map<string, SymbolizedStack>;
  /** a small number per Frame object */
  frameKeys: WeakMap<Frame, number>;
  frameKey(f: Frame): number;
  /** set once the process has gone; its last samples are still drained */
  gone: boolean;
  /** code ids the kernel was made to forget at the last drain, to drop at this one */
  forgetting: number[];
  /** what it may still cost this window (kept across its execs) */
  budget: TargetBudget;
  /** set once it went over its budget: no longer walked, its samples from then on not kept */
  skipped: boolean;
  /** first sights the kernel counted for it when last looked */
  sights: number;
}

/** A Profile per process, built up between takes. */
export interface ProcessProfile {
  pid: number;
  /** with the pid, names the process for its whole life (clock ticks since boot) */
  startTime: number;
  pythonVersion: string;
  profile: Profile;
}

export class Recorder {
  private readonly sampler: Sampler;
  private readonly followed = new Map<number, Followed>();
  /** pid:starttime of processes already judged not followable, reported once */
  private readonly rejected = new Set<string>();
  /**
   * pid:starttime of processes where one look found no _PyRuntime. A process
   * caught between its exec and ld.so mapping libpython looks like that for a
   * millisecond or so, so it is judged only on a second look.
   */
  private readonly noRuntimeOnce = new Set<string>();
  /** exec'd pids to look at again on the next drain (their first look found no _PyRuntime) */
  private execRetries: number[] = [];
  /** budgets by pid:starttime, kept while the process lives (an exec does not start one anew) */
  private readonly budgets = new Map<string, TargetBudget>();
  /** processes that went over their budget: pid -> start time, never followed again */
  private readonly overBudget = new Map<number, number>();
  /** processes not followed (or no longer), by reason */
  private readonly droppedByReason = new Map<string, number>();
  private readonly aggregates = new Map<number, Map<string, StackSample>>();
  private readonly versions = new Map<number, string>();
  private readonly startTimes = new Map<number, number>();
  /** what the symbolizers of processes no longer followed counted */
  private readonly pastCodeStats = emptySymbolizerStats();
  private drainTimer: NodeJS.Timeout | undefined;
  private eventTimer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> = Promise.resolve();
  private windowStartNs = process.hrtime.bigint();
  private windowStartWall = BigInt(Date.now()) * 1_000_000n;
  readonly selfPid = process.pid;

  private constructor(readonly options: RecorderOptions) {
    this.frequency = options.frequency;
    this.sampler = Sampler.open({
      frequency: options.frequency,
      maxDepth: options.maxDepth,
      drainIntervalMs: options.drainIntervalMs,
      objectPath: options.objectPath,
      sampleRing: options.sampleRing,
    });
  }

  /**
   * Opens the sampler and follows the given pids. A pid that is not a
   * followable Python process fails the start: the user named it.
   */
  static start(options: RecorderOptions): Recorder {
    const r = new Recorder(options);
    try {
      for (const pid of options.pids) r.follow(pid, true);
    } catch (err) {
      r.sampler.close();
      throw err;
    }
    if (options.all) r.scan();
    r.drainTimer = setInterval(() => void r.drainOnce(), options.drainIntervalMs);
    if (options.all) r.scanTimer = setInterval(() => r.scan(), options.scanIntervalMs);
    // First sights are taken at least every second, whatever the drain interval:
    // the ring then needs room for a second of them. Without the kernel's copies
    // they must be read while the code is alive: as soon as possible.
    const eventPollMs = options.copyObjects === false ? (options.eventPollMs ?? 10) : Math.min(1000, options.drainIntervalMs);
    if (eventPollMs < options.drainIntervalMs) r.eventTimer = setInterval(() => r.learn(r.sampler.takeCodeEvents()), eventPollMs);
    r.windowStartNs = process.hrtime.bigint();
    r.windowStartWall = BigInt(Date.now()) * 1_000_000n;
    return r;
  }

  private frequency: number;

  get periodNs(): number {
    return Math.round(1e9 / this.frequency);
  }

  get currentFrequency(): number {
    return this.frequency;
  }

  /**
   * Changes the sampling frequency. Call it right after take(), so that every
   * window is sampled at one frequency and its period stays true.
   */
  setFrequency(hz: number): void {
    if (hz === this.frequency) return;
    this.sampler.setFrequency(hz);
    this.frequency = hz;
  }

  followedPids(): number[] {
    return [...this.followed.entries()].filter(([, f]) => !f.gone).map(([pid]) => pid);
  }

  private final: { kernel: KernelStats; run: BpfRunStats } | undefined;

  /** Kernel counters; after stop(), as they were when the sampler closed. */
  kernelStats(): KernelStats {
    return this.final?.kernel ?? this.sampler.kernelStats();
  }

  runStats(): BpfRunStats {
    return this.final?.run ?? this.sampler.runStats();
  }

  /** Has the kernel account each stage of a sample's time (its ns_* counters): for benchmarks. */
  setStageTiming(on: boolean): void {
    this.sampler.setStageTiming(on);
  }

  /** Starts following `pid`. With `strict`, failure throws; otherwise it is logged once. */
  private follow(pid: number, strict: boolean): boolean {
    const st = startTime(pid);
    if (st === undefined) {
      if (strict) throw new NotPythonError(pid, 'no such process');
      return false;
    }
    const key = `${pid}:${st}`;
    if (!strict && this.rejected.has(key)) return false;
    if (this.overBudget.get(pid) === st) return false;
    try {
      const proc = inspectProcess(pid);
      this.sampler.register(pid, kernelProc(proc.runtime, proc.layout, proc.types, { copyObjects: this.options.copyObjects ?? true }));
      this.followed.set(pid, {
        proc,
        startTime: st,
        symbolizer: new Symbolizer(pid, proc.layout, proc.types, proc.imageFile),
        stacks: new Map(),
        stackCount: 0,
        contents: new Map(),
        frameKeys: new WeakMap(),
        frameKey(x: Frame) {
          let k = this.frameKeys.get(x);
          if (k === undefined) this.frameKeys.set(x, (k = ++frameKeyCount));
          return k;
        },
        gone: false,
        forgetting: [],
        budget: this.budgetOf(key),
        skipped: false,
        sights: 0,
      });
      this.versions.set(pid, proc.versionText);
      this.startTimes.set(pid, st);
      this.options.onFollow?.(proc);
      this.options.log(`following pid ${pid}: CPython ${proc.versionText} (${proc.image}; ${proc.layout.source})`);
      return true;
    } catch (err) {
      if (strict) throw err;
      if (err instanceof NoRuntimeSymbolError && !this.noRuntimeOnce.has(key)) {
        this.noRuntimeOnce.add(key);
        return false;
      }
      this.rejected.add(key);
      if (!(err instanceof NotPythonError)) {
        this.options.log(`skipping ${(err as Error).message}`);
        this.countDropped(dropReason(err));
      }
      return false;
    }
  }

  private budgetOf(key: string): TargetBudget {
    let b = this.budgets.get(key);
    if (!b) this.budgets.set(key, (b = new TargetBudget(this.options.budget ?? DEFAULT_BUDGET, this.options.budgetWindowMs ?? BUDGET_WINDOW_MS, performance.now())));
    return b;
  }

  private countDropped(reason: string): void {
    this.droppedByReason.set(reason, (this.droppedByReason.get(reason) ?? 0) + 1);
  }

  /** Processes not followed (or no longer), by reason: budget_<item>, version, unreadable, no_runtime, maps_too_large. */
  droppedProcesses(): Record<string, number> {
    return Object.fromEntries(this.droppedByReason);
  }

  /**
   * Stops following a process that went over its budget, at once: the kernel
   * no longer walks it, and its samples from now on are not kept. Said once.
   */
  private checkBudget(pid: number, f: Followed): void {
    const over = f.budget.over();
    if (!over || f.skipped) return;
    f.skipped = true;
    this.sampler.unregister(pid);
    this.overBudget.set(pid, f.startTime);
    this.countDropped(`budget_${over.item}`);
    this.options.log(`pid ${pid} (${commOf(pid) || 'gone'}) is no longer profiled: ${overBudgetText(over, this.options.budgetWindowMs ?? BUDGET_WINDOW_MS)}`);
  }

  /**
   * Pids whose maps showed no Python. They are looked at again only when
   * they exec, which the kernel reports, so a scan reads nothing but the
   * /proc directory for them.
   */
  private readonly notPython = new Set<number>();

  private forget(pid: number): void {
    this.notPython.delete(pid);
    const st = startTime(pid);
    this.rejected.delete(`${pid}:${st}`);
    this.noRuntimeOnce.delete(`${pid}:${st}`);
  }

  private scan(): void {
    const live = new Set<number>();
    for (const pid of listPids()) {
      live.add(pid);
      if (pid === this.selfPid || this.followed.has(pid) || this.notPython.has(pid)) continue;
      let maps;
      try {
        maps = readMaps(pid);
      } catch {
        continue; // gone, or a kernel thread
      }
      if (looksLikePython(maps)) this.follow(pid, false);
      else this.notPython.add(pid);
    }
    for (const pid of this.notPython) if (!live.has(pid)) this.notPython.delete(pid);
    // what was kept of processes now gone (a pid reused later has another start time)
    for (const pid of this.overBudget.keys()) if (!live.has(pid)) this.overBudget.delete(pid);
    for (const key of this.budgets.keys()) if (!live.has(Number(key.split(':')[0]))) this.budgets.delete(key);
  }

  /**
   * Looks again at processes that exec'd (the kernel stopped walking them at
   * the exec). Called after the drain that holds their last samples of the
   * old image, so those were named by the old image's symbolizer.
   */
  private reinspect(execs: number[]): void {
    const retries = this.execRetries;
    this.execRetries = [];
    for (const pid of retries) {
      if (!this.followed.has(pid) && !this.follow(pid, false)) this.options.log(`pid ${pid} is no longer a Python process`);
    }
    for (const pid of execs) {
      const f = this.followed.get(pid);
      if (!f) continue;
      this.options.log(`pid ${pid} exec'd: looking at it again`);
      this.unfollow(pid, f);
      if (f.skipped) continue;
      f.budget.charge('execs', 1);
      if (f.budget.over()) {
        this.checkBudget(pid, f);
        continue;
      }
      if (this.follow(pid, false)) continue;
      if (this.noRuntimeOnce.has(`${pid}:${f.startTime}`) && !this.rejected.has(`${pid}:${f.startTime}`)) this.execRetries.push(pid);
      else this.options.log(`pid ${pid} is no longer a Python process`);
    }
  }

  /** Notices exit. */
  private checkExits(): void {
    for (const [pid, f] of this.followed) {
      if (f.gone) continue;
      if (startTime(pid) !== f.startTime) {
        f.gone = true;
        this.sampler.unregister(pid);
        f.symbolizer.detach();
        this.options.log(`pid ${pid} exited`);
      }
    }
  }

  private drainOnce(): Promise<void> {
    this.draining = this.draining.then(async () => {
      // Exec events are taken before the drain and acted on after it: every
      // sample of an exec'd pid's old image was counted before its event, so
      // it is in this drain and must be named by the old image's symbolizer
      // (whose cache holds the old code objects); a symbolizer for the new
      // image would read unrelated memory at those addresses.
      const execs = this.sampler.takeExecEvents();
      // an exec makes a new program: whatever was judged of the pid before no longer holds
      for (const pid of execs.others) this.forget(pid);
      if (execs.overflowed) this.notPython.clear();
      this.checkExits();
      const { events, samples } = await this.sampler.drain();
      for (const f of this.followed.values()) f.symbolizer.beginDrain();
      this.learn(events);
      for (const s of samples) this.add(s);
      this.sweepCodes();
      this.reinspect(execs.followed);
      for (const [pid, f] of this.followed) {
        if (!f.gone && !f.skipped) continue;
        this.unfollow(pid, f);
        this.budgets.delete(`${pid}:${f.startTime}`);
      }
    });
    // a drain that failed is said, and the next one runs all the same
    this.draining = this.draining.catch((err: Error) => this.options.log(`drain failed: ${err.message}`));
    return this.draining;
  }

  /**
   * First sights, named now by the symbolizer of the process that had them,
   * each charged to its budget; and what each process asked of the kernel's
   * event ring, reported or not (a process flooding it is what keeps the
   * others' first sights out).
   */
  private learn(events: CodeEvent[]): void {
    const now = performance.now();
    for (const [pid, f] of this.followed) {
      f.budget.roll(now);
      if (f.gone || f.skipped) continue;
      const sights = this.sampler.firstSights(pid);
      if (sights === undefined) continue;
      f.budget.charge('first_sights', sights - f.sights);
      f.sights = sights;
      this.checkBudget(pid, f);
    }
    for (const ev of events) {
      const f = this.followed.get(ev.pid);
      if (!f || f.skipped) continue;
      const st = f.symbolizer.stats;
      const { readBytes, sourceBytes, learnNs } = st;
      f.symbolizer.learn(ev);
      f.budget.charge('memory_bytes', st.readBytes - readBytes);
      f.budget.charge('source_bytes', st.sourceBytes - sourceBytes);
      f.budget.charge('cpu_ms', (st.learnNs - learnNs) / 1e6);
      this.checkBudget(ev.pid, f);
    }
  }

  /** Makes the kernel forget code objects nothing has named for a while, and drops them a drain later. */
  private sweepCodes(): void {
    const forget: { pid: number; code: bigint }[] = [];
    for (const [pid, f] of this.followed) {
      f.symbolizer.forget(f.forgetting);
      const idle = f.symbolizer.idle(IDLE_DRAINS);
      f.forgetting = idle.map((c) => c.codeId);
      for (const c of idle) forget.push({ pid, code: c.code });
    }
    this.sampler.forgetCodes(forget);
  }

  /** Code objects named and not, by reason, over every process followed so far. */
  codeStats(): SymbolizerStats {
    const sum = emptySymbolizerStats();
    addSymbolizerStats(sum, this.pastCodeStats);
    for (const f of this.followed.values()) addSymbolizerStats(sum, f.symbolizer.stats);
    return sum;
  }

  /** Stops following a process: its image is gone (exit) or replaced (exec). */
  private unfollow(pid: number, f: Followed): void {
    addSymbolizerStats(this.pastCodeStats, f.symbolizer.stats);
    f.symbolizer.detach();
    this.sampler.forgetCodes(f.symbolizer.reported().map((code) => ({ pid, code })));
    this.followed.delete(pid);
  }

  private add(s: RawSample): void {
    const f = this.followed.get(s.pid);
    // a process over its budget: what the kernel recorded of it before it was told to stop is not kept either
    if (f ? f.skipped : this.overBudget.has(s.pid)) return;
    const stack = this.symbolize(s);
    const key = `${s.tid}\0${s.comm}\0${stack.key}`;
    let perProc = this.aggregates.get(s.pid);
    if (!perProc) this.aggregates.set(s.pid, (perProc = new Map()));
    const have = perProc.get(key);
    if (have) {
      have.count += s.count;
      return;
    }
    const labels: Record<string, string> = {
      pid: String(s.pid),
      tid: String(s.tid),
      thread_name: s.comm,
      python_version: this.versions.get(s.pid) ?? '',
    };
    perProc.set(key, { frames: stack.frames, labels, count: s.count });
  }

  /** A drained stack, symbolized once per process image and kernel stack id. */
  private symbolize(s: RawSample): SymbolizedStack {
    const f = this.followed.get(s.pid);
    const cached = f?.stacks.get(s.flags)?.get(s.stackId);
    if (cached) {
      f!.symbolizer.touch(cached.codeIds);
      return cached;
    }
    const t0 = f ? performance.now() : 0;
    const decoded = f?.symbolizer.stats.lineTableBytes ?? 0;
    const frames: Frame[] = [];
    for (let i = s.frames.length - 1; i >= 0; i--) frames.push(f ? f.symbolizer.frame(s.frames[i]!) : SYNTHETIC_FRAMES.unknownCode);
    if (f) {
      f.budget.charge('stack_frames', s.frames.length);
      f.budget.charge('line_table_bytes', f.symbolizer.stats.lineTableBytes - decoded);
      f.budget.charge('cpu_ms', performance.now() - t0);
      this.checkBudget(s.pid, f);
    }
    if (s.flags & KILN_F_NO_TSTATE) frames.push(SYNTHETIC_FRAMES.noThreadState);
    else if (s.flags & KILN_F_STACK_LOST) frames.push(SYNTHETIC_FRAMES.stackLost);
    else if (s.flags & KILN_F_TRUNCATED) frames.push(SYNTHETIC_FRAMES.truncated);
    else if (s.flags & KILN_F_READ_ERROR) frames.push(SYNTHETIC_FRAMES.readError);
    else if (frames.length === 0) frames.push(SYNTHETIC_FRAMES.noPython);
    if (!f) return { frames, key: ++stackKeyCount, codeIds: [] };
    // the symbolizer hands out one Frame object per code object and line: equal stacks, equal objects
    const content = frames.map((x) => f.frameKey(x)).join(',');
    if (f.stackCount >= MAX_CACHED_STACKS) {
      f.stacks.clear();
      f.stackCount = 0;
      f.contents.clear();
      f.frameKeys = new WeakMap();
    }
    let stack = f.contents.get(content);
    if (!stack) {
      stack = { frames, key: ++stackKeyCount, codeIds: [...new Set(s.frames.map((x) => x.codeId))] };
      f.contents.set(content, stack);
    }
    // ids are never named later than their samples arrive: what is unknown now stays so
    let byId = f.stacks.get(s.flags);
    if (!byId) f.stacks.set(s.flags, (byId = new Map()));
    byId.set(s.stackId, stack);
    f.stackCount++;
    return stack;
  }

  /**
   * Everything recorded since the last take, one profile per process, and
   * starts a new window. Drains first so the window is complete.
   */
  async take(): Promise<ProcessProfile[]> {
    await this.drainOnce();
    const now = process.hrtime.bigint();
    const durationNs = Number(now - this.windowStartNs);
    const startNs = this.windowStartWall;
    this.windowStartNs = now;
    this.windowStartWall = BigInt(Date.now()) * 1_000_000n;
    const out: ProcessProfile[] = [];
    for (const [pid, stacks] of this.aggregates) {
      out.push({
        pid,
        startTime: this.startTimes.get(pid) ?? 0,
        pythonVersion: this.versions.get(pid) ?? '',
        profile: { samples: [...stacks.values()], periodNs: this.periodNs, startNs, durationNs },
      });
    }
    this.aggregates.clear();
    // what was kept to label the last samples of processes no longer followed
    for (const pid of this.versions.keys()) {
      if (this.followed.has(pid)) continue;
      this.versions.delete(pid);
      this.startTimes.delete(pid);
    }
    return out;
  }

  async stop(): Promise<ProcessProfile[]> {
    clearInterval(this.drainTimer);
    clearInterval(this.scanTimer);
    clearInterval(this.eventTimer);
    const last = await this.take();
    this.final = { kernel: this.sampler.kernelStats(), run: this.sampler.runStats() };
    this.sampler.close();
    for (const f of this.followed.values()) f.symbolizer.detach();
    return last;
  }
}

/** Why a process could not be followed, as /metrics names it. */
function dropReason(err: unknown): string {
  if (err instanceof NoRuntimeSymbolError) return 'no_runtime';
  if (err instanceof UnsupportedPythonError) return err.kind;
  if (err instanceof ProcTooLargeError) return 'maps_too_large';
  return 'unreadable';
}

/** Merges per-process profiles into one (labels keep them apart). */
export function mergeProfiles(parts: ProcessProfile[], periodNs: number, startNs: bigint, durationNs: number): Profile {
  const profile: Profile = { samples: parts.flatMap((p) => p.profile.samples), periodNs, startNs, durationNs };
  const binary = interpreterBinary(parts.map((p) => p.pythonVersion));
  if (binary) profile.mainBinary = binary;
  return profile;
}

