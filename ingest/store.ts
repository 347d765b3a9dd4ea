/**
 * The one place Kiln talks to ClickHouse. Both modes go through
 * @clickhouse/client with the same SQL: embedded chDB through
 * createChdbConnection (data in a directory, nothing to install), or a
 * ClickHouse server / cluster over HTTP.
 *
 * Every failure leaves here as a StorageError: "unavailable" (unreachable,
 * timed out, closed, tables missing: worth retrying) or "rejected" (the engine
 * refused the statement or its data). The HTTP edge maps them to 503 and 500;
 * ingest retries the first kind and isolates the second. Nothing thrown by
 * chDB or the HTTP client escapes as an unhandled rejection.
 *
 * Queries and inserts are kept apart: queries go through one
 * @clickhouse/client (at most two at once on the embedded engine), and
 * ingest's batch INSERTs through insert lanes of their own (extra chDB
 * sessions on the same data directory, or the same HTTP client), so a slow
 * query never holds up ingest, and ingest never queues behind a query.
 */

import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';

type ClientOptions = NonNullable<Parameters<typeof createClient>[0]>;
import {
  MIGRATIONS,
  TABLES,
  checkIdentifier,
  modifyTtlSql,
  storageTable,
  tableNames,
  ttlClause,
  type SchemaContext,
  type TableName,
} from './schema.js';
import { tsvEscape } from './tsv.js';

export type StorageErrorKind = 'unavailable' | 'rejected';

/** What the store raises; the HTTP edge decides what status it is. */
export class StorageError extends Error {
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

/** The native chDB session the insert lanes use (chdb's Session, typed to what Kiln calls). */
interface ChdbSession {
  insert(p: { table: string; columns: readonly string[]; values: Buffer; format: 'TabSeparated'; settings: Record<string, string | number> }): Promise<unknown>;
  close(): void;
}

export interface StoreOptions {
  /** Embedded mode: chDB data directory (created if missing). Ignored when url is set. */
  data?: string;
  /** Server mode: e.g. http://localhost:8123 */
  url?: string;
  user?: string;
  password?: string;
  /** Default "kiln" embedded, "default" on a server. */
  database?: string;
  /** Cluster name for ON CLUSTER DDL, Replicated tables and Distributed tables. */
  cluster?: string;
  retentionDays: number;
  /** Per-request timeout against a server, ms. */
  requestTimeoutMs?: number;
  /** Insert lanes: batch INSERTs that may run at once (default 2). */
  insertLanes?: number;
  log?: (msg: string) => void;
}

export type StoreMode = 'embedded' | 'server' | 'cluster';

export type QueryParams = Record<string, unknown>;

export class Store {
  readonly mode: StoreMode;
  readonly ctx: SchemaContext;
  readonly t: Record<TableName, string>;
  readonly description: string;
  private readonly client: ClickHouseClient;
  private readonly limiter: Semaphore;
  /** Embedded mode: one chDB session per insert lane. */
  private sessions: ChdbSession[] = [];
  readonly insertLanes: number;
  /** The lane commit.ts replays failed batches on. */
  get replayLane(): number {
    return this.insertLanes;
  }
  private readonly log: (msg: string) => void;
  private migrated = false;
  private migrating: Promise<void> | undefined;
  private closed = false;

  private constructor(opts: StoreOptions, client: ClickHouseClient, mode: StoreMode, description: string) {
    this.mode = mode;
    this.client = client;
    this.description = description;
    this.log = opts.log ?? (() => {});
    const database = checkIdentifier(opts.database ?? (mode === 'embedded' ? 'kiln' : 'default'), 'database');
    const cluster = opts.cluster ? checkIdentifier(opts.cluster, 'cluster') : undefined;
    if (!(Number.isInteger(opts.retentionDays) && opts.retentionDays >= 1 && opts.retentionDays <= 36500)) {
      throw new Error(`retention must be a whole number of days between 1 and 36500, not ${opts.retentionDays}`);
    }
    this.ctx = { database, cluster, retentionDays: opts.retentionDays };
    this.t = tableNames(this.ctx);
    // chDB runs queries on libuv threads inside this process: keep at most two
    // in flight so ingest cannot starve queries of the machine (and vice versa).
    // A server gets more; it has its own scheduling.
    this.limiter = new Semaphore(mode === 'embedded' ? 2 : 16);
    this.insertLanes = Math.max(1, opts.insertLanes ?? 2);
  }

  /**
   * Opens the client. Embedded mode binds this process to the data directory
   * (chDB allows one directory per process); a server is not contacted until
   * the first query, so an unreachable server does not stop start-up.
   */
  static async open(opts: StoreOptions): Promise<Store> {
    if (opts.url) {
      const client = createClient({
        url: opts.url,
        username: opts.user ?? 'default',
        password: opts.password ?? '',
        request_timeout: opts.requestTimeoutMs ?? 30_000,
        application: 'kiln',
        // Every failure is mapped and reported by Kiln (mapError, the HTTP
        // error handler); the client's own logging would print each twice.
        log: { level: ClickHouseLogLevel.OFF },
      });
      const u = new URL(opts.url);
      return new Store(opts, client, opts.cluster ? 'cluster' : 'server', `${u.protocol}//${u.host}`);
    }
    if (opts.cluster) throw new Error('--cluster needs --clickhouse-url');
    const dir = resolve(opts.data ?? './kiln-data');
    mkdirSync(dir, { recursive: true });
    const { createChdbConnection } = await import('chdb/connection');
    // chdb types the connection against @clickhouse/client-common, while
    // @clickhouse/client 1.23 bundles its own copy of those types; same shape,
    // two declarations, so TypeScript needs telling.
    const connection = createChdbConnection({ path: dir }) as unknown as ClientOptions['connection'];
    const client = createClient({ connection, log: { level: ClickHouseLogLevel.OFF } });
    const store = new Store(opts, client, 'embedded', `chdb:${dir}`);
    // Several sessions on one data directory in one process: measured faster
    // than one (each INSERT runs on its own libuv thread), and a second
    // process could not open the directory anyway.
    const { Session } = await import('chdb');
    // One more for replaying failed batches (commit.ts), so it never shares a session with a live batch.
    store.sessions = Array.from({ length: store.insertLanes + 1 }, () => new Session(dir) as unknown as ChdbSession);
    return store;
  }

  /**
   * Creates or migrates the schema (idempotent), then brings the TTLs in line
   * with the configured retention. Concurrent callers share one attempt; a
   * failed attempt is retried by the next caller.
   */
  async ready(): Promise<void> {
    if (this.migrated) return;
    if (this.closed) throw new StorageError('unavailable', 'the store is closed');
    this.migrating ??= this.migrate().finally(() => {
      this.migrating = undefined;
    });
    return this.migrating;
  }

  private async migrate(): Promise<void> {
    for (const m of MIGRATIONS) {
      for (const sql of m.statements(this.ctx)) await this.command(sql);
    }
    await this.applyRetention();
    const applied = await this.rows(`SELECT version FROM ${this.t.schema}`, {});
    const have = new Set(applied.map((r) => Number(r[0])));
    const missing = MIGRATIONS.filter((m) => !have.has(m.version));
    if (missing.length > 0) {
      await this.insertTsv(
        'schema',
        ['version', 'description', 'applied_at'],
        missing.map((m) => `${m.version}\t${tsvEscape(m.description)}\t${Math.floor(Date.now() / 1000)}`),
      );
    }
    this.migrated = true;
    this.log(`kiln: schema v${MIGRATIONS.at(-1)?.version ?? 0} ready in ${this.description} (database ${this.ctx.database})`);
  }

  /** ALTER ... MODIFY TTL where the table's TTL differs from the configured retention. */
  private async applyRetention(): Promise<void> {
    const rows = await this.rows(
      `SELECT name, create_table_query FROM system.tables WHERE database = {db:String}`,
      { db: this.ctx.database },
    );
    const ddl = new Map(rows.map((r) => [String(r[0]), String(r[1])]));
    for (const spec of TABLES) {
      const ttl = ttlClause(spec, this.ctx.retentionDays);
      if (!ttl) continue;
      const current = ddl.get(storageTable(spec, this.ctx));
      if (current === undefined || current.includes(`TTL ${ttl}`)) continue;
      const sql = modifyTtlSql(spec, this.ctx);
      if (!sql) continue;
      this.log(`kiln: retention is now ${this.ctx.retentionDays} days on ${storageTable(spec, this.ctx)}`);
      // Expired rows go at the next merge; rewriting every part now would stall start-up.
      await this.command(sql, {}, { materialize_ttl_after_modify: 0 });
    }
  }

  markSchemaLost(): void {
    this.migrated = false;
  }

  /** SELECT returning rows as arrays (JSONCompactEachRow). 64-bit ids must be toString()-ed in SQL. */
  async rows(sql: string, params: QueryParams, settings?: ClickHouseSettings): Promise<unknown[][]> {
    return this.run(async () => {
      const rs = await this.client.query({
        query: sql,
        query_params: params,
        format: 'JSONCompactEachRow',
        clickhouse_settings: settings,
      });
      return (await rs.json()) as unknown[][];
    });
  }

  async command(sql: string, params: QueryParams = {}, settings?: ClickHouseSettings): Promise<void> {
    await this.run(async () => {
      await this.client.command({ query: sql, query_params: params, clickhouse_settings: settings });
    });
  }

  /**
   * One INSERT ... FORMAT TabSeparated of `body` on insert lane `lane`, with
   * per-statement settings (SETTINGS in the statement on chDB, URL
   * parameters on a server: never session state another INSERT would inherit).
   */
  async insert(lane: number, table: TableName, columns: readonly string[], body: Buffer, settings: Record<string, string | number> = {}): Promise<void> {
    if (body.length === 0) return;
    if (this.closed) throw new StorageError('unavailable', 'the store is closed');
    try {
      const session = this.sessions[lane];
      if (session) {
        await session.insert({ table: this.t[table], columns, values: body, format: 'TabSeparated', settings });
      } else {
        await this.client.insert({
          table: this.t[table],
          columns: columns as [string, ...string[]],
          format: 'TabSeparated',
          values: Readable.from([body], { objectMode: false }),
          clickhouse_settings: settings,
        });
      }
    } catch (e) {
      throw this.mapError(e);
    }
  }

  /** A few rows through the query client (the schema table); ingest's batches use insert(). */
  async insertTsv(table: TableName, columns: string[], lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    await this.run(async () => {
      const body = Buffer.from(lines.join('\n') + '\n');
      await this.client.insert({
        table: this.t[table],
        columns: columns as [string, ...string[]],
        format: 'TabSeparated',
        values: Readable.from([body], { objectMode: false }),
      });
    });
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StorageError('unavailable', 'the store is closed');
    await this.limiter.acquire();
    try {
      return await fn();
    } catch (e) {
      throw this.mapError(e);
    } finally {
      this.limiter.release();
    }
  }

  private mapError(e: unknown): StorageError {
    if (e instanceof StorageError) return e;
    const err = e as { message?: unknown; code?: unknown; type?: unknown; cause?: unknown };
    const message = typeof err.message === 'string' ? err.message : String(e);
    const code = typeof err.code === 'string' ? err.code : '';
    const type = typeof err.type === 'string' ? err.type : '';
    if (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_TYPES.has(type) || UNAVAILABLE_TEXT.test(message)) {
      return new StorageError('unavailable', `${this.description}: ${firstLine(message)}`);
    }
    if (type === 'UNKNOWN_TABLE' || type === 'UNKNOWN_DATABASE') {
      // Someone dropped our tables under us: re-create them on the next request.
      this.markSchemaLost();
      return new StorageError('unavailable', `schema missing, will be re-created: ${firstLine(message)}`);
    }
    return new StorageError('rejected', firstLine(message));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sessions) {
      try {
        s.close();
      } catch (e) {
        this.log(`kiln: closing an insert lane: ${String(e)}`);
      }
    }
    this.sessions = [];
    try {
      await this.client.close();
    } catch (e) {
      this.log(`kiln: closing the store: ${String(e)}`);
    }
    if (this.mode === 'embedded') {
      // Wait until chDB has really let go of the directory, so a later open
      // (another test, a restart in the same process) finds it free.
      const { drainPending } = await import('chdb');
      await drainPending();
    }
  }
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);
const UNAVAILABLE_TYPES = new Set([
  'ALL_CONNECTION_TRIES_FAILED',
  'TOO_MANY_SIMULTANEOUS_QUERIES',
  'NETWORK_ERROR',
  'SOCKET_TIMEOUT',
  'AUTHENTICATION_FAILED',
  'REQUIRED_PASSWORD',
  'TABLE_IS_READ_ONLY',
  'NO_ZOOKEEPER',
  'KEEPER_EXCEPTION',
]);
const UNAVAILABLE_TEXT = /Timeout error|socket hang up|ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|connect E|is closed/i;

/** An engine message on one line, cut short: enough to debug, not a wall of SQL. */
function firstLine(s: string): string {
  const line = s.replace(/\s*\n\s*/g, ' ').trim();
  return line.length > 400 ? `${line.slice(0, 400)}...` : line;
}

/** Counting semaphore; FIFO so a burst of inserts cannot starve a query forever. */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly max: number) {}
  acquire(): Promise<void> {
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((r) => this.waiters.push(r));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }
}
