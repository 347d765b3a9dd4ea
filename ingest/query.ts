/**
 * The read side. Every value from a request reaches ClickHouse as a typed
 * {name:Type} parameter; the SQL text is built only from fixed fragments and
 * configured table names.
 *
 * The flame-graph query aggregates in ClickHouse (GROUP BY stack_hash,
 * sum(value)) over the sort-key prefix (service, hour), with label filters
 * turned into a label-set id list from the small kiln_labelsets table; the
 * tree is built in Node from the stacks the Resolver knows.
 */

import type { LabelFilter, LabelInfo, ServiceInfo, TimelinePoint } from './api.js';
import { HttpError, checkLabel, type Limits } from './limits.js';
import { ROLLUPS, type TableName } from './schema.js';
import { CPU_TYPE_ID } from '../profile/profile-type.js';
import type { QueryParams, Store } from './store.js';
import type { StackValue } from './tree.js';
import type { TimeRange } from './time.js';

export interface Selection {
  service: string;
  range: TimeRange;
  filters: LabelFilter[];
  /** Profile type ID (profile/profile-type.ts); CPU when not given. */
  type?: string;
}

/**
 * Parses label filters: repeated NAME=VALUE / NAME!=VALUE, plus a Pyroscope
 * selector NAME{k="v",k2!="w"} (whose name, if any, is returned as the service).
 */
export function parseFilters(labels: string[], selector: string | undefined, limits: Limits): { filters: LabelFilter[]; service?: string } {
  const pairs: Matcher[] = [];
  for (const l of labels) {
    const eq = l.indexOf('=');
    if (eq <= 0 || (eq === 1 && l[0] === '!')) {
      throw new HttpError(400, 'bad label filter', `${JSON.stringify(l.slice(0, 100))} is not NAME=VALUE or NAME!=VALUE`);
    }
    const neg = l[eq - 1] === '!';
    pairs.push({ name: l.slice(0, neg ? eq - 1 : eq).trim(), op: neg ? '!=' : '=', value: l.slice(eq + 1) });
    if (pairs.length > limits.maxFilters) break;
  }
  let service: string | undefined;
  if (selector !== undefined && selector.trim() !== '') {
    const sel = parseSelector(selector, limits.maxFilters + 1);
    service = sel.name || undefined;
    pairs.push(...sel.matchers);
  }
  if (pairs.length > limits.maxFilters) {
    throw new HttpError(400, 'too many label filters', `more than ${limits.maxFilters} filters, the limit`);
  }
  const grouped = new Map<string, LabelFilter>();
  for (const p of pairs) {
    checkLabel(p.name, p.value, limits, 'label filter');
    const key = `${p.name}\0${p.op}`;
    const g = grouped.get(key);
    if (g) {
      if (!g.values.includes(p.value)) g.values.push(p.value);
    } else grouped.set(key, { name: p.name, op: p.op, values: [p.value] });
  }
  return { filters: [...grouped.values()], service };
}

interface Matcher {
  name: string;
  op: '=' | '!=';
  value: string;
}

/**
 * app{k="v",k2!="w"}: Pyroscope's (and Prometheus') selector, = and != only.
 * A hand-written scanner, one pass over the text: no regex, so nothing in a
 * request can make it backtrack.
 */
export function parseSelector(s: string, maxMatchers = Infinity): { name: string; matchers: Matcher[] } {
  const bad = (why: string): HttpError => new HttpError(400, 'bad query', `cannot read selector ${JSON.stringify(s.slice(0, 100))}: ${why}`);
  let i = 0;
  const n = s.length;
  const space = (): void => {
    while (i < n && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  space();
  const nameStart = i;
  while (i < n && s[i] !== '{' && s[i] !== ' ' && s[i] !== '\t' && s[i] !== '\n' && s[i] !== '\r') i++;
  let name = s.slice(nameStart, i);
  for (const suffix of ['.cpu', '.itimer']) if (name.endsWith(suffix)) name = name.slice(0, -suffix.length);
  space();
  const matchers: Matcher[] = [];
  if (i < n) {
    if (s[i] !== '{') throw bad('expected {');
    i++;
    for (;;) {
      space();
      if (i < n && s[i] === '}') {
        i++;
        break;
      }
      const ks = i;
      while (i < n && isNameChar(s.charCodeAt(i), i === ks)) i++;
      if (i === ks) throw bad('expected a label name');
      const key = s.slice(ks, i);
      space();
      let op: '=' | '!=';
      if (s[i] === '=') {
        op = '=';
        i++;
      } else if (s[i] === '!' && s[i + 1] === '=') {
        op = '!=';
        i += 2;
      } else throw bad('expected = or !=');
      space();
      let value = '';
      if (s[i] === '"') {
        i++;
        let closed = false;
        while (i < n) {
          const c = s[i]!;
          if (c === '\\' && i + 1 < n) {
            value += s[i + 1];
            i += 2;
          } else if (c === '"') {
            i++;
            closed = true;
            break;
          } else {
            value += c;
            i++;
          }
        }
        if (!closed) throw bad('unterminated "');
      } else {
        const vs = i;
        while (i < n && s[i] !== ',' && s[i] !== '}' && s[i] !== '"') i++;
        value = s.slice(vs, i).trim();
      }
      matchers.push({ name: key, op, value });
      if (matchers.length > maxMatchers) throw new HttpError(400, 'too many label filters', `more than ${maxMatchers - 1} filters, the limit`);
      space();
      if (s[i] === ',') {
        i++;
        continue;
      }
      if (s[i] === '}') {
        i++;
        break;
      }
      throw bad('expected , or }');
    }
    space();
    if (i < n) throw bad('text after }');
  }
  return { name, matchers };
}

function isNameChar(c: number, first: boolean): boolean {
  const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
  return first ? alpha : alpha || (c >= 48 && c <= 57) || c === 46;
}

/** One part of a query range, read from raw samples or from a rollup. */
export interface Piece {
  table: TableName;
  /** Time column: ts (raw, the profile start) or t (rollup bucket start). */
  col: 'ts' | 't';
  /** [fromS, toS) in Unix seconds. */
  fromS: number;
  toS: number;
}

/**
 * Splits a range into pieces: the coarsest rollup covers the whole buckets in
 * the middle, finer rollups the whole buckets left at the edges, raw samples
 * the rest. `usable` can rule a rollup out (a timeline step it does not divide);
 * needLabels rules out rollups summed over label sets (label filters, the
 * labels listing).
 * Samples are filed by whole seconds, so [from, to) in ms becomes
 * [ceil(from / 1000), ceil(to / 1000)) in seconds exactly.
 */
export function plan(
  range: TimeRange,
  usable: (bucketS: number) => boolean = () => true,
  needLabels = false,
): Piece[] {
  const out: Piece[] = [];
  const go = (a: number, b: number, level: number): void => {
    if (a >= b) return;
    const r = ROLLUPS[level];
    if (!r) {
      out.push({ table: 'samples', col: 'ts', fromS: a, toS: b });
      return;
    }
    const L = r.bucketS;
    const ca = Math.ceil(a / L) * L;
    const fb = Math.floor(b / L) * L;
    if (!usable(L) || (needLabels && !r.labels) || ca >= fb) return go(a, b, level + 1);
    go(a, ca, level + 1);
    out.push({ table: r.table, col: 't', fromS: ca, toS: fb });
    go(fb, b, level + 1);
  };
  // Times are 64-bit end to end: the parts of a range the store cannot hold
  // (before 1970, after 2106) simply have no samples, so they are cut here
  // instead of being wrapped into 32-bit seconds.
  go(storableSeconds(Math.ceil(range.from / 1000)), storableSeconds(Math.ceil(range.to / 1000)), 0);
  return out;
}

/** Seconds within what a DateTime column holds. */
export function storableSeconds(s: number): number {
  return Math.min(Math.max(s, 0), 0xffffffff);
}

/** The type and label-filter conditions (shared by every piece); adds their parameters. */
function filterSql(store: Store, sel: Selection, params: QueryParams): string {
  params.service = sel.service;
  params.type = sel.type ?? CPU_TYPE_ID;
  return ' AND type = {type:String}' + labelFilterSql(store, sel, params);
}

/** The label-filter condition alone: label sets of the service matching every filter. */
function labelFilterSql(store: Store, sel: Pick<Selection, 'filters'>, params: QueryParams): string {
  if (sel.filters.length === 0) return '';
  const conds = sel.filters.map((f, i) => {
    params[`k${i}`] = f.name;
    params[`v${i}`] = f.values;
    return `labels[{k${i}:String}] ${f.op === '=' ? 'IN' : 'NOT IN'} {v${i}:Array(String)}`;
  });
  // GLOBAL IN: on a cluster the label-set list is computed once and shipped to
  // every shard; on one server it is an ordinary IN.
  return (
    ` AND labels_hash GLOBAL IN (SELECT labels_hash FROM ${store.t.labelsets}` +
    ` WHERE service = {service:String} AND ${conds.join(' AND ')})`
  );
}

/** UNION ALL of `select` over the pieces of a selection. */
function union(store: Store, sel: Selection, pieces: Piece[], select: (col: 'ts' | 't') => string, params: QueryParams): string {
  const filter = filterSql(store, sel, params);
  return pieces
    .map((pc, i) => {
      params[`a${i}`] = pc.fromS;
      params[`b${i}`] = pc.toS;
      return (
        `SELECT ${select(pc.col)} FROM ${store.t[pc.table]} WHERE service = {service:String}` +
        ` AND ${pc.col} >= toDateTime({a${i}:UInt32}, 'UTC') AND ${pc.col} < toDateTime({b${i}:UInt32}, 'UTC')${filter}`
      );
    })
    .join('\n UNION ALL ');
}

/** Samples per stack for a selection. */
export async function stackValues(store: Store, sel: Selection): Promise<StackValue[]> {
  const pieces = plan(sel.range, undefined, sel.filters.length > 0);
  if (pieces.length === 0) return [];
  const params: QueryParams = {};
  const rows = await store.rows(
    `SELECT toString(stack_hash), toString(sum(v)) FROM (${union(store, sel, pieces, () => 'stack_hash, value AS v', params)})
     GROUP BY stack_hash`,
    params,
  );
  return rows.map((r) => ({ hash: String(r[0]), value: Number(r[1]) }));
}

/** Values per (stack, label set) of a selection: what a pprof export needs to keep sample labels. */
export async function stackLabelValues(store: Store, sel: Selection): Promise<(StackValue & { labels: string })[]> {
  const pieces = plan(sel.range, undefined, true);
  if (pieces.length === 0) return [];
  const params: QueryParams = {};
  const rows = await store.rows(
    `SELECT toString(stack_hash), toString(labels_hash), toString(sum(v)) FROM (${union(store, sel, pieces, () => 'stack_hash, labels_hash, value AS v', params)})
     GROUP BY stack_hash, labels_hash`,
    params,
  );
  return rows.map((r) => ({ hash: String(r[0]), labels: String(r[1]), value: Number(r[2]) }));
}

/** The labels of some of a service's label sets, by label-set id. */
export async function labelSets(store: Store, service: string, ids: readonly string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  const unique = [...new Set(ids)];
  // In slices: a query's parameters travel in its URL on a server.
  for (let i = 0; i < unique.length; i += 10_000) {
    const rows = await store.rows(
      `SELECT toString(labels_hash), mapKeys(labels), mapValues(labels) FROM ${store.t.labelsets}
       WHERE service = {service:String} AND labels_hash IN {ids:Array(UInt64)}
       LIMIT 1 BY labels_hash`,
      { service, ids: unique.slice(i, i + 10_000).map((h) => BigInt(h)) },
    );
    for (const r of rows) {
      const keys = (r[1] as unknown[]).map(String);
      const values = (r[2] as unknown[]).map(String);
      out.set(String(r[0]), Object.fromEntries(keys.map((k, j) => [k, values[j] ?? ''])));
    }
  }
  return out;
}

/** Samples per step-wide bucket, buckets aligned to the Unix epoch (so rollup buckets fall inside them). */
export async function timeline(store: Store, sel: Selection, stepMs: number): Promise<{ points: TimelinePoint[]; total: number }> {
  const stepS = Math.max(1, Math.round(stepMs / 1000));
  const step = stepS * 1000;
  const first = Math.floor(sel.range.from / step);
  const n = Math.max(0, Math.ceil(sel.range.to / step) - first);
  const values = new Array<number>(n).fill(0);
  let total = 0;
  const pieces = plan(sel.range, (bucketS) => stepS % bucketS === 0, sel.filters.length > 0);
  if (pieces.length > 0) {
    const params: QueryParams = { stepS };
    const rows = await store.rows(
      `SELECT b, toString(sum(v)) FROM (${union(store, sel, pieces, (col) => `intDiv(toUnixTimestamp(${col}), {stepS:UInt32}) AS b, value AS v`, params)})
       GROUP BY b ORDER BY b`,
      params,
    );
    for (const r of rows) {
      const i = Number(r[0]) - first;
      const v = Number(r[1]);
      total += v;
      if (i >= 0 && i < n) values[i] = (values[i] ?? 0) + v;
    }
  }
  return { points: values.map((value, i) => ({ t: (first + i) * step, value })), total };
}

/** A round bucket width giving at most about `target` buckets. */
export function autoStep(range: TimeRange, target = 200): number {
  // Multiples of 10 minutes from 600 s up, so longer timelines can read the rollups.
  const steps = [1, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);
  const span = range.to - range.from;
  for (const s of steps) if (span / s <= target) return s;
  return Math.ceil(span / target / 86_400_000) * 86_400_000;
}

export async function services(store: Store, range: TimeRange): Promise<ServiceInfo[]> {
  const rows = await store.rows(
    `SELECT service, uniqExact(ingest_key), toString(sumIf(samples, type = {cpu:String})), toUnixTimestamp(min(ts)), toUnixTimestamp(max(ts)),
            arraySort(groupUniqArray(type))
     FROM ${store.t.profiles}
     WHERE ts >= toDateTime({from:UInt32}, 'UTC') AND ts < toDateTime({to:UInt32}, 'UTC')
     GROUP BY service ORDER BY service`,
    { cpu: CPU_TYPE_ID, from: storableSeconds(Math.ceil(range.from / 1000)), to: storableSeconds(Math.ceil(range.to / 1000)) },
  );
  return rows.map((r) => ({
    name: String(r[0]),
    profiles: Number(r[1]),
    samples: Number(r[2]),
    firstSeen: Number(r[3]) * 1000,
    lastSeen: Number(r[4]) * 1000,
    types: (r[5] as unknown[]).map(String),
  }));
}

export async function labels(store: Store, sel: Selection, maxValues: number): Promise<LabelInfo[]> {
  const pieces = plan(sel.range, undefined, true);
  if (pieces.length === 0) return [];
  const params: QueryParams = { maxValues };
  const rows = await store.rows(
    `SELECT k, arraySort(groupUniqArray({maxValues:UInt32})(v)), uniqExact(v)
     FROM (
       SELECT labels FROM ${store.t.labelsets}
       WHERE service = {service:String}
         AND labels_hash GLOBAL IN (SELECT DISTINCT labels_hash FROM (${union(store, sel, pieces, () => 'labels_hash', params)}))
       LIMIT 1 BY labels_hash
     )
     ARRAY JOIN mapKeys(labels) AS k, mapValues(labels) AS v
     GROUP BY k ORDER BY k`,
    params,
  );
  return rows.map((r) => {
    const values = (r[1] as unknown[]).map(String);
    const count = Number(r[2]);
    return { name: String(r[0]), values, count, truncated: count > values.length };
  });
}

/** The sampling period of the selection's type (an exported pprof's, and what a count of time is worth): the most common one in the range, or 0 when unknown. */
export async function samplingPeriod(store: Store, sel: Selection): Promise<number> {
  const rows = await store.rows(
    `SELECT toString(topK(1)(period_ns)[1]) FROM ${store.t.profiles}
     WHERE service = {service:String} AND type = {type:String}
       AND ts >= toDateTime({from:UInt32}, 'UTC') AND ts < toDateTime({to:UInt32}, 'UTC')
       AND period_ns > 0`,
    {
      service: sel.service,
      type: sel.type ?? CPU_TYPE_ID,
      from: storableSeconds(Math.ceil(sel.range.from / 1000)),
      to: storableSeconds(Math.ceil(sel.range.to / 1000)),
    },
  );
  const v = Number(rows[0]?.[0] ?? 0);
  return Number.isFinite(v) ? v : 0;
}


/** A profile type stored in a range. */
export interface TypeStat {
  /** Profile type ID. */
  type: string;
  /** Services that have it (in the range, matching the selection). */
  services: string[];
}

/**
 * The profile types stored in a range, sorted by ID: of every service, or of
 * one, or of the label sets of one service that match label filters. Without
 * filters it reads the small kiln_profiles table; filters are answered from
 * the samples (the hourly rollup where whole hours allow), as every other
 * filtered query is.
 */
export async function profileTypes(store: Store, sel: { service?: string; range: TimeRange; filters?: LabelFilter[] }): Promise<TypeStat[]> {
  const filters = sel.filters ?? [];
  let rows: unknown[][];
  if (filters.length === 0 || sel.service === undefined) {
    if (filters.length > 0) throw new HttpError(400, 'bad query', 'label filters need a service');
    rows = await store.rows(
      `SELECT type, arraySort(groupUniqArray(service)) FROM ${store.t.profiles}
       WHERE ts >= toDateTime({from:UInt32}, 'UTC') AND ts < toDateTime({to:UInt32}, 'UTC')
         ${sel.service === undefined ? '' : 'AND service = {service:String}'}
       GROUP BY type ORDER BY type`,
      {
        service: sel.service,
        from: storableSeconds(Math.ceil(sel.range.from / 1000)),
        to: storableSeconds(Math.ceil(sel.range.to / 1000)),
      },
    );
  } else {
    const pieces = plan(sel.range, undefined, true);
    if (pieces.length === 0) return [];
    const params: QueryParams = { service: sel.service };
    const filter = labelFilterSql(store, { filters }, params);
    const union = pieces
      .map((pc, i) => {
        params[`a${i}`] = pc.fromS;
        params[`b${i}`] = pc.toS;
        return (
          `SELECT DISTINCT type FROM ${store.t[pc.table]} WHERE service = {service:String}` +
          ` AND ${pc.col} >= toDateTime({a${i}:UInt32}, 'UTC') AND ${pc.col} < toDateTime({b${i}:UInt32}, 'UTC')${filter}`
        );
      })
      .join('\n UNION ALL ');
    rows = await store.rows(`SELECT DISTINCT type, [{service:String}] FROM (${union}) ORDER BY type`, params);
  }
  return rows.map((r) => ({ type: String(r[0]), services: (r[1] as unknown[]).map(String) }));
}
