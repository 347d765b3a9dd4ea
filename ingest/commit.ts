/**
 * The committer: profiles' rows in, batches of INSERTs out, each profile
 * stored exactly once.
 *
 * Batching by rows. An INSERT on the embedded engine has a fixed cost of
 * 15-25 ms (a part in each of five tables), and every part is one more for
 * merges to fold, so rows are grouped: a batch goes out on the first free
 * insert lane (several INSERTs run at once, each on its own chDB session)
 * when it holds minRows rows, when its oldest profile has waited maxDelayMs,
 * or at once when no more pushes are being decoded (waiting would only add
 * latency). While every lane is busy rows pile up, so batches grow with the
 * load (up to maxRows): the cost per profile falls as the rate rises.
 *
 * Exactly once (see ingest/README.md):
 * - A batch is two statements: the dictionary rows (ReplacingMergeTree
 *   tables: writing one twice is harmless) and one INSERT into the Null
 *   table kiln_ingest, whose views put every profile's samples, profile row
 *   and key into their tables as one block each, deduplicated by the batch's
 *   insert_deduplication_token.
 * - The batch is in the write-ahead log (wal.ts) before its first INSERT and
 *   leaves it after the last. A failed or interrupted batch is inserted again
 *   with the same token (in the background, and at start-up), so it ends up
 *   whole exactly once; its requests were answered 503, and the agents'
 *   retries find their keys stored.
 * - Keys: a batch first asks kiln_keys which of its keys are stored already;
 *   those profiles are answered as duplicates and not written. A key that is
 *   in a batch in flight waits for that batch.
 * - The engine rejecting a batch's data (it should not: Kiln renders every
 *   row itself) splits it in halves until the profile it cannot take is
 *   alone; that one is answered 500 and stored not at all, the others once.
 */

import { randomBytes } from 'node:crypto';
import { HttpError } from './limits.js';
import { DICT_TABLES } from './rows.js';
import { INGEST_INSERT_SETTINGS, INSERT_COLUMNS, storedKeysSql } from './schema.js';
import { StorageError, type Store } from './store.js';
import { Wal, type WalBatch } from './wal.js';
import type { Built } from './worker.js';

export type Outcome = 'stored' | 'duplicate';

export interface CommitOptions {
  /** A batch goes out once it holds this many rows... */
  minRows?: number;
  /** ...or its oldest profile has waited this long, ms. */
  maxDelayMs?: number;
  /** The most rows one INSERT carries. */
  maxRows?: number;
  /** Rows waiting for a lane before ingest answers 503. */
  maxPendingRows: number;
  /** How long a retried key waits for the batch that holds it, ms. */
  keyWaitMs?: number;
  walDir: string;
  log: (m: string) => void;
  /** Called when rows carrying dictionary entries were dropped, so workers write them again. */
  onDictDropped: () => void;
  /** The dictionary generation now; rows built under an older one may lack entries. */
  generation: () => number;
  /** Whether more pushes are being decoded: if none are, waiting for company only adds latency. */
  moreComing?: () => boolean;
}

interface Waiter {
  built: Built;
  resolve: (o: Outcome) => void;
  reject: (e: unknown) => void;
  since: number;
}

export interface CommitStats {
  profilesStored: number;
  duplicates: number;
  batches: number;
  batchRows: number;
  insertMs: number;
  replays: number;
  rejectedByStore: number;
  backlogRefusals: number;
}

export class Committer {
  private queue: Waiter[] = [];
  private queuedRows = 0;
  private inFlightRows = 0;
  private readonly free: number[] = [];
  /** Keys queued, in flight or being replayed -> what their batch comes to. */
  private readonly pendingKeys = new Map<string, Promise<Outcome>>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private readonly prefix = `${Date.now().toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
  private readonly wal: Wal;
  private readonly running = new Set<Promise<void>>();
  private closing = false;
  /** Send whatever is queued without waiting for company (flush). */
  private draining = false;
  readonly stats: CommitStats = {
    profilesStored: 0,
    duplicates: 0,
    batches: 0,
    batchRows: 0,
    insertMs: 0,
    replays: 0,
    rejectedByStore: 0,
    backlogRefusals: 0,
  };
  private readonly minRows: number;
  private readonly maxRows: number;
  private readonly maxDelayMs: number;
  private readonly keyWaitMs: number;

  constructor(
    private readonly store: Store,
    private readonly opts: CommitOptions,
  ) {
    for (let i = 0; i < store.insertLanes; i++) this.free.push(i);
    this.minRows = opts.minRows ?? 50_000;
    this.maxRows = opts.maxRows ?? 400_000;
    this.maxDelayMs = opts.maxDelayMs ?? 200;
    this.keyWaitMs = opts.keyWaitMs ?? 5_000;
    this.wal = new Wal(opts.walDir);
  }

  /** Rows of batches being inserted again after a failure (they count against the backlog too). */
  private replayingRows = 0;

  get pendingRows(): number {
    return this.queuedRows + this.inFlightRows + this.replayingRows;
  }

  /** Completes what an earlier run left in the write-ahead log. Call before taking pushes. */
  async recover(): Promise<number> {
    await this.wal.open();
    const batches = await this.wal.pending();
    for (const b of batches) {
      this.opts.log(`kiln: completing batch ${b.token} (${b.parts.length} profiles) from the write-ahead log`);
      await this.replay(this.store.replayLane, b);
    }
    return batches.length;
  }

  submit(built: Built): Promise<Outcome> {
    if (this.closing) return Promise.reject(new HttpError(503, 'shutting down', 'the service is stopping; retry'));
    if (built.generation !== this.opts.generation()) {
      // Built while a dropped batch's dictionary rows were still counted as written.
      if (built.dictRows > 0) this.opts.onDictDropped();
      return Promise.reject(new HttpError(503, 'ingest caches reset', 'retry the push'));
    }
    const inFlight = this.pendingKeys.get(built.key);
    if (inFlight) return this.waitForKey(inFlight);
    const rows = built.dataRows + built.dictRows;
    if (this.pendingRows + rows > this.opts.maxPendingRows) {
      this.stats.backlogRefusals++;
      if (built.dictRows > 0) this.opts.onDictDropped();
      return Promise.reject(new HttpError(503, 'ingest backlog full', `${this.pendingRows} rows are waiting for the store; retry later`));
    }
    const p = new Promise<Outcome>((resolve, reject) => {
      this.queue.push({ built, resolve, reject, since: performance.now() });
    });
    this.queuedRows += rows;
    this.pendingKeys.set(built.key, p);
    // Waiters settle once; the key stays pending until its batch is done (see runBatch).
    p.catch(() => {});
    this.schedule();
    return p;
  }

  private async waitForKey(p: Promise<Outcome>): Promise<Outcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HttpError(503, 'push in progress', 'a push with this key is being stored; retry')),
        this.keyWaitMs,
      );
    });
    try {
      await Promise.race([p, timeout]);
      return 'duplicate';
    } finally {
      clearTimeout(timer);
    }
  }

  private schedule(): void {
    while (this.free.length > 0 && this.queue.length > 0) {
      const age = performance.now() - this.queue[0]!.since;
      const wait = !this.draining && this.queuedRows < this.minRows && age < this.maxDelayMs && (this.opts.moreComing?.() ?? true);
      if (wait) {
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.schedule();
        }, this.maxDelayMs - age + 1);
        return;
      }
      const lane = this.free.pop()!;
      const batch: Waiter[] = [];
      let rows = 0;
      while (this.queue.length > 0) {
        const w = this.queue[0]!;
        const r = w.built.dataRows + w.built.dictRows;
        if (batch.length > 0 && rows + r > this.maxRows) break;
        this.queue.shift();
        batch.push(w);
        rows += r;
      }
      this.queuedRows -= rows;
      this.inFlightRows += rows;
      const run = this.runBatch(lane, batch).finally(() => {
        this.inFlightRows -= rows;
        this.free.push(lane);
        this.running.delete(run);
        this.schedule();
      });
      this.running.add(run);
    }
  }

  private async runBatch(lane: number, batch: Waiter[]): Promise<void> {
    const t0 = performance.now();
    // 1. Keys already stored (an earlier push whose answer was lost) are acknowledged, not written.
    let stored: Set<string>;
    try {
      const rows = await this.store.rows(storedKeysSql(this.store.ctx), { keys: batch.map((w) => BigInt(w.built.key)) });
      stored = new Set(rows.map((r) => String(r[0])));
    } catch (e) {
      this.fail(batch, e);
      return;
    }
    const fresh: Waiter[] = [];
    const dupes: Waiter[] = [];
    for (const w of batch) (stored.has(w.built.key) ? dupes : fresh).push(w);
    const wal: WalBatch = {
      token: `${this.prefix}-${String(this.seq++).padStart(8, '0')}`,
      // Duplicates' dictionary rows still go in: the workers count them as written.
      parts: [
        ...fresh.map((w) => ({ data: w.built.data, dict: w.built.dict })),
        ...dupes.map((w) => ({ data: new Uint8Array(0), dict: w.built.dict })),
      ],
    };
    try {
      await this.wal.write(wal);
    } catch (e) {
      this.opts.log(`kiln: writing the ingest log in ${this.wal.dir}: ${e instanceof Error ? e.message : String(e)}`);
      this.fail(batch, new StorageError('unavailable', 'cannot write the ingest log'));
      return;
    }
    const result = await this.insertBatch(lane, wal);
    this.stats.insertMs += performance.now() - t0;
    this.stats.batches++;
    this.stats.batchRows += batch.reduce((a, w) => a + w.built.dataRows + w.built.dictRows, 0);
    if (result.unavailable) {
      // Answer now (the agents retry), and complete the batch in the background
      // with the same token; its keys stay pending until then.
      const done = this.replayInBackground(this.store.replayLane, wal);
      for (const w of batch) {
        this.pendingKeys.set(w.built.key, done);
        w.reject(new HttpError(503, 'storage unavailable', result.unavailable));
      }
      done.finally(() => {
        for (const w of batch) if (this.pendingKeys.get(w.built.key) === done) this.pendingKeys.delete(w.built.key);
      });
      return;
    }
    await this.wal.remove(wal.token).catch(() => {});
    fresh.forEach((w, i) => {
      this.pendingKeys.delete(w.built.key);
      const err = result.rejected.get(i);
      if (err) {
        this.stats.rejectedByStore++;
        w.reject(new HttpError(500, 'storage rejected the profile', err));
      } else {
        this.stats.profilesStored++;
        w.resolve('stored');
      }
    });
    for (const w of dupes) {
      this.pendingKeys.delete(w.built.key);
      this.stats.duplicates++;
      w.resolve('duplicate');
    }
    if (result.rejected.size > 0 || result.dictRejected) this.opts.onDictDropped();
  }

  private fail(batch: Waiter[], e: unknown): void {
    for (const w of batch) {
      this.pendingKeys.delete(w.built.key);
      w.reject(e);
    }
    if (batch.some((w) => w.built.dictRows > 0)) this.opts.onDictDropped();
  }

  /**
   * The batch's INSERTs. Returns which profiles (by index) the engine refused,
   * or `unavailable` when the store failed and the batch must be tried again.
   */
  private async insertBatch(
    lane: number,
    b: WalBatch,
  ): Promise<{ rejected: Map<number, string>; dictRejected: boolean; unavailable?: string }> {
    const rejected = new Map<number, string>();
    let dictRejected = false;
    try {
      for (const t of DICT_TABLES) {
        const body = Buffer.concat(b.parts.map((p) => p.dict[t]));
        if (body.length === 0) continue;
        try {
          await this.store.insert(lane, t, INSERT_COLUMNS[t], body);
        } catch (e) {
          if (!(e instanceof StorageError && e.kind === 'rejected')) throw e;
          // One profile's rows at a time, to find whose the engine refuses.
          dictRejected = true;
          for (let i = 0; i < b.parts.length; i++) {
            const part = b.parts[i]!.dict[t];
            if (part.length === 0) continue;
            try {
              await this.store.insert(lane, t, INSERT_COLUMNS[t], Buffer.from(part));
            } catch (e2) {
              if (!(e2 instanceof StorageError && e2.kind === 'rejected')) throw e2;
              rejected.set(i, e2.message);
            }
          }
        }
      }
      const parts = b.parts.map((p, i) => ({ i, data: p.data })).filter((p) => p.data.length > 0 && !rejected.has(p.i));
      await this.insertData(lane, b.token, parts, rejected);
      return { rejected, dictRejected };
    } catch (e) {
      return { rejected, dictRejected, unavailable: e instanceof Error ? e.message : String(e) };
    }
  }

  /** One INSERT into kiln_ingest; on a data error, halves with derived tokens until the refused profile is alone. */
  private async insertData(lane: number, token: string, parts: { i: number; data: Uint8Array }[], rejected: Map<number, string>): Promise<void> {
    if (parts.length === 0) return;
    try {
      await this.store.insert(lane, 'ingest', INSERT_COLUMNS.ingest, Buffer.concat(parts.map((p) => p.data)), {
        ...INGEST_INSERT_SETTINGS,
        insert_deduplication_token: token,
      });
    } catch (e) {
      if (!(e instanceof StorageError && e.kind === 'rejected')) throw e;
      if (parts.length === 1) {
        rejected.set(parts[0]!.i, e.message);
        return;
      }
      const mid = parts.length >> 1;
      await this.insertData(lane, `${token}.0`, parts.slice(0, mid), rejected);
      await this.insertData(lane, `${token}.1`, parts.slice(mid), rejected);
    }
  }

  /** Inserts a logged batch again, with its token, until the store takes it. */
  private async replay(lane: number, b: WalBatch): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.insertBatch(lane, b);
      if (!r.unavailable) {
        this.stats.replays++;
        if (r.rejected.size > 0 || r.dictRejected) this.opts.onDictDropped();
        await this.wal.remove(b.token).catch(() => {});
        return;
      }
      if (this.closing) throw new StorageError('unavailable', r.unavailable);
      await new Promise((res) => setTimeout(res, Math.min(30_000, 250 * 2 ** Math.min(attempt, 7))));
    }
  }

  private replayInBackground(lane: number, b: WalBatch): Promise<Outcome> {
    const rows = b.parts.reduce((a, p) => a + countLines(p.data) + Object.values(p.dict).reduce((x, d) => x + countLines(d), 0), 0);
    this.replayingRows += rows;
    const p = this.replay(lane, b)
      .then(() => 'stored' as const)
      .finally(() => {
        this.replayingRows -= rows;
      });
    p.catch((e: unknown) => this.opts.log(`kiln: batch ${b.token} stays in the ingest log for the next start (${e instanceof Error ? e.message : String(e)})`));
    return p;
  }

  /** Sends what is queued now and waits for every batch (shutdown, tests). */
  async flush(): Promise<void> {
    this.draining = true;
    try {
      this.schedule();
      while (this.running.size > 0 || this.queue.length > 0) {
        await Promise.allSettled([...this.running]);
        this.schedule();
      }
    } finally {
      this.draining = false;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

function countLines(b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0a) n++;
  return n;
}
