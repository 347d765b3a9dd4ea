/**
 * The committer: profiles' rows in, acknowledgements out once they are
 * durable, and batches of INSERTs behind, each profile stored exactly once.
 *
 * A push goes through three steps:
 *
 * 1. Checks. Its rows must walk as kiln_ingest rows (rowbinary.ts: RowBinary
 *    has no delimiters, so one bad row would shift a whole batch), the
 *    backlog must have room (else 503 with Retry-After), and its idempotency
 *    key must not be pending here already.
 * 2. Key lookup. Pushes are looked up in kiln_keys in rounds (one at a time,
 *    at most one every lookupSpacingMs, on a lane of their own), so a burst
 *    costs a few lookups, not one per push. A stored key is answered as a
 *    duplicate.
 * 3. The log (wal.ts). The push is appended to the write-ahead log, which
 *    writes what arrived meanwhile as one group with one fdatasync, and is
 *    acknowledged once its group is on disk.
 *
 * Storing happens behind: the log's open segment is taken as a batch when
 * it holds minRows rows, when its first push has waited maxDelayMs, when a
 * query is waiting for what was acknowledged before it (visible()), or at
 * flush; a segment that reaches maxRows while every insert lane is busy is
 * sealed and queued. A batch is its dictionary rows (ReplacingMergeTree
 * tables: writing one twice is harmless) and one INSERT of its kiln_ingest
 * rows with the segment's name as insert_deduplication_token; its views put
 * every profile's samples, profile row and key into their tables as one
 * deduplicated block each. The segment is removed once that succeeded. If
 * the store is unavailable the batch is tried again, with the same token,
 * until it takes it; if the process dies, the next start stores every
 * segment left, with its token: each acknowledged profile ends up stored
 * exactly once. A profile the engine refuses (it should not happen: Kiln
 * renders every row itself) is isolated by splitting the batch, counted,
 * and kept in the log's rejected/ directory; the others are stored once.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpError } from './limits.js';
import { checkIngestRows } from './rowbinary.js';
import { DICT_TABLES } from './rows.js';
import type { KnownStacks } from './known.js';
import { INGEST_INSERT_SETTINGS, INGEST_ROWBINARY_STRUCTURE, INSERT_COLUMNS, storedKeysSql, storedStacksSql } from './schema.js';
import { StorageError, type Store } from './store.js';
import { IngestLog, type LogRecord, type Segment } from './wal.js';
import type { Built } from './worker.js';

export type Outcome = 'stored' | 'duplicate';

export interface CommitOptions {
  /** A batch goes out once it holds this many rows... */
  minRows?: number;
  /** ...or its first profile has waited this long, ms. */
  maxDelayMs?: number;
  /** The most rows one INSERT carries. */
  maxRows?: number;
  /** Rows acknowledged but not yet stored (or being looked up) before ingest answers 503. */
  maxPendingRows: number;
  /** How long a retried key waits for the push that holds it, ms. */
  keyWaitMs?: number;
  /** Key lookups start at most this often, ms: pushes arriving meanwhile share one. */
  lookupSpacingMs?: number;
  walDir: string;
  log: (m: string) => void;
  /** Called when rows carrying dictionary entries were dropped, so workers write them again. */
  onDictDropped: () => void;
  /** The dictionary generation now; rows built under an older one may lack entries. */
  generation: () => number;
  /** Stacks known to be stored or logged (known.ts): this adds what pushes define and lookups find. */
  known: KnownStacks;
}

interface Waiter {
  built: Built;
  resolve: (o: Outcome) => void;
  reject: (e: unknown) => void;
}

export interface CommitStats {
  /** Pushes acknowledged: on disk in the log, to be stored. */
  profilesAcknowledged: number;
  /** Profiles stored in the tables (after their acknowledgement). */
  profilesStored: number;
  duplicates: number;
  batches: number;
  batchRows: number;
  insertMs: number;
  /** Batches tried again after the store failed, and batches an earlier run left. */
  replays: number;
  /** Profiles acknowledged, then refused by the store (kept in the log's rejected/ directory). */
  rejectedByStore: number;
  /** Pushes whose rows did not walk (a bug in Kiln): answered 500, never logged. */
  malformed: number;
  backlogRefusals: number;
  lookups: number;
  /** Time spent in key (and stack) lookups, ms. */
  lookupMs: number;
  /** Lookups of stacks native pushes counted without defining, and pushes refused (409) for a stack not stored. */
  stackLookups: number;
  unknownStacks: number;
  /** Queries that waited for acknowledged pushes to be stored, and those that gave up waiting. */
  queryWaits: number;
  queryWaitTimeouts: number;
}

export class Committer {
  private readonly wal: IngestLog;
  private lookupQueue: Waiter[] = [];
  private lookupRows = 0;
  private lookupRunning = false;
  private lookupTimer: NodeJS.Timeout | undefined;
  private lastLookup = -Infinity;
  /** Sealed segments waiting for a lane, oldest first. */
  private readonly sealed: Segment[] = [];
  /** Segments not yet stored (sealed or being inserted); the open one is the log's. */
  private readonly unstored = new Set<Segment>();
  private readonly free: number[] = [];
  /** Keys being looked up, logged or stored -> what their push comes to. */
  private readonly pendingKeys = new Map<string, Promise<Outcome>>();
  private readonly owners = new WeakMap<LogRecord, Promise<Outcome>>();
  private batchTimer: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<void>>();
  private closing = false;
  /** Queries waiting for acknowledged pushes to be stored: store the open segment now. */
  private urgent = 0;
  private draining = false;
  private readonly visibility: { target: number; resolve: () => void }[] = [];
  readonly stats: CommitStats = {
    profilesAcknowledged: 0,
    profilesStored: 0,
    duplicates: 0,
    batches: 0,
    batchRows: 0,
    insertMs: 0,
    replays: 0,
    rejectedByStore: 0,
    malformed: 0,
    backlogRefusals: 0,
    lookups: 0,
    lookupMs: 0,
    stackLookups: 0,
    unknownStacks: 0,
    queryWaits: 0,
    queryWaitTimeouts: 0,
  };
  private readonly minRows: number;
  private readonly maxRows: number;
  private readonly maxDelayMs: number;
  private readonly keyWaitMs: number;
  private readonly lookupSpacingMs: number;
  /** Rows stored per second, recently: how long a full backlog takes to drain (Retry-After). */
  private storeRate = 100_000;

  constructor(
    private readonly store: Store,
    private readonly opts: CommitOptions,
  ) {
    for (let i = 0; i < store.insertLanes; i++) this.free.push(i);
    this.minRows = opts.minRows ?? 100_000;
    this.maxRows = opts.maxRows ?? 400_000;
    this.maxDelayMs = opts.maxDelayMs ?? 1_000;
    this.keyWaitMs = opts.keyWaitMs ?? 5_000;
    this.lookupSpacingMs = opts.lookupSpacingMs ?? 20;
    this.wal = new IngestLog(opts.walDir);
  }

  /** The write-ahead log (its stats and size for /metrics). */
  get log(): IngestLog {
    return this.wal;
  }

  /** Rows waiting for a key lookup, or acknowledged and not yet stored. */
  get pendingRows(): number {
    let rows = this.lookupRows + (this.wal.open?.rows ?? 0);
    for (const s of this.unstored) rows += s.rows;
    return rows;
  }

  /** Takes the log's directory for this process (throws if another one holds it). Call first. */
  async open(): Promise<void> {
    await this.wal.lock();
  }

  /** Stores what an earlier run left in the log, each batch with its token. Call before taking pushes. */
  async recover(): Promise<number> {
    const left = await this.wal.leftovers();
    for (const s of left) {
      this.opts.log(`kiln: storing batch ${s.token} (${s.records.length} profiles) from the ingest log`);
      this.stats.replays++;
      await this.storeSegment(0, s);
    }
    return left.length;
  }

  submit(built: Built): Promise<Outcome> {
    if (this.closing) return Promise.reject(new HttpError(503, 'shutting down', 'the service is stopping; retry', 1));
    if (built.generation !== this.opts.generation()) {
      // Built while a dropped push's dictionary rows were still counted as written.
      this.keepDict(built);
      return Promise.reject(new HttpError(503, 'ingest caches reset', 'retry the push', 1));
    }
    const inFlight = this.pendingKeys.get(built.key);
    if (inFlight) return this.waitForKey(inFlight);
    const rows = built.dataRows + built.dictRows;
    const pending = this.pendingRows;
    if (pending + rows > this.opts.maxPendingRows) {
      this.stats.backlogRefusals++;
      this.keepDict(built);
      return Promise.reject(
        new HttpError(503, 'ingest backlog full', `${pending} rows are waiting for the store; retry later`, Math.min(30, pending / this.storeRate)),
      );
    }
    const why = checkIngestRows(built.data, built.dataRows, built.response.service);
    if (why) {
      this.stats.malformed++;
      this.keepDict(built);
      return Promise.reject(new HttpError(500, 'rows refused', `the rows built for this profile are malformed (${why}); nothing was stored`));
    }
    const p = new Promise<Outcome>((resolve, reject) => this.lookupQueue.push({ built, resolve, reject }));
    this.lookupRows += rows;
    this.pendingKeys.set(built.key, p);
    // A waiter settles once; the key stays pending until its push is stored.
    p.catch(() => {});
    this.scheduleLookup();
    return p;
  }

  /**
   * A push is refused, but its dictionary rows are rows like any other and
   * its worker counts them as written: they go into the log (and are stored
   * with the next batch), so the workers need not forget everything.
   */
  private keepDict(b: Built): void {
    if (b.dictRows === 0) return;
    const { durable } = this.wal.append({ key: b.key, data: new Uint8Array(0), dataRows: 0, dict: b.dict, dictRows: b.dictRows });
    durable.catch(() => this.opts.onDictDropped());
    this.scheduleBatches();
  }

  private async waitForKey(p: Promise<Outcome>): Promise<Outcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HttpError(503, 'push in progress', 'a push with this key is being stored; retry', 1)),
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

  private scheduleLookup(): void {
    if (this.lookupRunning || this.lookupTimer || this.lookupQueue.length === 0) return;
    const wait = this.lastLookup + this.lookupSpacingMs - performance.now();
    if (wait > 0) {
      this.lookupTimer = setTimeout(() => {
        this.lookupTimer = undefined;
        this.scheduleLookup();
      }, wait);
      return;
    }
    const round = this.lookupQueue;
    this.lookupQueue = [];
    this.lookupRunning = true;
    this.lastLookup = performance.now();
    void this.lookupRound(round).finally(() => {
      this.lookupRunning = false;
      this.scheduleLookup();
    });
  }

  /**
   * One key lookup for every push queued: stored keys are duplicates, the
   * rest go to the log. A native push that counts stacks its worker does not
   * know has them looked up too (one more query, in the rare rounds that need
   * it); if any is not stored, the push is refused with 409 and its sender
   * sends the definitions again.
   */
  private async lookupRound(round: Waiter[]): Promise<void> {
    const rowsOf = (w: Waiter): number => w.built.dataRows + w.built.dictRows;
    const today = Math.floor(Date.now() / 86_400_000);
    const known = this.opts.known;
    let stored: Set<string>;
    let stacksFound = new Set<string>();
    const stacksAsked: bigint[] = [];
    for (const w of round) {
      const u = w.built.unknownStacks;
      for (let i = 0; i + 1 < u.length; i += 2) if (!known.has(u[i]!, u[i + 1]!, today)) stacksAsked.push(idOf(u[i]!, u[i + 1]!));
    }
    const t0 = performance.now();
    try {
      this.stats.lookups++;
      const rows = await this.store.lookup(storedKeysSql(this.store.ctx), { keys: round.map((w) => BigInt(w.built.key)) });
      stored = new Set(rows.map((r) => r[0]!));
      if (stacksAsked.length > 0) {
        this.stats.stackLookups++;
        stacksFound = new Set((await this.store.lookup(storedStacksSql(this.store.ctx), { ids: stacksAsked })).map((r) => r[0]!));
      }
    } catch (e) {
      for (const w of round) {
        this.lookupRows -= rowsOf(w);
        this.pendingKeys.delete(w.built.key);
        this.keepDict(w.built);
        w.reject(e);
      }
      return;
    } finally {
      this.stats.lookupMs += performance.now() - t0;
    }
    for (const id of stacksFound) {
      const v = BigInt(id);
      known.add(Number(v & 0xffff_ffffn), Number(v >> 32n), today);
    }
    for (const w of round) {
      this.lookupRows -= rowsOf(w);
      const b = w.built;
      if (stored.has(b.key)) {
        this.pendingKeys.delete(b.key);
        this.keepDict(b);
        this.stats.duplicates++;
        w.resolve('duplicate');
        continue;
      }
      const missing = missingStacks(b.unknownStacks, known, today);
      if (missing > 0) {
        this.pendingKeys.delete(b.key);
        this.keepDict(b);
        this.stats.unknownStacks++;
        w.reject(
          new HttpError(
            409,
            'unknown stacks',
            `${missing} stack ids are counted without a definition and are not known here; send their S, L and F records again`,
          ),
        );
        continue;
      }
      const record: LogRecord = { key: b.key, data: b.data, dataRows: b.dataRows, dict: b.dict, dictRows: b.dictRows };
      const pending = this.pendingKeys.get(b.key);
      if (pending) this.owners.set(record, pending);
      this.wal.append(record).durable.then(
        () => {
          known.addAll(b.definedStacks, today);
          this.stats.profilesAcknowledged++;
          w.resolve('stored');
        },
        (e: unknown) => {
          this.pendingKeys.delete(b.key);
          if (b.dictRows > 0) this.opts.onDictDropped();
          this.opts.log(`kiln: writing the ingest log in ${this.wal.dir}: ${e instanceof Error ? e.message : String(e)}`);
          w.reject(new HttpError(503, 'ingest log unavailable', 'cannot write the ingest log; retry', 1));
        },
      );
    }
    const open = this.wal.open;
    if (open && open.rows >= this.maxRows) this.sealed.push(this.seal()!);
    this.scheduleBatches();
  }

  /** Closes the open segment; it counts as unstored until its batch is in. */
  private seal(): Segment | undefined {
    const s = this.wal.seal();
    if (s) this.unstored.add(s);
    return s;
  }

  private scheduleBatches(): void {
    while (this.free.length > 0) {
      let next = this.sealed.shift();
      if (!next) {
        const open = this.wal.open;
        if (!open || open.records.length === 0) break;
        const age = performance.now() - open.since;
        const go = this.draining || this.urgent > 0 || open.rows >= this.minRows || age >= this.maxDelayMs;
        if (!go) {
          this.batchTimer ??= setTimeout(() => {
            this.batchTimer = undefined;
            this.scheduleBatches();
          }, this.maxDelayMs - age + 1);
          break;
        }
        next = this.seal()!;
      }
      const lane = this.free.pop()!;
      const run = this.storeSegment(lane, next).finally(() => {
        this.free.push(lane);
        this.running.delete(run);
        this.scheduleBatches();
      });
      this.running.add(run);
    }
  }

  /**
   * Stores one segment: tries until the store takes it (or the process is
   * stopping: it stays in the log for the next start), then removes it.
   */
  private async storeSegment(lane: number, s: Segment): Promise<void> {
    this.unstored.add(s);
    try {
      await s.settled();
      const t0 = performance.now();
      for (let attempt = 0; ; attempt++) {
        const r = await this.insertBatch(lane, s);
        if (!r.unavailable) {
          const ms = performance.now() - t0;
          this.stats.insertMs += ms;
          this.stats.batches++;
          this.stats.batchRows += s.rows;
          if (s.rows > 10_000) this.storeRate = 0.8 * this.storeRate + (0.2 * s.rows) / Math.max(0.001, ms / 1000);
          if (attempt > 0) this.stats.replays++;
          this.stats.profilesStored += s.records.filter((x, i) => x.dataRows > 0 && !r.rejected.has(i)).length;
          await this.quarantine(s, r.rejected);
          await this.wal.remove(s);
          break;
        }
        if (this.closing) {
          this.opts.log(`kiln: batch ${s.token} stays in the ingest log for the next start (${r.unavailable})`);
          return;
        }
        if (attempt === 0) this.opts.log(`kiln: storing batch ${s.token} failed (${r.unavailable}); trying again`);
        await new Promise((res) => setTimeout(res, Math.min(10_000, 100 * 2 ** Math.min(attempt, 7))));
      }
      for (const rec of s.records) {
        const owner = this.owners.get(rec);
        if (owner && this.pendingKeys.get(rec.key) === owner) this.pendingKeys.delete(rec.key);
      }
    } finally {
      this.unstored.delete(s);
      this.wakeQueries();
    }
  }

  /** Profiles the store refused: counted, logged, and their rows kept for a post-mortem. */
  private async quarantine(s: Segment, rejected: Map<number, string>): Promise<void> {
    if (rejected.size === 0) return;
    const dir = join(this.wal.dir, 'rejected');
    await mkdir(dir, { recursive: true }).catch(() => {});
    for (const [i, why] of rejected) {
      const r = s.records[i]!;
      this.stats.rejectedByStore++;
      this.opts.log(`kiln: the store refused profile ${r.key} of batch ${s.token} (${why}); its rows are in ${dir}`);
      await writeFile(join(dir, `${s.token}-${i}.rowbinary`), r.data).catch(() => {});
    }
    if ([...rejected.keys()].some((i) => s.records[i]!.dictRows > 0)) {
      this.opts.onDictDropped();
      this.opts.known.clear();
    }
  }

  /**
   * The batch's INSERTs. Returns which records (by index) the engine refused,
   * or `unavailable` when the store failed and the batch must be tried again.
   */
  private async insertBatch(lane: number, s: Segment): Promise<{ rejected: Map<number, string>; unavailable?: string }> {
    const rejected = new Map<number, string>();
    const records = s.records;
    try {
      for (const t of DICT_TABLES) {
        const parts = records.map((r) => r.dict[t]);
        if (parts.every((p) => p.length === 0)) continue;
        try {
          await this.store.insert(lane, t, INSERT_COLUMNS[t], Buffer.concat(parts));
        } catch (e) {
          if (!(e instanceof StorageError && e.kind === 'rejected')) throw e;
          // One profile's rows at a time, to find whose the engine refuses.
          for (let i = 0; i < records.length; i++) {
            const part = parts[i]!;
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
      const parts = records.map((r, i) => ({ i, data: r.data })).filter((p) => p.data.length > 0 && !rejected.has(p.i));
      await this.insertData(lane, s.token, parts, rejected);
      return { rejected };
    } catch (e) {
      return { rejected, unavailable: e instanceof Error ? e.message : String(e) };
    }
  }

  /** One INSERT into kiln_ingest; on a data error, halves with derived tokens until the refused profile is alone. */
  private async insertData(lane: number, token: string, parts: { i: number; data: Uint8Array }[], rejected: Map<number, string>): Promise<void> {
    if (parts.length === 0) return;
    try {
      await this.store.insertRowBinary(
        lane,
        'ingest',
        INGEST_ROWBINARY_STRUCTURE,
        parts.map((p) => p.data),
        { ...INGEST_INSERT_SETTINGS, insert_deduplication_token: token },
      );
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

  /** Every record with a sequence number up to this one is stored. */
  private storedThrough(): number {
    let low = this.wal.lastSeq;
    const open = this.wal.open;
    if (open && open.records.length > 0) low = Math.min(low, open.firstSeq - 1);
    for (const s of this.unstored) low = Math.min(low, s.firstSeq - 1);
    return low;
  }

  private wakeQueries(): void {
    if (this.visibility.length === 0) return;
    const through = this.storedThrough();
    for (let i = this.visibility.length - 1; i >= 0; i--) {
      const v = this.visibility[i]!;
      if (v.target <= through) {
        this.visibility.splice(i, 1);
        v.resolve();
      }
    }
  }

  /**
   * Read-your-writes: resolves once every push acknowledged before the call
   * is stored, storing the open segment now rather than when it is full.
   * Gives up after maxWaitMs (the store down or far behind) and resolves
   * false: the query then answers with what is stored.
   */
  async visible(maxWaitMs: number): Promise<boolean> {
    const target = this.wal.lastSeq;
    if (this.storedThrough() >= target) return true;
    this.stats.queryWaits++;
    this.urgent++;
    let timer: NodeJS.Timeout | undefined;
    try {
      this.scheduleBatches();
      return await new Promise<boolean>((resolve) => {
        const entry = { target, resolve: () => resolve(true) };
        this.visibility.push(entry);
        timer = setTimeout(() => {
          const i = this.visibility.indexOf(entry);
          if (i >= 0) this.visibility.splice(i, 1);
          this.stats.queryWaitTimeouts++;
          resolve(false);
        }, maxWaitMs);
      });
    } finally {
      clearTimeout(timer);
      this.urgent--;
    }
  }

  /** Stores everything acknowledged so far and waits for it (shutdown, tests, benches). */
  async flush(): Promise<void> {
    this.draining = true;
    try {
      for (;;) {
        while (this.lookupQueue.length > 0 || this.lookupRunning || this.lookupTimer) {
          await new Promise((r) => setTimeout(r, 5));
        }
        await this.wal.open?.settled();
        this.scheduleBatches();
        if (this.running.size === 0 && !this.wal.open?.records.length && this.sealed.length === 0) break;
        await Promise.allSettled([...this.running]);
      }
    } finally {
      this.draining = false;
    }
  }

  /** Stores what is acknowledged (or, with the store down, leaves it in the log for the next start) and stops. */
  async close(): Promise<void> {
    this.closing = true;
    await this.flush();
    clearTimeout(this.batchTimer);
    clearTimeout(this.lookupTimer);
    await this.wal.close();
  }
}

function idOf(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** How many of [lo, hi, ...] are not known on `today`. */
function missingStacks(ids: Uint32Array, known: KnownStacks, today: number): number {
  let n = 0;
  for (let i = 0; i + 1 < ids.length; i += 2) if (!known.has(ids[i]!, ids[i + 1]!, today)) n++;
  return n;
}
