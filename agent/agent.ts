/**
 * The fleet agent: follows every Python process on the host, and each upload
 * period writes one profile per process to the on-disk queue, which a single
 * uploader drains to ingest, oldest first, with backoff when ingest is down.
 * Its own CPU is measured every period and the sampling frequency is lowered
 * while it is over budget.
 *
 * Profiles go in Kiln's native form (profile/native.ts): ids and counts,
 * plus the definitions ingest has not had from this agent today, which is
 * what lets one ingest process take a fleet's profiles (ingest/README.md).
 * If ingest answers that it lacks definitions (409: it lost its store, or
 * another replica had them), the profile is sent again with them; if ingest
 * does not take the native form (an older version), the agent goes over to
 * pprof. --upload-format pprof sends pprof throughout.
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { STAT_NAMES } from '../bpf/abi.js';
import { encodePprof, PprofDictionary } from '../profile/pprof.js';
import { startTime } from '../unwinder/proc.js';
import { NATIVE_CONTENT_TYPE, NATIVE_MAGIC, NativeEncoder, decodeNative } from '../profile/native.js';
import { totalSamples, type Profile } from '../profile/profile.js';
import { Recorder, type ProcessProfile } from '../unwinder/recorder.js';
import { identify, type ProcessIdentity } from './identity.js';
import { post } from './http-post.js';
import { Metrics } from './metrics.js';
import { DiskQueue } from './queue.js';

export interface AgentOptions {
  /** ingest base URL, e.g. http://kiln:4040 */
  server: string;
  token?: string;
  /** samples per second per CPU, the most the budget may give back */
  frequency: number;
  maxDepth: number;
  uploadIntervalMs: number;
  queueDir: string;
  queueMaxBytes: number;
  /** port of the /metrics endpoint; 0 picks one, -1 serves none */
  metricsPort: number;
  /** the agent's own CPU (user + system) as a share of one core it may use */
  cpuBudget: number;
  host: string;
  /** native (Kiln's own form, the default) or pprof */
  uploadFormat: 'native' | 'pprof';
  log: (message: string) => void;
}

export const AGENT_DEFAULTS = {
  frequency: 99,
  maxDepth: 4096,
  uploadIntervalMs: 10_000,
  queueDir: '/var/lib/kiln/queue',
  queueMaxBytes: 256 * 1024 * 1024,
  metricsPort: 9464,
  cpuBudget: 0.02,
  host: hostname(),
  uploadFormat: 'native',
} as const;

const MIN_FREQUENCY = 9;
const DRAIN_INTERVAL_MS = 5000;
/** locations a process's dictionary may hold before it starts over */
const MAX_DICTIONARY_LOCATIONS = 200_000;
const UPLOAD_TIMEOUT_MS = 15_000;
/** Native bodies bigger than this (the first of a day, with definitions) are gzipped on the way. */
const GZIP_NATIVE_OVER = 64 * 1024;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export class Agent {
  readonly metrics = new Metrics();
  private readonly recorder: Recorder;
  private readonly queue: DiskQueue;
  private readonly identities = new Map<string, ProcessIdentity>();
  /** per process (pid:starttime): function and location ids kept across its profiles */
  private readonly dictionaries = new Map<string, PprofDictionary>();
  /** what ingest has had from this agent today (one receiver) */
  private readonly native = new NativeEncoder();
  /** ingest did not take the native form: pprof from then on */
  private pprofOnly = false;
  private periodTimer: NodeJS.Timeout | undefined;
  private metricsServer: Server | undefined;
  private uploading: Promise<void> | undefined;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastCpu = process.cpuUsage();
  private lastWall = process.hrtime.bigint();
  private lastRun = { runTimeNs: 0, runCount: 0 };
  private stopped = false;
  private stopping = false;
  private currentPeriod: Promise<void> = Promise.resolve();
  /** the first period carries start-up work (loading BPF, compiling), not steady-state cost */
  private periods = 0;

  private constructor(readonly options: AgentOptions) {
    this.defineMetrics();
    this.queue = new DiskQueue(options.queueDir, options.queueMaxBytes);
    this.recorder = Recorder.start({
      pids: [],
      all: true,
      frequency: options.frequency,
      maxDepth: options.maxDepth,
      // The kernel aggregates between drains, so fewer drains mean fewer
      // stacks to take (each repeated one once) at the cost of noticing an
      // exit or exec later; new processes are still found every second.
      drainIntervalMs: Math.min(DRAIN_INTERVAL_MS, options.uploadIntervalMs),
      scanIntervalMs: 1000,
      log: options.log,
      // named while alive: a process that exits within the period still has its service
      onFollow: (proc) => void this.identity(proc.pid, startTime(proc.pid) ?? 0),
    });
  }

  static async start(options: AgentOptions): Promise<Agent> {
    const agent = new Agent(options);
    if (options.metricsPort >= 0) await agent.serveMetrics(options.metricsPort);
    agent.periodTimer = setInterval(() => {
      agent.currentPeriod = agent.period();
    }, options.uploadIntervalMs);
    if (agent.queue.length) options.log(`queue holds ${agent.queue.length} profile(s) from before: sending them`);
    if (agent.queue.foreign)
      options.log(`queue ${options.queueDir} holds ${agent.queue.foreign} entries that are not the agent's (${agent.queue.foreignNames.join(', ')}): left alone`);
    agent.updateQueueMetrics();
    agent.kick();
    return agent;
  }

  get metricsPort(): number {
    return (this.metricsServer?.address() as AddressInfo | null)?.port ?? 0;
  }

  private defineMetrics(): void {
    const m = this.metrics;
    m.define('kiln_agent_samples_total', 'counter', 'Samples recorded and queued for upload');
    m.define('kiln_agent_stacks_total', 'counter', 'Distinct stacks (per process and thread) queued for upload');
    m.define('kiln_agent_profiles_total', 'counter', 'Profiles made (one per process per period): each is sent, dropped (by reason) or still queued');
    m.define('kiln_agent_kernel_events_total', 'counter', 'Kernel-side counters of the BPF sampler, by kind (count_drops and chunk_drops are losses)');
    m.define('kiln_agent_code_objects_total', 'counter', 'Code objects first seen by the kernel, by outcome: named, or why not ([unknown code])');
    m.define(
      'kiln_agent_profiles_dropped_total',
      'counter',
      'Profiles lost, by reason: queue_full (past --queue-max-mb, oldest first), no_space (the disk was full when it was written), write_failed, unreadable (its queued file was not the agent\'s any more), refused (ingest answered 4xx), encode_failed',
    );
    m.define(
      'kiln_agent_processes_dropped_total',
      'counter',
      'Python processes not profiled (or no longer), by reason: budget_<item> (it made the agent do more than its budget of that work in a window), version, no_runtime, unreadable, maps_too_large',
    );
    m.define('kiln_agent_queue_foreign_files', 'gauge', 'Entries in the queue directory that are not the agent\'s (left alone)');
    m.define('kiln_agent_queue_profiles', 'gauge', 'Profiles waiting in the on-disk queue');
    m.define('kiln_agent_queue_bytes', 'gauge', 'Bytes waiting in the on-disk queue');
    m.define('kiln_agent_processes_followed', 'gauge', 'Python processes being profiled');
    m.define('kiln_agent_bpf_run_time_seconds_total', 'counter', 'Time the BPF sampler ran (needs kernel.bpf_stats_enabled=1)');
    m.define('kiln_agent_bpf_runs_total', 'counter', 'Times the BPF sampler ran (needs kernel.bpf_stats_enabled=1)');
    m.define('kiln_agent_uploads_total', 'counter', 'Profiles ingest accepted');
    m.define('kiln_agent_upload_failures_total', 'counter', 'Upload attempts that failed, by reason');
    m.define('kiln_agent_definitions_resent_total', 'counter', 'Native profiles sent again with their definitions because ingest lacked them (409)');
    m.define('kiln_agent_upload_latency_seconds_sum', 'counter', 'Total time of accepted uploads');
    m.define('kiln_agent_upload_latency_seconds_last', 'gauge', 'Time of the last accepted upload');
    m.define('kiln_agent_cpu_share', 'gauge', "The agent's own CPU over the last period, as a share of one core");
    m.define('kiln_agent_sampling_frequency_hz', 'gauge', 'Current sampling frequency per CPU');
    m.set('kiln_agent_sampling_frequency_hz', this.options.frequency);
  }

  private serveMetrics(port: number): Promise<void> {
    this.metricsServer = createServer((req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.metrics.render());
      } else {
        res.writeHead(404).end('see /metrics\n');
      }
    });
    return new Promise((resolve, reject) => {
      this.metricsServer!.once('error', reject);
      this.metricsServer!.listen(port, () => resolve());
    });
  }

  /** One upload period: take the window's profiles, queue them, adjust to the budget. */
  private async period(): Promise<void> {
    if (this.stopping) return;
    try {
      const parts = await this.recorder.take();
      if (this.stopping) return; // stop() takes the rest
      await this.enqueue(parts);
      this.updateKernelMetrics();
      this.applyBudget();
    } catch (err) {
      this.options.log(`period failed: ${(err as Error).message}`);
    }
    this.kick();
  }

  private identity(pid: number, started: number): ProcessIdentity {
    const key = `${pid}:${started}`;
    let id = this.identities.get(key);
    if (!id) {
      id = identify(pid);
      this.identities.set(key, id);
    }
    return id;
  }

  private async enqueue(parts: ProcessProfile[]): Promise<void> {
    const live = new Set<string>();
    for (const part of parts) {
      const samples = totalSamples(part.profile);
      if (!samples) continue;
      const key = `${part.pid}:${part.startTime}`;
      live.add(key);
      const id = this.identity(part.pid, part.startTime);
      const params: Record<string, string> = {
        service: id.service,
        host: this.options.host,
        pid: String(part.pid),
        python_version: part.pythonVersion,
      };
      if (id.containerId) params.container_id = id.containerId;
      let dictionary = this.dictionaries.get(key);
      if (!dictionary || dictionary.size > MAX_DICTIONARY_LOCATIONS) this.dictionaries.set(key, (dictionary = new PprofDictionary()));
      this.metrics.add('kiln_agent_profiles_total', 1);
      let dropped: string | undefined;
      try {
        dropped = this.queue.push(params, await this.encode(part.profile, dictionary));
      } catch (err) {
        this.options.log(`cannot encode the profile of pid ${part.pid}: ${(err as Error).message}`);
        this.metrics.add('kiln_agent_profiles_dropped_total', 1, { reason: 'encode_failed' });
        continue;
      }
      this.noteQueueWrite(dropped);
      if (dropped) continue;
      this.metrics.add('kiln_agent_samples_total', samples);
      this.metrics.add('kiln_agent_stacks_total', part.profile.samples.length);
    }
    // a process with nothing in a whole period is gone or idle: its ids start over if it comes back
    for (const key of this.dictionaries.keys()) if (!live.has(key)) this.dictionaries.delete(key);
    this.metrics.set('kiln_agent_processes_followed', this.recorder.followedPids().length);
    this.updateQueueMetrics();
  }

  private async encode(profile: Profile, dictionary: PprofDictionary): Promise<Buffer> {
    if (this.options.uploadFormat === 'native' && !this.pprofOnly) return Buffer.from(this.native.encode(profile));
    return encodePprof(profile, { dictionary, level: 1 });
  }

  /** The reason the queue last failed a write, said once until writes succeed again. */
  private writeTrouble: string | undefined;

  private noteQueueWrite(dropped: string | undefined): void {
    if (dropped === 'queue_full') return; // the bound doing its job: counted, not a fault
    if (dropped && dropped !== this.writeTrouble)
      this.options.log(`cannot write to the queue in ${this.options.queueDir} (${dropped === 'no_space' ? 'no space left' : 'write failed'}): dropping profiles until it can, counted in kiln_agent_profiles_dropped_total{reason="${dropped}"}`);
    else if (!dropped && this.writeTrouble) this.options.log(`writing to the queue again`);
    this.writeTrouble = dropped;
  }

  private updateQueueMetrics(): void {
    this.metrics.set('kiln_agent_queue_profiles', this.queue.length);
    this.metrics.set('kiln_agent_queue_bytes', this.queue.bytes);
    this.metrics.set('kiln_agent_queue_foreign_files', this.queue.foreign);
    for (const [reason, n] of this.queue.dropped) this.metrics.set('kiln_agent_profiles_dropped_total', n, { reason });
  }

  private updateKernelMetrics(): void {
    const k = this.recorder.kernelStats();
    for (const name of STAT_NAMES) if (!name.startsWith('ns_')) this.metrics.set('kiln_agent_kernel_events_total', k[name], { kind: name });
    const code = this.recorder.codeStats();
    this.metrics.set('kiln_agent_code_objects_total', code.named, { outcome: 'named' });
    for (const [reason, n] of Object.entries(code.faults)) this.metrics.set('kiln_agent_code_objects_total', n, { outcome: reason });
    for (const [reason, n] of Object.entries(this.recorder.droppedProcesses())) this.metrics.set('kiln_agent_processes_dropped_total', n, { reason });
    const run = this.recorder.runStats();
    this.metrics.set('kiln_agent_bpf_run_time_seconds_total', run.runTimeNs / 1e9);
    this.metrics.set('kiln_agent_bpf_runs_total', run.runCount);
  }

  /**
   * Halves the frequency while the agent's own CPU, plus the BPF program's
   * time when the kernel counts it, is over budget; doubles it back (up to the
   * configured frequency) once well under.
   */
  private applyBudget(): void {
    const cpu = process.cpuUsage(this.lastCpu);
    const wall = Number(process.hrtime.bigint() - this.lastWall) / 1e3; // µs
    const run = this.recorder.runStats();
    const bpfUs = (run.runTimeNs - this.lastRun.runTimeNs) / 1e3;
    this.lastCpu = process.cpuUsage();
    this.lastWall = process.hrtime.bigint();
    this.lastRun = run;
    if (wall <= 0 || this.periods++ === 0) return;
    const share = (cpu.user + cpu.system + bpfUs) / wall;
    this.metrics.set('kiln_agent_cpu_share', share);
    const f = this.recorder.currentFrequency;
    let next = f;
    if (share > this.options.cpuBudget) next = Math.max(MIN_FREQUENCY, Math.floor(f / 2));
    else if (share < this.options.cpuBudget / 3) next = Math.min(this.options.frequency, f * 2);
    if (next !== f) {
      this.options.log(`own CPU ${(share * 100).toFixed(2)}% of a core (budget ${(this.options.cpuBudget * 100).toFixed(2)}%): sampling at ${next} Hz`);
      this.recorder.setFrequency(next);
      this.metrics.set('kiln_agent_sampling_frequency_hz', next);
    }
  }

  /** Starts the uploader unless it runs or waits out a backoff. */
  private kick(): void {
    if (this.uploading || this.retryTimer || this.stopped) return;
    this.uploading = this.drainQueue().finally(() => (this.uploading = undefined));
  }

  private async drainQueue(): Promise<void> {
    for (let item = this.queue.oldest(); item && !this.stopped; item = this.queue.oldest()) {
      const outcome = await this.send(item.params, item.body, `${this.options.host}/${item.id}`);
      if (outcome === 'retry') {
        this.backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, this.backoffMs * 2));
        const wait = this.backoffMs * (0.5 + Math.random() / 2);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, wait);
        break;
      }
      this.backoffMs = 0;
      this.queue.remove(item.id);
      this.updateQueueMetrics();
    }
    this.updateQueueMetrics();
  }

  /**
   * One queued profile to ingest. A native body whose definitions ingest
   * lacks is sent again with them; one ingest does not take at all goes as
   * pprof, and so does everything after it.
   */
  private async send(params: Record<string, string>, queued: Buffer, key: string): Promise<'done' | 'retry'> {
    let body = queued;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (isNative(body) && this.pprofOnly) {
        const whole = this.native.expand(body.toString());
        if (whole === undefined) return this.lost(params, 'the definitions it needs for pprof are no longer at hand');
        body = await encodePprof(decodeNative(whole), { level: 1 });
      }
      const outcome = await this.upload(params, body, key);
      if (outcome === 'done' || outcome === 'retry') return outcome;
      if (outcome === 'not-native') {
        this.options.log('ingest does not take the native form (an older version?): sending pprof from now on');
        this.pprofOnly = true;
        continue;
      }
      // 409: ingest lacks definitions this agent sent it before. Everything goes again, this one now.
      this.metrics.add('kiln_agent_definitions_resent_total', 1);
      this.native.forget();
      const whole = this.native.expand(body.toString());
      if (whole === undefined) return this.lost(params, 'ingest lacks its definitions and they are no longer at hand');
      body = Buffer.from(whole);
    }
    return this.lost(params, 'ingest kept refusing it');
  }

  private lost(params: Record<string, string>, why: string): 'done' {
    this.options.log(`a profile of ${params.service} (pid ${params.pid}) cannot be sent: ${why}`);
    this.metrics.add('kiln_agent_profiles_dropped_total', 1, { reason: 'refused' });
    return 'done';
  }

  /** `key` stays the same across retries of one queued profile, so ingest stores it once however often it is sent. */
  private async upload(params: Record<string, string>, payload: Buffer, key: string): Promise<'done' | 'retry' | 'resend' | 'not-native'> {
    const url = `${this.options.server.replace(/\/$/, '')}/api/v1/profiles?${new URLSearchParams(params)}`;
    const native = isNative(payload);
    const headers: Record<string, string> = { 'content-type': native ? NATIVE_CONTENT_TYPE : 'application/octet-stream', 'idempotency-key': key };
    let body = payload;
    if (native && body.length > GZIP_NATIVE_OVER) {
      body = gzipSync(body, { level: 1 });
      headers['content-encoding'] = 'gzip';
    }
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const t0 = process.hrtime.bigint();
    let status: number;
    try {
      const res = await post(url, body, headers, UPLOAD_TIMEOUT_MS);
      status = res.status;
      const text = res.text;
      if (native && status === 409) return 'resend';
      if (native && (status === 415 || (status === 400 && text.includes('malformed pprof')))) return 'not-native';
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        // the profile itself is refused: sending it again would fail again
        this.options.log(`ingest refused a profile of ${params.service} (pid ${params.pid}): ${status} ${text.slice(0, 200)}`);
        this.metrics.add('kiln_agent_profiles_dropped_total', 1, { reason: 'refused' });
        return 'done';
      }
    } catch (err) {
      this.metrics.add('kiln_agent_upload_failures_total', 1, { reason: 'unreachable' });
      if (this.backoffMs === 0) this.options.log(`ingest unreachable (${(err as Error).message}): queueing and retrying`);
      return 'retry';
    }
    if (status >= 300) {
      this.metrics.add('kiln_agent_upload_failures_total', 1, { reason: `http_${status}` });
      if (this.backoffMs === 0) this.options.log(`ingest answered ${status}: queueing and retrying`);
      return 'retry';
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    this.metrics.add('kiln_agent_uploads_total', 1);
    this.metrics.add('kiln_agent_upload_latency_seconds_sum', seconds);
    this.metrics.set('kiln_agent_upload_latency_seconds_last', seconds);
    return 'done';
  }

  /** Queues the last window, tries once more to send, and stops; what is not sent stays queued on disk. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.periodTimer);
    await this.currentPeriod;
    await this.enqueue(await this.recorder.stop());
    await this.uploading;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.backoffMs = 0;
    this.kick();
    await this.uploading;
    clearTimeout(this.retryTimer);
    this.stopped = true;
    await new Promise<void>((resolve) => (this.metricsServer ? this.metricsServer.close(() => resolve()) : resolve()));
  }
}

const MAGIC = Buffer.from(NATIVE_MAGIC);

/** A queued body in the native form (it starts with its magic line); pprof is gzipped. */
function isNative(body: Buffer): boolean {
  return body.length >= MAGIC.length && MAGIC.equals(body.subarray(0, MAGIC.length));
}
