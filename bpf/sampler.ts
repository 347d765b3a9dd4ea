/**
 * Loads build/bpf/kiln.bpf.o, sizes its maps, attaches the sampler to a
 * CPU-clock perf event on every CPU, and drains what the kernel recorded:
 * first sights of code objects (a ring buffer) and aggregated stacks (two
 * counts maps and the chunks they name). Userspace only ever reads the
 * counts map the kernel is not writing (kiln_state.generation picks one of
 * two), so draining loses nothing; every map is drained with batched calls.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KILN_EVENT_WAS_FOLLOWED,
  KILN_F_STACK_LOST,
  KILN_MAX_DEPTH,
  KILN_MAX_EVENTS,
  KILN_STATE_SAMPLE_RING,
  KILN_STATE_TIMING,
  STAT_NAMES,
  STRUCTS,
  decodeChunk,
  decodeCodeEvent,
  decodeFrames,
  decodeRingSample,
  decodeSampleKey,
  encodeCodeKey,
  encodeProc,
  encodeState,
  type Chunk,
  type CodeEvent,
  type KernelFrame,
  type KernelProc,
  type KernelStats,
  type RingSample,
} from './abi.js';
import { BpfError, check, checkPtr, koffi, libbpf, openCpuClockEvent, type Ptr } from './libbpf.js';

export interface SamplerOptions {
  /** samples per second per CPU */
  frequency: number;
  /** frames walked before a stack is marked truncated (at most KILN_MAX_DEPTH) */
  maxDepth: number;
  /** the longest time between drains the maps must hold without loss */
  drainIntervalMs: number;
  /** path of the BPF object; defaults to build/bpf/kiln.bpf.o in the checkout */
  objectPath?: string;
  /**
   * Every sample through a ring buffer, hashed in userspace, instead of
   * stored and counted in the kernel: the alternative the bench measures.
   */
  sampleRing?: boolean;
}

/** What one drain took from the kernel. */
export interface Drained {
  /** first sights of code objects, in the order the kernel reported them */
  events: CodeEvent[];
  samples: RawSample[];
}

/** One aggregated stack of one thread, as drained from the kernel. */
export interface RawSample {
  pid: number;
  tid: number;
  comm: string;
  flags: number;
  count: number;
  /** the kernel's id of the stack: equal ids, equal frames */
  stackId: bigint;
  /** root first; empty when flags say why */
  frames: KernelFrame[];
}

export interface BpfRunStats {
  runTimeNs: number;
  runCount: number;
}

const BPF_ANY = 0n;
/** the first-sight ring: a second's worth of events even when many processes start at once */
const EVENT_RING_BYTES = 4 << 20;
/** the samples ring, when used: at 99 Hz on 64 CPUs, a second of 50-frame stacks */
const SAMPLE_RING_BYTES = 16 << 20;
/** code objects the kernel remembers having reported (least recently used go first) */
const CODE_ENTRIES = 32768;
/** distinct stacks given an id in sampleRing mode before the ids start over */
const MAX_RING_STACKS = 100_000;
const PERF_EVENT_IOC_DISABLE = 0x2401;
const PERF_EVENT_IOC_PERIOD = 0x40082404; // _IOW('$', 4, __u64): in frequency mode, sets sample_freq
const BATCH = 1024;

export function defaultObjectPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // bpf/ in the checkout, or dist/bpf/ when compiled
  for (const root of [join(here, '..'), join(here, '..', '..')]) {
    const p = join(root, 'build', 'bpf', 'kiln.bpf.o');
    if (existsSync(p)) return p;
  }
  throw new Error('build/bpf/kiln.bpf.o not found: run `make -C bpf` (or `npm run build`) first');
}

class MapHandle {
  readonly fd: number;
  constructor(
    readonly name: string,
    map: Ptr,
    readonly keySize: number,
    readonly valueSize: number,
  ) {
    this.fd = check(`bpf_map__fd(${name})`, libbpf().bpf_map__fd(map) as number);
  }

  update(key: Buffer, value: Buffer, flags = BPF_ANY): void {
    check(`update ${this.name}`, libbpf().bpf_map_update_elem(this.fd, key, value, flags) as number);
  }

  /** The value, or undefined when the key is absent. */
  lookup(key: Buffer, out = Buffer.alloc(this.valueSize)): Buffer | undefined {
    const rc = libbpf().bpf_map_lookup_elem(this.fd, key, out) as number;
    if (rc === -2) return undefined; // ENOENT
    check(`lookup ${this.name}`, rc);
    return out;
  }

  delete(key: Buffer): boolean {
    const rc = libbpf().bpf_map_delete_elem(this.fd, key) as number;
    if (rc === -2) return false;
    check(`delete ${this.name}`, rc);
    return true;
  }

  /** Deletes these keys (packed one after another); keys already gone are skipped. Returns how many went. */
  deleteMany(keys: Buffer, count: number): number {
    const lib = libbpf();
    const opts = { sz: koffi.sizeof(lib.batchOpts), elem_flags: 0n, flags: 0n };
    let done = 0;
    let deleted = 0;
    while (done < count) {
      const n = [count - done];
      const rc = lib.bpf_map_delete_batch(this.fd, keys.subarray(done * this.keySize), n, opts) as number;
      deleted += n[0] ?? 0;
      done += n[0] ?? 0;
      if (rc === 0) break;
      if (rc !== -2) throw new BpfError(`delete_batch ${this.name}`, -rc);
      done++; // that key was not there: go on after it
    }
    return deleted;
  }

  keys(): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const rc = libbpf().bpf_map_get_next_key(this.fd, prev, next) as number;
      if (rc === -2) return out;
      check(`next key ${this.name}`, rc);
      out.push(next);
      prev = next;
    }
  }

  /** Reads and removes every entry, in batches. */
  takeAll(): { keys: Buffer; values: Buffer; count: number } {
    const lib = libbpf();
    const keyParts: Buffer[] = [];
    const valueParts: Buffer[] = [];
    let total = 0;
    let inBatch: Buffer | null = null;
    const opts = { sz: koffi.sizeof(lib.batchOpts), elem_flags: 0n, flags: 0n };
    // batch buffers are kept: a drain every second should not allocate (and zero) them anew
    this.batchKeys ??= Buffer.allocUnsafe(BATCH * this.keySize);
    this.batchValues ??= Buffer.allocUnsafe(BATCH * this.valueSize);
    for (;;) {
      const outBatch = Buffer.alloc(8);
      const count = [BATCH];
      const rc = lib.bpf_map_lookup_and_delete_batch(this.fd, inBatch, outBatch, this.batchKeys, this.batchValues, count, opts) as number;
      const n = count[0] ?? 0;
      if (rc < 0 && rc !== -2) throw new BpfError(`lookup_and_delete_batch ${this.name}`, -rc);
      keyParts.push(Buffer.from(this.batchKeys.subarray(0, n * this.keySize)));
      valueParts.push(Buffer.from(this.batchValues.subarray(0, n * this.valueSize)));
      total += n;
      if (rc === -2) break; // ENOENT: no more entries
      inBatch = outBatch;
    }
    return { keys: Buffer.concat(keyParts), values: Buffer.concat(valueParts), count: total };
  }

  private batchKeys: Buffer | undefined;
  private batchValues: Buffer | undefined;
}

export class Sampler {
  private readonly obj: Ptr;
  private readonly links: Ptr[] = [];
  private readonly perfFds: number[] = [];
  private readonly procs: MapHandle;
  private readonly codes: MapHandle;
  private readonly chunks: MapHandle;
  private readonly counts: [MapHandle, MapHandle];
  private readonly state: MapHandle;
  private readonly stats: MapHandle;
  private readonly events: MapHandle;
  private readonly progFd: number;
  private readonly ring: Ptr;
  private readonly ringCallback: unknown;
  /** events taken by the ring's callback, until the consumer returns */
  private ringTaken: CodeEvent[] = [];
  private ringErrors = 0;
  /** with sampleRing: the samples ring, and the samples its callback took, by what they hold */
  private readonly sampleRing: { ring: Ptr; callback: unknown } | undefined;
  private ringSamples = new Map<string, RawSample>();
  /** with sampleRing: an id per distinct frames, standing for the kernel's stack id (never reused) */
  private readonly ringStacks = new Map<string, { stackId: bigint; frames: KernelFrame[] }>();
  private ringStackCount = 0n;
  private generation = 0;
  private stateFlags = 0;
  private drainNo = 0;
  /** chunks taken from the kernel, kept while recent samples may still name them */
  private readonly chunkCache = new Map<bigint, { chunk: Chunk; lastUsed: number }>();
  /** whole stacks put together from chunks, so a stack seen every drain is joined once */
  private readonly stackCache = new Map<bigint, { frames: KernelFrame[]; lastUsed: number }>();
  readonly cpus: number;
  readonly countsEntries: number;
  readonly chunkEntries: number;
  private closed = false;

  private constructor(readonly options: SamplerOptions) {
    const lib = libbpf();
    if (options.maxDepth < 1 || options.maxDepth > KILN_MAX_DEPTH)
      throw new Error(`max depth must be between 1 and ${KILN_MAX_DEPTH}`);
    this.cpus = check('libbpf_num_possible_cpus', lib.libbpf_num_possible_cpus() as number);
    const path = options.objectPath ?? defaultObjectPath();
    const logSize = 1 << 22;
    const logBuf = koffi.alloc('char', logSize);
    const openOpts = {
      sz: koffi.sizeof(lib.openOpts),
      object_name: null,
      relaxed_maps: false,
      pin_root_path: null,
      _removed_attach_prog_fd: 0,
      kconfig: null,
      btf_custom_path: null,
      kernel_log_buf: logBuf,
      kernel_log_size: logSize,
      kernel_log_level: 0,
    };
    // Sized so that a drain interval of 10 s (or the configured one, if
    // longer) at this frequency on every CPU loses nothing even if every
    // sample is a distinct stack. Most stacks fit one 64-frame chunk and deep
    // ones share their root-side chunks, so one chunk per sample suffices too.
    const samplesPerDrain = Math.ceil((options.frequency * this.cpus * Math.max(options.drainIntervalMs, 10_000)) / 1000);
    this.countsEntries = Math.max(4096, Math.ceil(samplesPerDrain * 1.25));
    this.chunkEntries = Math.max(8192, this.countsEntries);
    const sizes: Record<string, number> = {
      kiln_counts_0: this.countsEntries,
      kiln_counts_1: this.countsEntries,
      kiln_chunks: this.chunkEntries,
      kiln_stacks: this.countsEntries,
      kiln_codes: CODE_ENTRIES,
      kiln_code_events: EVENT_RING_BYTES,
      kiln_samples: options.sampleRing ? SAMPLE_RING_BYTES : 4096,
      kiln_scratch: this.cpus,
    };
    // The verifier gives up with EAGAIN when a signal reaches the loading
    // thread (a profiler's SIGPROF, say): signals wait while it runs (a few
    // tens of ms), and should one get through anyway, the object (which
    // cannot be loaded twice) is opened anew and loaded again.
    let obj: Ptr | undefined;
    for (let attempt = 1; !obj; attempt++) {
      const o = checkPtr(`open ${path}`, lib.bpf_object__open_file(path, openOpts));
      for (const [name, n] of Object.entries(sizes))
        check(`size ${name}`, lib.bpf_map__set_max_entries(checkPtr(`find map ${name}`, lib.bpf_object__find_map_by_name(o, name)), n) as number);
      const rc = withSignalsHeld(() => lib.bpf_object__load(o) as number);
      if (rc === 0) obj = o;
      else {
        lib.bpf_object__close(o);
        if (rc === -11 && attempt < 5) continue;
        const log = koffi.decode(logBuf, 'char', logSize) as string;
        koffi.free(logBuf);
        throw new BpfError('loading the BPF program', -rc, log ? `verifier log (tail):\n${log.slice(-4000)}` : '');
      }
    }
    koffi.free(logBuf);
    this.obj = obj;
    const map = (name: string): Ptr => checkPtr(`find map ${name}`, lib.bpf_object__find_map_by_name(this.obj, name));

    const key = STRUCTS.kiln_sample_key.size;
    this.procs = new MapHandle('kiln_procs', map('kiln_procs'), 4, STRUCTS.kiln_proc.size);
    this.codes = new MapHandle('kiln_codes', map('kiln_codes'), STRUCTS.kiln_code_key.size, STRUCTS.kiln_code_seen.size);
    this.chunks = new MapHandle('kiln_chunks', map('kiln_chunks'), 8, STRUCTS.kiln_chunk.size);
    this.counts = [
      new MapHandle('kiln_counts_0', map('kiln_counts_0'), key, 8),
      new MapHandle('kiln_counts_1', map('kiln_counts_1'), key, 8),
    ];
    this.state = new MapHandle('kiln_state', map('kiln_state'), 4, STRUCTS.kiln_state.size);
    this.stats = new MapHandle('kiln_stats', map('kiln_stats'), 4, 8 * this.cpus);
    this.events = new MapHandle('kiln_events', map('kiln_events'), 4, 4);
    this.writeState();
    // Called by ring_buffer__consume, on this thread, once per record; the
    // record is the kernel's again once it returns, so it is decoded here.
    this.ringCallback = koffi.register(
      (_ctx: unknown, data: unknown, size: number | bigint): number => {
        try {
          this.ringTaken.push(decodeCodeEvent(Buffer.from(koffi.view(data as never, Number(size)))));
        } catch {
          this.ringErrors++;
        }
        return 0;
      },
      koffi.pointer(lib.ringSample),
    );
    this.ring = checkPtr('ring_buffer__new', lib.ring_buffer__new(new MapHandle('kiln_code_events', map('kiln_code_events'), 0, 0).fd, this.ringCallback, null, null));
    if (options.sampleRing) {
      const callback = koffi.register(
        (_ctx: unknown, data: unknown, size: number | bigint): number => {
          try {
            this.takeRingSample(decodeRingSample(Buffer.from(koffi.view(data as never, Number(size)))));
          } catch {
            this.ringErrors++;
          }
          return 0;
        },
        koffi.pointer(lib.ringSample),
      );
      const ring = checkPtr('ring_buffer__new', lib.ring_buffer__new(new MapHandle('kiln_samples', map('kiln_samples'), 0, 0).fd, callback, null, null));
      this.sampleRing = { ring, callback };
      this.stateFlags |= KILN_STATE_SAMPLE_RING;
      this.writeState();
    }

    const prog = checkPtr('find program', lib.bpf_object__find_program_by_name(this.obj, 'kiln_sample'));
    this.progFd = check('program fd', lib.bpf_program__fd(prog) as number);
    try {
      for (let cpu = 0; cpu < this.cpus; cpu++) {
        let fd: number;
        try {
          fd = openCpuClockEvent(cpu, options.frequency);
        } catch (err) {
          // possible but offline CPUs have no event to attach to
          if (err instanceof BpfError && (err.errno === 19 || err.errno === 6)) continue;
          throw err;
        }
        this.perfFds.push(fd);
        this.links.push(checkPtr(`attach to cpu ${cpu}`, lib.bpf_program__attach_perf_event(prog, fd)));
      }
      const exec = checkPtr('find exec program', lib.bpf_object__find_program_by_name(this.obj, 'kiln_exec'));
      this.links.push(checkPtr('attach sched_process_exec', lib.bpf_program__attach(exec)));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  static open(options: SamplerOptions): Sampler {
    return new Sampler(options);
  }

  private writeState(): void {
    this.state.update(u32(0), encodeState(this.generation, this.options.maxDepth, this.stateFlags));
  }

  /** Has the kernel account each stage of a sample's time in its counters (ns_*), at the cost of a few clock reads. */
  setStageTiming(on: boolean): void {
    this.stateFlags = on ? this.stateFlags | KILN_STATE_TIMING : this.stateFlags & ~KILN_STATE_TIMING;
    this.writeState();
  }

  /** Changes the sampling frequency of every CPU's event in place. */
  setFrequency(frequency: number): void {
    const arg = Buffer.alloc(8);
    arg.writeBigUInt64LE(BigInt(frequency));
    for (const fd of this.perfFds) {
      const rc = libbpf().ioctl(fd, PERF_EVENT_IOC_PERIOD, 'void *', arg) as number;
      if (rc < 0) throw new BpfError(`set frequency ${frequency} Hz`, koffi.errno());
    }
  }

  /** Starts walking `pid`'s Python frames as `proc` says. */
  register(pid: number, proc: KernelProc): void {
    this.procs.update(u32(pid), encodeProc(proc));
  }

  unregister(pid: number): void {
    this.procs.delete(u32(pid));
  }

  /** First sights the kernel was asked for by `pid`'s samples since it was registered (reported or not); undefined if not registered. */
  firstSights(pid: number): number | undefined {
    this.procOut ??= Buffer.alloc(STRUCTS.kiln_proc.size);
    const v = this.procs.lookup(u32(pid), this.procOut);
    return v ? Number(v.readBigUInt64LE(STRUCTS.kiln_proc.fields.first_sights.offset)) : undefined;
  }

  private procOut: Buffer<ArrayBuffer> | undefined;

  /**
   * Makes the kernel forget having reported these code objects: the next
   * sample that meets one reports it again, under a new id.
   */
  forgetCodes(codes: { pid: number; code: bigint }[]): void {
    if (!codes.length) return;
    const size = STRUCTS.kiln_code_key.size;
    const keys = Buffer.alloc(codes.length * size);
    codes.forEach((c, i) => encodeCodeKey(c.pid, c.code, keys, i * size));
    this.codes.deleteMany(keys, codes.length);
  }

  /** First sights the kernel reported since the last call (records it could not decode are counted in ringErrors). */
  takeCodeEvents(): CodeEvent[] {
    this.ringTaken = [];
    const rc = libbpf().ring_buffer__consume(this.ring) as number;
    if (rc < 0) throw new BpfError('ring_buffer__consume', -rc);
    const taken = this.ringTaken;
    this.ringTaken = [];
    return taken;
  }

  /** Ring records that could not be decoded (never expected: counted, not thrown). */
  get undecodedEvents(): number {
    return this.ringErrors;
  }

  registered(): number[] {
    return this.procs.keys().map((k) => k.readUInt32LE(0));
  }

  /**
   * Processes that exec'd since the last call: `followed` ones were
   * registered (the kernel has unregistered them already). `overflowed`: the
   * event map filled up, so some execs were not recorded.
   */
  takeExecEvents(): { followed: number[]; others: number[]; overflowed: boolean } {
    const out = { followed: [] as number[], others: [] as number[], overflowed: false };
    const { keys, values, count } = this.events.takeAll();
    out.overflowed = count >= KILN_MAX_EVENTS;
    for (let i = 0; i < count; i++)
      (values.readUInt32LE(i * 4) & KILN_EVENT_WAS_FOLLOWED ? out.followed : out.others).push(keys.readUInt32LE(i * 4));
    return out;
  }

  /** A sample from the samples ring, counted with the others that hold the same. */
  private takeRingSample(r: RingSample): void {
    const frames = r.frames.toString('latin1');
    const key = `${r.pid}\0${r.tid}\0${r.comm}\0${r.flags}\0${frames}`;
    const have = this.ringSamples.get(key);
    if (have) {
      have.count++;
      return;
    }
    let stack = this.ringStacks.get(frames);
    if (!stack) {
      if (this.ringStacks.size >= MAX_RING_STACKS) this.ringStacks.clear();
      this.ringStacks.set(frames, (stack = { stackId: ++this.ringStackCount, frames: decodeFrames(r.frames) }));
    }
    this.ringSamples.set(key, { pid: r.pid, tid: r.tid, comm: r.comm, flags: r.flags, count: 1, stackId: stack.stackId, frames: stack.frames });
  }

  /**
   * Swaps counts maps and returns everything recorded since the last drain:
   * the first sights first (the samples that name their ids come after
   * them), then the samples with their stacks put together from chunks.
   */
  async drain(): Promise<Drained> {
    const old = this.counts[this.generation & 1]!;
    this.generation++;
    this.writeState();
    // A sample that read the old generation just before the swap finishes
    // within microseconds; give it ample time before reading that map.
    await sleep(5);
    this.drainNo++;
    const events = this.takeCodeEvents();
    if (this.sampleRing) {
      const rc = libbpf().ring_buffer__consume(this.sampleRing.ring) as number;
      if (rc < 0) throw new BpfError('ring_buffer__consume', -rc);
      const samples = [...this.ringSamples.values()];
      this.ringSamples = new Map();
      return { events, samples };
    }
    this.takeChunks();
    const { keys, values, count } = old.takeAll();
    const samples: RawSample[] = [];
    for (let i = 0; i < count; i++) {
      const k = decodeSampleKey(keys, i * STRUCTS.kiln_sample_key.size);
      const n = Number(values.readBigUInt64LE(i * 8));
      let flags = k.flags;
      let frames: KernelFrame[] = [];
      if (k.stackId !== 0n) {
        const resolved = this.resolveStack(k.stackId, k.depth);
        if (resolved) frames = resolved;
        else flags |= KILN_F_STACK_LOST;
      }
      samples.push({ pid: k.pid, tid: k.tid, comm: k.comm, flags, count: n, stackId: k.stackId, frames });
    }
    for (const [id, e] of this.chunkCache) if (this.drainNo - e.lastUsed > 2) this.chunkCache.delete(id);
    for (const [id, e] of this.stackCache) if (this.drainNo - e.lastUsed > 2) this.stackCache.delete(id);
    return { events, samples };
  }

  /**
   * Takes every chunk the kernel stored since the last drain, in batches,
   * freeing their slots. The kernel stores a stack's chunks once per
   * generation, so these are what this drain's samples name (and perhaps
   * some the next drain's will).
   */
  private takeChunks(): void {
    const { keys, values, count } = this.chunks.takeAll();
    for (let i = 0; i < count; i++)
      this.chunkCache.set(keys.readBigUInt64LE(i * 8), { chunk: decodeChunk(values, i * STRUCTS.kiln_chunk.size), lastUsed: this.drainNo });
  }

  private resolveStack(stackId: bigint, depth: number): KernelFrame[] | undefined {
    const known = this.stackCache.get(stackId);
    if (known && known.frames.length === depth) {
      known.lastUsed = this.drainNo;
      // its chunks are still named by this sample: keep them cached too
      for (let id = stackId, e = this.chunkCache.get(id); e; id = e.chunk.parent, e = this.chunkCache.get(id)) e.lastUsed = this.drainNo;
      return known.frames;
    }
    const parts: KernelFrame[][] = [];
    let id = stackId;
    let frames = 0;
    while (id !== 0n && frames < depth) {
      const entry = this.chunkCache.get(id);
      if (!entry) return undefined;
      entry.lastUsed = this.drainNo;
      parts.push(entry.chunk.frames);
      frames += entry.chunk.frames.length;
      id = entry.chunk.parent;
    }
    if (frames !== depth || id !== 0n) return undefined;
    const whole = parts.reverse().flat();
    this.stackCache.set(stackId, { frames: whole, lastUsed: this.drainNo });
    return whole;
  }

  /** Kernel-side counters, summed over CPUs, since load. */
  kernelStats(): KernelStats {
    const out = Object.fromEntries(STAT_NAMES.map((n) => [n, 0])) as KernelStats;
    STAT_NAMES.forEach((name, i) => {
      const v = this.stats.lookup(u32(i));
      if (!v) return;
      let sum = 0n;
      for (let c = 0; c < this.cpus; c++) sum += v.readBigUInt64LE(c * 8);
      out[name] = Number(sum);
    });
    return out;
  }

  /** The sampler program's cumulative run time; counted only while kernel.bpf_stats_enabled=1. */
  runStats(): BpfRunStats {
    const info = Buffer.alloc(232);
    const len = [info.length];
    check('bpf_obj_get_info_by_fd', libbpf().bpf_prog_get_info_by_fd(this.progFd, info, len) as number);
    return { runTimeNs: Number(info.readBigUInt64LE(192)), runCount: Number(info.readBigUInt64LE(200)) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const lib = libbpf();
    for (const fd of this.perfFds) lib.ioctl(fd, PERF_EVENT_IOC_DISABLE, 'int', 0);
    for (const link of this.links) lib.bpf_link__destroy(link);
    for (const fd of this.perfFds) lib.close(fd);
    lib.ring_buffer__free(this.ring);
    koffi.unregister(this.ringCallback as never);
    if (this.sampleRing) {
      lib.ring_buffer__free(this.sampleRing.ring);
      koffi.unregister(this.sampleRing.callback as never);
    }
    lib.bpf_object__close(this.obj);
  }
}

/** Runs `fn` with every signal held back from this thread (delivered once it returns). */
function withSignalsHeld<T>(fn: () => T): T {
  const lib = libbpf();
  const all = Buffer.alloc(SIGSET_BYTES);
  const old = Buffer.alloc(SIGSET_BYTES);
  lib.sigfillset(all);
  const held = (lib.pthread_sigmask(SIG_SETMASK, all, old) as number) === 0;
  try {
    return fn();
  } finally {
    if (held) lib.pthread_sigmask(SIG_SETMASK, old, null);
  }
}

const SIG_SETMASK = 2;
const SIGSET_BYTES = 128; // glibc's sigset_t

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

