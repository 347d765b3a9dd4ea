/**
 * `kiln serve` options, their defaults, and the tokens file. bin/ owns the
 * command line; optionsFromArgv() is here so the flags and their meaning live
 * next to the code that uses them.
 */

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import type { Faults } from './rows.js';

export interface ServeOptions {
  /** --port, default 4040. 0 picks a free port. */
  port?: number;
  /** --host, default all interfaces. */
  host?: string;
  /** --data DIR: embedded chDB data directory, default ./kiln-data. */
  data?: string;
  /** --clickhouse-url: use a ClickHouse server instead of the embedded engine. */
  clickhouseUrl?: string;
  clickhouseUser?: string;
  clickhousePassword?: string;
  /** Default "kiln" embedded, "default" on a server. */
  clickhouseDatabase?: string;
  /** --cluster NAME: ReplicatedMergeTree + Distributed tables, DDL ON CLUSTER. */
  cluster?: string;
  /** --retention-days, default 30. */
  retentionDays?: number;
  /** --auth-token: writes need Authorization: Bearer TOKEN. */
  authToken?: string;
  /** --read-token: reads need it (or a write token). Without it reads are open. */
  readToken?: string;
  /** --tokens-file: lines of "write:TOKEN", "read:TOKEN" or a bare TOKEN (write); # comments. */
  tokensFile?: string;
  /** Static web UI served at /; default build/ui when it exists. */
  uiDir?: string;
  limits?: Partial<Limits>;
  /** Batching: the longest a profile waits for others to share its INSERT, ms (default 200; sooner when no more pushes are being decoded). */
  batchDelayMs?: number;
  /** Batching: a batch goes out at once when it holds this many rows (default 50,000). */
  batchMinRows?: number;
  /** --ingest-workers: threads decoding pushes (default: one per CPU). */
  ingestWorkers?: number;
  /** --insert-lanes: batch INSERTs that may run at once (default 2). */
  insertLanes?: number;
  /** --ingest-log DIR: the write-ahead log of batches (default DATA/ingest-log, or ./kiln-ingest-log with a server). */
  walDir?: string;
  /** Fault injection for tests (never from the command line): see rows.ts. */
  faults?: Faults;
  log?: (msg: string) => void;
  /** --help: print usage and do nothing else. */
  help?: boolean;
}

export const DEFAULTS = {
  port: 4040,
  data: './kiln-data',
  retentionDays: 30,
  uiDir: 'build/ui',
} as const;

export interface Tokens {
  write: string[];
  read: string[];
}

export function loadTokens(opts: Pick<ServeOptions, 'authToken' | 'readToken' | 'tokensFile'>): Tokens {
  const t: Tokens = { write: [], read: [] };
  if (opts.authToken) t.write.push(opts.authToken);
  if (opts.readToken) t.read.push(opts.readToken);
  if (opts.tokensFile) {
    const text = readFileSync(opts.tokensFile, 'utf8');
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const m = /^(read|write)\s*[:\s]\s*(\S+)$/.exec(line);
      if (m) (m[1] === 'read' ? t.read : t.write).push(m[2]!);
      else if (/^\S+$/.test(line)) t.write.push(line);
      else throw new Error(`${opts.tokensFile}:${i + 1}: expected TOKEN, write:TOKEN or read:TOKEN`);
    });
  }
  for (const tok of [...t.write, ...t.read]) {
    if (tok.length < 8) throw new Error('auth tokens must be at least 8 characters');
  }
  return t;
}

export function resolveUiDir(uiDir: string | undefined): string | undefined {
  const dir = resolve(uiDir ?? DEFAULTS.uiDir);
  return existsSync(dir) ? dir : undefined;
}

const FLAGS: Record<string, { key: keyof ServeOptions; type: 'string' | 'number' }> = {
  '--port': { key: 'port', type: 'number' },
  '--host': { key: 'host', type: 'string' },
  '--data': { key: 'data', type: 'string' },
  '--clickhouse-url': { key: 'clickhouseUrl', type: 'string' },
  '--clickhouse-user': { key: 'clickhouseUser', type: 'string' },
  '--clickhouse-password': { key: 'clickhousePassword', type: 'string' },
  '--clickhouse-database': { key: 'clickhouseDatabase', type: 'string' },
  '--cluster': { key: 'cluster', type: 'string' },
  '--retention-days': { key: 'retentionDays', type: 'number' },
  '--auth-token': { key: 'authToken', type: 'string' },
  '--read-token': { key: 'readToken', type: 'string' },
  '--tokens-file': { key: 'tokensFile', type: 'string' },
  '--ui-dir': { key: 'uiDir', type: 'string' },
  '--ingest-workers': { key: 'ingestWorkers', type: 'number' },
  '--insert-lanes': { key: 'insertLanes', type: 'number' },
  '--ingest-log': { key: 'walDir', type: 'string' },
  '--batch-delay-ms': { key: 'batchDelayMs', type: 'number' },
  '--batch-min-rows': { key: 'batchMinRows', type: 'number' },
};

export const SERVE_USAGE = `kiln serve [options]: the ingest service, query API and web UI

  --port 4040                 HTTP port (0: any free one)
  --host ::                   address to listen on
  --data ./kiln-data          embedded ClickHouse (chDB) data directory
  --clickhouse-url URL        a ClickHouse server instead (http://host:8123)
  --clickhouse-user U, --clickhouse-password P (or CLICKHOUSE_PASSWORD), --clickhouse-database D
  --cluster NAME              ReplicatedMergeTree + Distributed tables, DDL ON CLUSTER
  --retention-days 30         how long profiles are kept
  --auth-token T              writes need Authorization: Bearer T (or KILN_AUTH_TOKEN)
  --read-token R              reads need it too (or KILN_READ_TOKEN)
  --tokens-file F             lines of TOKEN, write:TOKEN, read:TOKEN
  --ui-dir build/ui           the web UI to serve at /
  --ingest-workers N          threads decoding pushes (default: one per CPU)
  --insert-lanes 2            batch INSERTs that may run at once
  --ingest-log DIR            write-ahead log of batches (default DATA/ingest-log)
  --batch-delay-ms 200        the longest a push waits for others to share its INSERT
  --batch-min-rows 50000      a batch goes out at once when it holds this many rows`;

/**
 * `kiln serve` flags to ServeOptions: "--flag value" or "--flag=value".
 * Environment fallbacks for secrets, so they stay out of `ps`:
 * KILN_AUTH_TOKEN, KILN_READ_TOKEN, CLICKHOUSE_PASSWORD.
 */
export function optionsFromArgv(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeOptions {
  const out: Record<string, string | number> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { help: true };
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const flag = FLAGS[name];
    if (!flag) throw new Error(`unknown option ${name} (known: ${Object.keys(FLAGS).join(' ')})`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new Error(`${name} needs a value`);
    if (flag.type === 'number') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${name} wants a whole number, not ${JSON.stringify(value)}`);
      out[flag.key] = n;
    } else out[flag.key] = value;
  }
  const opts = out as ServeOptions;
  opts.authToken ??= env.KILN_AUTH_TOKEN || undefined;
  opts.readToken ??= env.KILN_READ_TOKEN || undefined;
  opts.clickhousePassword ??= env.CLICKHOUSE_PASSWORD || undefined;
  return opts;
}

export function limitsFrom(partial: Partial<Limits> | undefined): Limits {
  return { ...DEFAULT_LIMITS, ...partial };
}
