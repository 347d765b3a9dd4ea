/**
 * The ingest worker pool: N threads running worker.ts. A service's profiles
 * go to the same worker while its queue is not much longer than the
 * shortest (that worker's caches already hold the service's stacks); past
 * that, to the least busy one.
 */

import { Worker } from 'node:worker_threads';
import type { Built, StatsRequest, Task, TaskResult, WorkerConfig } from './worker.js';
import { HttpError } from './limits.js';
import type { KnownStacks } from './known.js';
import type { Faults } from './rows.js';
import type { Limits } from './limits.js';

interface Slot {
  worker: Worker;
  queued: number;
  pending: Map<number, { resolve: (b: Built) => void; reject: (e: unknown) => void }>;
  stats: ((cpuMs: number) => void)[];
}

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  /** [0]: the dictionary generation (see worker.ts). */
  private readonly generation = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    size: number,
    opts: { limits: Limits; retentionDays: number; faults?: Faults; known: KnownStacks; log: (m: string) => void },
  ) {
    const config: WorkerConfig = {
      limits: opts.limits,
      retentionDays: opts.retentionDays,
      faults: opts.faults ?? {},
      generation: this.generation.buffer as SharedArrayBuffer,
      known: opts.known.buffer,
    };
    for (let i = 0; i < Math.max(1, size); i++) {
      const slot: Slot = { worker: undefined as unknown as Worker, queued: 0, pending: new Map(), stats: [] };
      this.slots.push(slot);
      this.start(slot, i, config, opts.log);
    }
  }

  /** Starts (or restarts) a slot's thread; a thread that dies fails what it held and is replaced. */
  private start(slot: Slot, i: number, config: WorkerConfig, log: (m: string) => void): void {
    const worker = new Worker(ENTRY, { workerData: { kilnIngestWorker: true, config }, name: `kiln-ingest-${i}` });
    slot.worker = worker;
    worker.on('message', (msg: TaskResult | { stats: true; cpuMs: number }) => {
      if ('stats' in msg) {
        slot.stats.shift()?.(msg.cpuMs);
        return;
      }
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      slot.queued--;
      if (msg.ok) p.resolve(msg);
      else p.reject(new HttpError(msg.status, msg.error, msg.detail));
    });
    worker.on('error', (e) => log(`kiln: ingest worker ${i} failed: ${e instanceof Error ? e.message : String(e)}`));
    worker.on('exit', () => {
      for (const p of slot.pending.values()) p.reject(new HttpError(503, 'ingest worker restarted', 'retry the push'));
      slot.pending.clear();
      slot.queued = 0;
      for (const s of slot.stats.splice(0)) s(0);
      if (!this.closed) this.start(slot, i, config, log);
    });
    worker.unref();
  }

  get size(): number {
    return this.slots.length;
  }

  /** Profiles being built or waiting for a worker. */
  get queued(): number {
    return this.slots.reduce((a, s) => a + s.queued, 0);
  }

  get currentGeneration(): number {
    return Atomics.load(this.generation, 0);
  }

  /** Every worker forgets which dictionary rows it wrote (some of them were dropped). */
  bumpGeneration(): void {
    Atomics.add(this.generation, 0, 1);
  }

  run(task: Omit<Task, 'id'>, affinity: string): Promise<Built> {
    if (this.closed) return Promise.reject(new HttpError(503, 'shutting down', 'the service is stopping'));
    let slot = this.slots[hashOf(affinity) % this.slots.length]!;
    const least = this.slots.reduce((a, b) => (b.queued < a.queued ? b : a));
    if (slot.queued > 2 * least.queued + 2) slot = least;
    const id = this.nextId++;
    slot.queued++;
    return new Promise<Built>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      // The body's bytes move to the worker; the request no longer needs them.
      const body = task.body;
      const whole = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && !(body.buffer instanceof SharedArrayBuffer);
      // Uint8Array's slice copies; a Buffer's (Buffer.slice) would be a view of the same memory.
      const own = whole ? body : Uint8Array.prototype.slice.call(body);
      slot.worker.postMessage({ ...task, body: own, id } satisfies Task, [own.buffer as ArrayBuffer]);
    });
  }

  /** CPU time of each worker thread so far, ms. */
  async cpuMs(): Promise<number[]> {
    return Promise.all(
      this.slots.map(
        (s) =>
          new Promise<number>((resolve) => {
            s.stats.push(resolve);
            s.worker.postMessage({ stats: true } satisfies StatsRequest);
          }),
      ),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

function hashOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
