/**
 * Kiln's ClickHouse schema as data. One description renders three ways:
 * plain MergeTree tables (embedded chDB, or one ClickHouse server), and for a
 * cluster, Replicated*MergeTree "_local" tables created ON CLUSTER with a
 * Distributed table of the plain name in front, so every query and insert
 * Kiln sends is the same SQL in all three modes.
 *
 * Layout (see ingest/README.md for the reasoning):
 *   kiln_samples    (service, ts, labels_hash, stack_hash, value, type): one row per distinct
 *                   stack x label set x profile type per profile; the only big table.
 *   kiln_samples_1h the same summed per hour, label set and type by a materialized view
 *                   (SummingMergeTree): long ranges read it and touch raw rows only at
 *                   their unaligned edges.
 *   kiln_samples_10m
 *                   summed per 10 minutes over all label sets: unfiltered queries.
 *   kiln_stacks     stack_hash -> location ids, leaf first; each distinct stack once.
 *   kiln_locations  location_id -> (function_id, line).
 *   kiln_functions  function_id -> (name, system_name, filename, start_line).
 *   kiln_labelsets  (service, labels_hash) -> labels: series labels merged with sample labels.
 *   kiln_profiles   one row per ingested profile: period, duration, totals, source, key.
 *   kiln_keys       idempotency keys of stored profiles: a retried push is found here.
 *   kiln_ingest     Null table ingest writes each batch into, in one INSERT: materialized
 *                   views fan its rows out to kiln_samples, kiln_profiles and kiln_keys, so a
 *                   batch is one deduplicated block per table (see ingest/README.md,
 *                   "Exactly once").
 *   kiln_schema     applied migrations, for people reading the database.
 */

import { CPU_TYPE_ID } from '../profile/profile-type.js';

export interface Column {
  name: string;
  type: string;
  /** DEFAULT clause: what rows stored before the column existed read as. */
  default?: string;
  /** Chosen per column; the reason is in `why`. */
  codec?: string;
  why: string;
}

export interface TableSpec {
  /** Base name without the kiln_ prefix. */
  name: string;
  columns: Column[];
  engine: 'MergeTree' | 'ReplacingMergeTree' | 'SummingMergeTree' | 'Null';
  /** ReplacingMergeTree: the version column (the newest last_seen survives a merge). SummingMergeTree: the column summed. */
  version?: string;
  partitionBy?: string;
  orderBy: string;
  /** TTL expression given the retention in days, or undefined for none. */
  ttl?: (retentionDays: number) => string;
  settings?: Record<string, string | number>;
  /** Distributed sharding key (cluster mode). */
  shardingKey: string;
  why: string;
}

/**
 * Tables written by the batch INSERT keep the ids of their last blocks, so a
 * batch INSERT repeated with the same insert_deduplication_token (after a
 * crash, or a failed attempt) is not stored twice. Ten thousand blocks is
 * hours of batches.
 */
const DEDUP = { non_replicated_deduplication_window: 10_000 };

/**
 * The profile type of a sample row (profile/profile-type.ts). Last in the sort
 * keys: a service's types are told apart there (the rollups sum only rows of
 * one type), and an existing table can only take a new key column at the end
 * (migration 4). Almost every row is CPU, so the column is one dictionary
 * entry and a run of zeros per part, and filtering on it costs a pass over
 * one byte per row.
 */
const TYPE_COLUMN: Column = {
  name: 'type',
  type: 'LowCardinality(String)',
  codec: 'ZSTD(1)',
  why: `profile type ID, name:sample_type:sample_unit:period_type:period_unit; rows stored before types were kept apart read as ${CPU_TYPE_ID}`,
};
const TYPE_DEFAULT = `DEFAULT '${CPU_TYPE_ID}'`;

const dictTtl = (days: number): string => `last_seen + toIntervalDay(${days + 1})`;
const sampleTtl = (days: number): string => `ts + toIntervalDay(${days})`;
const rollupTtl = (days: number): string => `t + toIntervalDay(${days})`;

/**
 * Rollup levels, coarsest first: bucket width in seconds, the table, and
 * whether it keeps label sets. The hourly rollup keeps them, so filtered
 * queries can use it; the 10-minute one sums over them (about a tenth of the
 * rows), so it serves the common unfiltered service-wide flame graph and
 * timeline, at the cost of not answering label filters.
 */
export const ROLLUPS = [
  { table: 'samples_1h', bucketS: 3600, labels: true },
  { table: 'samples_10m', bucketS: 600, labels: false },
] as const;

function rollupOrderBy(labels: boolean): string {
  return labels ? '(service, t, labels_hash, stack_hash, type)' : '(service, t, stack_hash, type)';
}

function rollupSpec(name: 'samples_10m' | 'samples_1h', width: string, labels: boolean): TableSpec {
  return {
    name,
    why:
      `kiln_samples summed per ${width} bucket${labels ? ' and label set' : ' over all label sets'} by a materialized view; ` +
      `read for the whole buckets of long ranges${labels ? '' : ' when there is no label filter'}.`,
    columns: [
      { name: 'service', type: 'LowCardinality(String)', codec: 'ZSTD(1)', why: 'first sort key' },
      { name: 't', type: "DateTime('UTC')", codec: 'Delta, ZSTD(1)', why: 'bucket start; constant within runs' },
      ...(labels ? [{ name: 'labels_hash', type: 'UInt64', codec: 'ZSTD(1)', why: 'sort key: long runs' }] : []),
      { name: 'stack_hash', type: 'UInt64', codec: 'ZSTD(1)', why: 'sort key: sorted within each bucket (and label set)' },
      { name: 'value', type: 'UInt64', codec: 'T64, ZSTD(1)', why: 'summed values; T64 drops unused high bits' },
      { ...TYPE_COLUMN, default: TYPE_DEFAULT, why: `${TYPE_COLUMN.why}; in the key, so only rows of one type are summed` },
    ],
    engine: 'SummingMergeTree',
    version: 'value',
    partitionBy: 'toDate(t)',
    orderBy: rollupOrderBy(labels),
    ttl: rollupTtl,
    settings: { ttl_only_drop_parts: 1, ...DEDUP },
    shardingKey: labels ? 'labels_hash' : 'stack_hash',
  };
}

const SAMPLES_ORDER_BY = '(service, toStartOfHour(ts), labels_hash, stack_hash, ts, type)';

export const TABLES: TableSpec[] = [
  {
    name: 'functions',
    why: 'Each distinct Python function once.',
    columns: [
      { name: 'function_id', type: 'UInt64', why: 'FNV-1a 64 of name, system_name, filename, start_line' },
      { name: 'name', type: 'String', codec: 'ZSTD(3)', why: 'written once per function, read through a cache: favour size' },
      { name: 'system_name', type: 'String', codec: 'ZSTD(3)', why: 'as name' },
      { name: 'filename', type: 'String', codec: 'ZSTD(3)', why: 'long shared path prefixes compress well' },
      { name: 'start_line', type: 'UInt32', why: 'co_firstlineno' },
      { name: 'last_seen', type: 'Date', why: 'refreshed at most daily per process; drives TTL and dedup' },
    ],
    engine: 'ReplacingMergeTree',
    version: 'last_seen',
    orderBy: 'function_id',
    ttl: dictTtl,
    shardingKey: 'function_id',
  },
  {
    name: 'locations',
    why: 'Each distinct (function, line) once.',
    columns: [
      { name: 'location_id', type: 'UInt64', why: 'FNV-1a 64 of function_id and line' },
      { name: 'function_id', type: 'UInt64', why: 'into kiln_functions' },
      { name: 'line', type: 'UInt32', why: 'line being executed; 0 when unknown' },
      { name: 'last_seen', type: 'Date', why: 'TTL and dedup' },
    ],
    engine: 'ReplacingMergeTree',
    version: 'last_seen',
    orderBy: 'location_id',
    ttl: dictTtl,
    shardingKey: 'location_id',
  },
  {
    name: 'stacks',
    why: 'Each distinct stack once, under its 64-bit hash.',
    columns: [
      { name: 'stack_hash', type: 'UInt64', why: 'FNV-1a 64 over the location ids, leaf first' },
      {
        name: 'location_ids',
        type: 'Array(UInt64)',
        codec: 'ZSTD(3)',
        why: 'leaf first as in pprof; stacks of one service share long root prefixes, which ZSTD finds',
      },
      { name: 'last_seen', type: 'Date', why: 'TTL and dedup' },
    ],
    engine: 'ReplacingMergeTree',
    version: 'last_seen',
    orderBy: 'stack_hash',
    ttl: dictTtl,
    shardingKey: 'stack_hash',
  },
  {
    name: 'labelsets',
    why: 'Each distinct label set of a service once: query-string (series) labels merged with pprof sample labels.',
    columns: [
      { name: 'service', type: 'LowCardinality(String)', why: 'a few hundred services at most' },
      { name: 'labels_hash', type: 'UInt64', why: 'FNV-1a 64 of service and the sorted name=value pairs' },
      {
        name: 'labels',
        type: 'Map(LowCardinality(String), String)',
        codec: 'ZSTD(3)',
        why: 'label names repeat in every row (dictionary); values such as host names repeat across sets',
      },
      { name: 'last_seen', type: 'Date', why: 'TTL and dedup' },
    ],
    engine: 'ReplacingMergeTree',
    version: 'last_seen',
    orderBy: '(service, labels_hash)',
    ttl: dictTtl,
    shardingKey: 'labels_hash',
  },
  {
    name: 'samples',
    why: 'The big table: one row per distinct (stack, label set) in a profile, summed counts.',
    columns: [
      { name: 'service', type: 'LowCardinality(String)', codec: 'ZSTD(1)', why: 'first sort key: long runs, near zero bytes' },
      {
        name: 'ts',
        type: "DateTime('UTC')",
        codec: 'Delta, ZSTD(1)',
        why:
          'profile start, whole seconds; within a (label set, stack) run it steps by multiples of the profile interval. ' +
          'Measured on 24.6M bench rows: 0.83 B/row (DateTime64(3) with DoubleDelta: 1.56) and the fastest scans',
      },
      {
        name: 'labels_hash',
        type: 'UInt64',
        codec: 'ZSTD(1)',
        why: 'third sort key: runs of hundreds of rows; ZSTD squeezes a run of one 8-byte value to a few bytes',
      },
      {
        name: 'stack_hash',
        type: 'UInt64',
        codec: 'ZSTD(1)',
        why:
          'fourth sort key: each stack repeats once per profile within the hour, so runs. Sorting ts inside stack_hash ' +
          'instead costs 3.4 B/row here against 0.15',
      },
      {
        name: 'value',
        type: 'UInt64',
        codec: 'T64, ZSTD(1)',
        why:
          'sample counts for types sampled at a period (CPU, wall: count x period_ns is the time), the value itself ' +
          'otherwise (bytes, objects). 64 bits: one stack can hold more than 4 GiB; T64 drops the unused high bits, so ' +
          'small counts cost what they did as UInt32',
      },
      { ...TYPE_COLUMN, default: TYPE_DEFAULT },
    ],
    engine: 'MergeTree',
    partitionBy: 'toDate(ts)',
    // The flame-graph query is "service S, time in [from, to), maybe these label
    // sets, GROUP BY stack_hash": service and the hour prune granules, label sets
    // prune within the hour, and sorting by stack_hash inside makes equal hashes
    // adjacent for compression.
    orderBy: SAMPLES_ORDER_BY,
    ttl: sampleTtl,
    // Retention drops whole day partitions instead of rewriting parts row by row.
    settings: { ttl_only_drop_parts: 1, ...DEDUP },
    shardingKey: 'labels_hash',
  },
  rollupSpec('samples_10m', '10-minute', false),
  rollupSpec('samples_1h', 'hourly', true),
  {
    name: 'profiles',
    why: 'One row per ingested profile; small, answers /api/v1/services and the sampling period.',
    columns: [
      { name: 'service', type: 'LowCardinality(String)', why: 'sort key' },
      { name: 'ts', type: "DateTime('UTC')", codec: 'DoubleDelta, ZSTD(1)', why: 'profile start, sorted: steady steps' },
      {
        name: 'series',
        type: 'Map(LowCardinality(String), String)',
        codec: 'ZSTD(3)',
        why: 'the query-string labels the profile came with',
      },
      { name: 'duration_ns', type: 'UInt64', codec: 'T64, ZSTD(1)', why: 'usually one value fleet-wide' },
      { name: 'period_ns', type: 'UInt64', codec: 'T64, ZSTD(1)', why: 'usually one value fleet-wide' },
      { name: 'samples', type: 'UInt64', codec: 'T64, ZSTD(1)', why: 'sum of sample counts' },
      { name: 'rows', type: 'UInt32', codec: 'T64, ZSTD(1)', why: 'rows written to kiln_samples' },
      { name: 'source', type: 'LowCardinality(String)', why: 'pprof, pyroscope-pprof, pyroscope-folded; a spy name when given' },
      { name: 'ingest_key', type: 'UInt128', why: 'the idempotency key the profile was stored under (kiln_keys)' },
      {
        ...TYPE_COLUMN,
        default: TYPE_DEFAULT,
        why: `${TYPE_COLUMN.why}; a pprof of several types has a row per type, each with its own period and totals`,
      },
    ],
    engine: 'MergeTree',
    partitionBy: 'toDate(ts)',
    orderBy: '(service, ts)',
    ttl: sampleTtl,
    settings: { ttl_only_drop_parts: 1, ...DEDUP },
    shardingKey: 'cityHash64(service)',
  },
  {
    name: 'keys',
    why: 'Idempotency keys of stored profiles, so a retried push is acknowledged without being stored twice.',
    columns: [
      {
        name: 'key',
        type: 'UInt128',
        why: '128 bits of SHA-256 over the service and the client key (or the push itself): no collisions at fleet scale',
      },
      { name: 'ts', type: "DateTime('UTC')", codec: 'Delta, ZSTD(1)', why: 'the profile time; expires with the samples' },
    ],
    engine: 'MergeTree',
    partitionBy: 'toDate(ts)',
    // Random keys: a lookup of a batch's keys is one granule per part.
    orderBy: 'key',
    ttl: sampleTtl,
    settings: { ttl_only_drop_parts: 1, ...DEDUP },
    shardingKey: 'key',
  },
  {
    name: 'ingest',
    why:
      'What ingest inserts, one INSERT per batch: kind 0 rows are samples, kind 1 rows profiles (with their key). ' +
      'Materialized views fan them out; nothing is stored here.',
    columns: [
      { name: 'kind', type: 'UInt8', why: '0 sample row, 1 profile row' },
      { name: 'service', type: 'LowCardinality(String)', why: 'as kiln_samples' },
      {
        name: 'type',
        type: 'LowCardinality(String)',
        default: TYPE_DEFAULT,
        why: "both kinds: the profile type, '' for CPU (one byte a row in the batch; the views store the ID)",
      },
      { name: 'ts', type: "DateTime('UTC')", why: 'as kiln_samples' },
      { name: 'labels_hash', type: 'UInt64', why: 'sample rows' },
      { name: 'stack_hash', type: 'UInt64', why: 'sample rows' },
      { name: 'value', type: 'UInt64', why: 'sample rows' },
      { name: 'series', type: 'Map(LowCardinality(String), String)', why: 'profile rows' },
      { name: 'duration_ns', type: 'UInt64', why: 'profile rows' },
      { name: 'period_ns', type: 'UInt64', why: 'profile rows' },
      { name: 'samples', type: 'UInt64', why: 'profile rows' },
      { name: 'rows', type: 'UInt32', why: 'profile rows' },
      { name: 'source', type: 'LowCardinality(String)', why: 'profile rows' },
      { name: 'ingest_key', type: 'UInt128', why: 'profile rows' },
    ],
    engine: 'Null',
    orderBy: '',
    // A profile's sample rows go where kiln_samples would put them; its profile row by its key.
    shardingKey: 'if(kind = 0, labels_hash, cityHash64(ingest_key))',
  },
  {
    name: 'schema',
    why: 'Which migrations ran; every migration is idempotent and runs at each start.',
    columns: [
      { name: 'version', type: 'UInt32', why: 'migration number' },
      { name: 'description', type: 'String', why: 'what it did' },
      { name: 'applied_at', type: "DateTime('UTC')", why: 'when' },
    ],
    engine: 'ReplacingMergeTree',
    version: 'applied_at',
    orderBy: 'version',
    shardingKey: 'version',
  },
];

export interface SchemaContext {
  database: string;
  cluster?: string;
  retentionDays: number;
}

/** Identifiers come from configuration, never from requests; still, refuse anything that would need quoting. */
export function checkIdentifier(name: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`${what} ${JSON.stringify(name)} must match [A-Za-z_][A-Za-z0-9_]*`);
  return name;
}

export type TableName =
  | 'functions'
  | 'locations'
  | 'stacks'
  | 'labelsets'
  | 'samples'
  | 'samples_10m'
  | 'samples_1h'
  | 'profiles'
  | 'keys'
  | 'ingest'
  | 'schema';

/** Fully qualified names the queries and inserts use (the Distributed tables on a cluster). */
export function tableNames(ctx: SchemaContext): Record<TableName, string> {
  const q = (n: TableName): string => `${ctx.database}.kiln_${n}`;
  return {
    functions: q('functions'),
    locations: q('locations'),
    stacks: q('stacks'),
    labelsets: q('labelsets'),
    samples: q('samples'),
    samples_10m: q('samples_10m'),
    samples_1h: q('samples_1h'),
    profiles: q('profiles'),
    keys: q('keys'),
    ingest: q('ingest'),
    schema: q('schema'),
  };
}

/** The table that holds the data: the _local replicated table on a cluster. */
export function storageTable(spec: TableSpec, ctx: SchemaContext): string {
  return ctx.cluster ? `kiln_${spec.name}_local` : `kiln_${spec.name}`;
}

function onCluster(ctx: SchemaContext): string {
  return ctx.cluster ? ` ON CLUSTER ${ctx.cluster}` : '';
}

export function ttlClause(spec: TableSpec, retentionDays: number): string | undefined {
  return spec.ttl?.(retentionDays);
}

function engineClause(spec: TableSpec, ctx: SchemaContext): string {
  if (spec.engine === 'Null') return 'Null';
  const args: string[] = [];
  if (ctx.cluster) {
    // {shard} and {replica} are the server's macros, as in ClickHouse's own examples.
    args.push(`'/clickhouse/tables/{shard}/${ctx.database}/${storageTable(spec, ctx)}'`, `'{replica}'`);
  }
  if (spec.version) args.push(spec.version);
  const name = (ctx.cluster ? 'Replicated' : '') + spec.engine;
  return `${name}(${args.join(', ')})`;
}

export function createTableSql(spec: TableSpec, ctx: SchemaContext): string[] {
  const table = `${ctx.database}.${storageTable(spec, ctx)}`;
  const cols = spec.columns
    // ClickHouse's column grammar puts COMMENT before CODEC.
    .map((c) => `    ${c.name} ${c.type}${c.default ? ` ${c.default}` : ''} COMMENT '${c.why.replace(/'/g, "''")}'${c.codec ? ` CODEC(${c.codec})` : ''}`)
    .join(',\n');
  const parts = [
    `CREATE TABLE IF NOT EXISTS ${table}${onCluster(ctx)}\n(\n${cols}\n)`,
    `ENGINE = ${engineClause(spec, ctx)}`,
  ];
  if (spec.partitionBy) parts.push(`PARTITION BY ${spec.partitionBy}`);
  if (spec.orderBy) parts.push(`ORDER BY ${spec.orderBy}`);
  const ttl = ttlClause(spec, ctx.retentionDays);
  if (ttl) parts.push(`TTL ${ttl}`);
  if (spec.settings) {
    parts.push(`SETTINGS ${Object.entries(spec.settings).map(([k, v]) => `${k} = ${v}`).join(', ')}`);
  }
  parts.push(`COMMENT '${spec.why.replace(/'/g, "''")}'`);
  const out = [parts.join('\n')];
  if (ctx.cluster) {
    out.push(
      `CREATE TABLE IF NOT EXISTS ${ctx.database}.kiln_${spec.name}${onCluster(ctx)} AS ${table}\n` +
        `ENGINE = Distributed(${ctx.cluster}, ${ctx.database}, ${storageTable(spec, ctx)}, ${spec.shardingKey})`,
    );
  }
  return out;
}

export function modifyTtlSql(spec: TableSpec, ctx: SchemaContext): string | undefined {
  const ttl = ttlClause(spec, ctx.retentionDays);
  if (!ttl) return undefined;
  return `ALTER TABLE ${ctx.database}.${storageTable(spec, ctx)}${onCluster(ctx)} MODIFY TTL ${ttl}`;
}

/**
 * What a rollup's materialized view selects from each block of kiln_samples.
 * The hourly rollup keeps label sets, and a block holds one row per (profile,
 * label set, stack) with label sets that name the host: grouping the block
 * would merge almost nothing, and cost a quarter of the rollup's insert (a
 * hash aggregation of every row), so its rows go in as they are and
 * SummingMergeTree sums them at merge time. The 10-minute rollup drops the
 * label sets, so grouping the block first merges the hosts of a service.
 */
function rollupSelect(ctx: SchemaContext, r: (typeof ROLLUPS)[number], typed: boolean): string {
  const t = `toStartOfInterval(ts, toIntervalSecond(${r.bucketS}), 'UTC') AS t`;
  const type = typed ? ', type' : '';
  if (r.labels) return `SELECT service, ${t}, labels_hash, stack_hash, value${type}\nFROM ${local(ctx, 'samples')}`;
  return `SELECT service, ${t}, stack_hash, sum(value) AS value${type}\nFROM ${local(ctx, 'samples')} GROUP BY service, t, stack_hash${type}`;
}

/**
 * The rollups' materialized views. On a cluster they sit on each shard's
 * local table and write to its local rollup, so a row is summed on the shard
 * that holds it.
 */
export function createViewsSql(ctx: SchemaContext): string[] {
  // Without `type`: the engine checks a view's query even when IF NOT EXISTS
  // finds it, and a database from before migration 4 has no such column.
  // Migration 4 brings every view to its current query.
  return ROLLUPS.map(
    (r) => `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.kiln_${r.table}_mv${onCluster(ctx)} TO ${local(ctx, r.table)} AS\n${rollupSelect(ctx, r, false)}`,
  );
}

/** The rollups' views brought to rollupSelect() in place (no moment without a view, unlike DROP and CREATE). */
export function modifyViewsSql(ctx: SchemaContext): string[] {
  return ROLLUPS.map((r) => `ALTER TABLE ${ctx.database}.kiln_${r.table}_mv${onCluster(ctx)} MODIFY QUERY ${rollupSelect(ctx, r, true)}`);
}

function local(ctx: SchemaContext, name: string): string {
  return `${ctx.database}.kiln_${name}${ctx.cluster ? '_local' : ''}`;
}

/**
 * kiln_ingest's views: one INSERT of a batch into the Null table becomes one
 * block in each of kiln_samples (and, through its own views, the rollups),
 * kiln_profiles and kiln_keys. With insert_deduplication_token on that INSERT
 * and deduplicate_blocks_in_dependent_materialized_views, a repeated batch
 * adds nothing to any of them.
 */
const INGEST_VIEWS = [
  { name: 'samples', target: 'samples', select: 'service, ts, labels_hash, stack_hash, value', kind: 0 },
  { name: 'profiles', target: 'profiles', select: 'service, ts, series, duration_ns, period_ns, samples, rows, source, ingest_key', kind: 1 },
  { name: 'keys', target: 'keys', select: 'ingest_key AS key, ts', kind: 1 },
] as const;

/** typed: the query since migration 4 (the profile rows and sample rows carry their type; '' is CPU). */
function ingestViewSelect(ctx: SchemaContext, v: (typeof INGEST_VIEWS)[number], typed: boolean): string {
  const type = typed && v.name !== 'keys' ? `, if(type = '', '${CPU_TYPE_ID}', type) AS type` : '';
  return `SELECT ${v.select}${type} FROM ${local(ctx, 'ingest')} WHERE kind = ${v.kind}`;
}

/** As createViewsSql: without `type` here, migration 4 adds it. */
export function createIngestViewsSql(ctx: SchemaContext): string[] {
  return INGEST_VIEWS.map(
    (v) =>
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ctx.database}.kiln_ingest_${v.name}_mv${onCluster(ctx)} TO ${local(ctx, v.target)} AS\n` +
      ingestViewSelect(ctx, v, false),
  );
}

/**
 * Migration 4: a profile type on every row. The sort keys of kiln_samples and
 * its rollups take `type` at their end, which ClickHouse allows only for a
 * column added in the same ALTER without a default; the default (CPU) is set
 * by a second ALTER, and rows stored before read as it (a part without the
 * column computes it from the default). Each statement is a no-op the second
 * time. Values become UInt64 (a rewrite of kiln_samples.value on an existing
 * table, nothing on a new one).
 */
function profileTypeSql(ctx: SchemaContext): string[] {
  const on = onCluster(ctx);
  const typeCol = `type LowCardinality(String)`;
  const dist = (t: string, alter: string): string[] => (ctx.cluster ? [`ALTER TABLE ${ctx.database}.kiln_${t}${on} ${alter}`] : []);
  const keyed = (t: string, orderBy: string): string[] => [
    `ALTER TABLE ${local(ctx, t)}${on} ADD COLUMN IF NOT EXISTS ${typeCol} CODEC(ZSTD(1)), MODIFY ORDER BY ${orderBy}`,
    `ALTER TABLE ${local(ctx, t)}${on} MODIFY COLUMN ${typeCol} ${TYPE_DEFAULT}`,
    ...dist(t, `ADD COLUMN IF NOT EXISTS ${typeCol} ${TYPE_DEFAULT}`),
  ];
  const plain = (t: string): string[] => [
    `ALTER TABLE ${local(ctx, t)}${on} ADD COLUMN IF NOT EXISTS ${typeCol} ${TYPE_DEFAULT} CODEC(ZSTD(1))`,
    ...dist(t, `ADD COLUMN IF NOT EXISTS ${typeCol} ${TYPE_DEFAULT}`),
  ];
  return [
    ...keyed('samples', SAMPLES_ORDER_BY),
    ...keyed('samples_1h', rollupOrderBy(true)),
    ...keyed('samples_10m', rollupOrderBy(false)),
    ...plain('profiles'),
    // kiln_ingest: `type` after service, where INSERT_COLUMNS puts it (a Null table: no data to move).
    `ALTER TABLE ${local(ctx, 'ingest')}${on} ADD COLUMN IF NOT EXISTS ${typeCol} ${TYPE_DEFAULT} AFTER service`,
    ...dist('ingest', `ADD COLUMN IF NOT EXISTS ${typeCol} ${TYPE_DEFAULT} AFTER service`),
    `ALTER TABLE ${local(ctx, 'samples')}${on} MODIFY COLUMN value UInt64 CODEC(T64, ZSTD(1))`,
    ...dist('samples', 'MODIFY COLUMN value UInt64'),
    `ALTER TABLE ${local(ctx, 'ingest')}${on} MODIFY COLUMN value UInt64`,
    ...dist('ingest', 'MODIFY COLUMN value UInt64'),
    ...modifyViewsSql(ctx),
    ...INGEST_VIEWS.filter((v) => v.name !== 'keys').map(
      (v) => `ALTER TABLE ${ctx.database}.kiln_ingest_${v.name}_mv${on} MODIFY QUERY ${ingestViewSelect(ctx, v, true)}`,
    ),
  ];
}

/** Settings of every batch INSERT into kiln_ingest (the token is added per batch). */
export const INGEST_INSERT_SETTINGS = {
  insert_deduplicate: 1,
  deduplicate_blocks_in_dependent_materialized_views: 1,
  // A batch's blocks have no rows to sum or replace among themselves (the views
  // group them already): skipping the merge-on-insert pass saves ~10% of an INSERT.
  optimize_on_insert: 0,
} as const;

/** Columns of each table ingest inserts into, in the order rows.ts writes them. */
export const INSERT_COLUMNS = {
  ingest: ['kind', 'service', 'type', 'ts', 'labels_hash', 'stack_hash', 'value', 'series', 'duration_ns', 'period_ns', 'samples', 'rows', 'source', 'ingest_key'],
  functions: ['function_id', 'name', 'system_name', 'filename', 'start_line', 'last_seen'],
  locations: ['location_id', 'function_id', 'line', 'last_seen'],
  stacks: ['stack_hash', 'location_ids', 'last_seen'],
  labelsets: ['service', 'labels_hash', 'labels', 'last_seen'],
} as const;

/**
 * kiln_ingest's columns with their types, as the structure of the RowBinary
 * a batch is read from (rowbinary.ts writes rows in this order).
 */
export const INGEST_ROWBINARY_STRUCTURE = INSERT_COLUMNS.ingest
  .map((name) => {
    const col = TABLES.find((t) => t.name === 'ingest')!.columns.find((c) => c.name === name)!;
    return `${name} ${col.type}`;
  })
  .join(', ');

/** Which of a batch's idempotency keys are stored already. */
export function storedKeysSql(ctx: SchemaContext): string {
  return `SELECT toString(key) FROM ${tableNames(ctx).keys} WHERE key IN {keys:Array(UInt128)}`;
}

/** Which of these stacks are stored (a native push may count stacks it defined on an earlier day... or to another replica). */
export function storedStacksSql(ctx: SchemaContext): string {
  return `SELECT DISTINCT toString(stack_hash) FROM ${tableNames(ctx).stacks} WHERE stack_hash IN {ids:Array(UInt64)}`;
}

export interface Migration {
  version: number;
  description: string;
  statements: (ctx: SchemaContext) => string[];
}

/**
 * Append-only. Each statement must be idempotent (IF NOT EXISTS, ADD COLUMN IF
 * NOT EXISTS, ...): several Kiln processes may start at once, and all of them
 * run every migration.
 */
export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'tables: functions, locations, stacks, labelsets, samples (+10m, 1h rollups and their views), profiles, schema',
    statements: (ctx) => {
      const db = ctx.database === 'default' ? [] : [`CREATE DATABASE IF NOT EXISTS ${ctx.database}${onCluster(ctx)}`];
      return [...db, ...TABLES.flatMap((t) => createTableSql(t, ctx)), ...createViewsSql(ctx)];
    },
  },
  {
    version: 2,
    description: 'exactly-once ingest: kiln_ingest and its views, kiln_keys, kiln_profiles.ingest_key, deduplication windows',
    statements: (ctx) => [
      `ALTER TABLE ${local(ctx, 'profiles')}${onCluster(ctx)} ADD COLUMN IF NOT EXISTS ingest_key UInt128`,
      ...(ctx.cluster ? [`ALTER TABLE ${ctx.database}.kiln_profiles${onCluster(ctx)} ADD COLUMN IF NOT EXISTS ingest_key UInt128`] : []),
      ...['samples', 'samples_1h', 'samples_10m', 'profiles', 'keys'].map(
        (t) => `ALTER TABLE ${local(ctx, t)}${onCluster(ctx)} MODIFY SETTING non_replicated_deduplication_window = ${DEDUP.non_replicated_deduplication_window}`,
      ),
      ...createIngestViewsSql(ctx),
    ],
  },
  {
    version: 3,
    description: 'the hourly rollup view inserts a block as it is (SummingMergeTree sums at merge time) instead of grouping it first',
    // Migration 4 ends by bringing every view to its current query, which
    // includes this change; run here, that query would name a column that
    // a database from before migration 4 does not have yet.
    statements: () => [],
  },
  {
    version: 4,
    description: 'profile types: kiln_samples, its rollups, kiln_profiles and kiln_ingest get a type column (existing rows: CPU), in the sort keys of the first three; values UInt64',
    statements: profileTypeSql,
  },
];
