/**
 * The part of Pyroscope's querier (querier.v1.QuerierService) that Grafana's
 * Pyroscope data source calls, answered from Kiln's store with the same
 * queries as the JSON API: a flame graph here is /api/v1/flamegraph's tree in
 * Pyroscope's level form, a series /api/v1/timeline's buckets.
 *
 * Kiln keeps profiles per service, so `service_name` in a selector picks the
 * service and every other matcher is a label filter. Selects that name no
 * service are refused (invalid_argument) rather than guessed.
 */

import { create } from '@bufbuild/protobuf';
import type { FlameNode, LabelFilter, LabelInfo } from '../api.js';
import type { Limits } from '../limits.js';
import { parseProfileType, requestedType } from '../../profile/profile-type.js';
import * as q from '../query.js';
import type { Store } from '../store.js';
import type { TimeRange } from '../time.js';
import {
  FlameGraphSchema,
  LevelSchema,
  ProfileFormat,
  ProfileTypesResponseSchema,
  SelectMergeStacktracesResponseSchema,
  SelectSeriesResponseSchema,
  type FlameGraph,
  type ProfileTypesRequest,
  type ProfileTypesResponse,
  type SelectMergeStacktracesRequest,
  type SelectMergeStacktracesResponse,
  type SelectSeriesRequest,
  type SelectSeriesResponse,
} from './gen/querier/v1/querier_pb.js';
import {
  LabelNamesResponseSchema,
  LabelPairSchema,
  LabelValuesResponseSchema,
  PointSchema,
  ProfileTypeSchema,
  SeriesSchema,
  TimeSeriesAggregationType,
  type LabelNamesRequest,
  type LabelNamesResponse,
  type LabelValuesRequest,
  type LabelValuesResponse,
  type Series,
} from './gen/types/v1/types_pb.js';
import { ConnectError } from './protocol.js';
import { SERVICE_LABEL } from './push.js';

/** Values a groupBy label is split into at most (each is one timeline query). */
export const MAX_GROUP_VALUES = 50;

/** Buckets a series may have; a finer step is widened to fit (Grafana picks steps from panel widths). */
export const MAX_SERIES_POINTS = 10_000;

export interface QuerierDeps {
  limits: Limits;
  store: Store;
  /** The flame tree of a selection, as /api/v1/flamegraph builds it. */
  flame(sel: q.Selection, maxNodes: number): Promise<FlameNode>;
  /**
   * What a stored value of the selection's type is worth in the type's unit
   * (the sampling period for CPU and wall time: Kiln stores their sample
   * counts, Pyroscope's clients expect nanoseconds).
   */
  scale(sel: q.Selection): Promise<number>;
}

/** A request's [start, end) in ms, checked; metadata calls (`clamp`) keep the latest part of an overlong range. */
export function rangeOf(start: bigint, end: bigint, limits: Limits, clamp: boolean, now = Date.now()): TimeRange {
  if (start === 0n && end === 0n) return { from: now - 3_600_000, to: now };
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  if (start < 0n || end < 0n || start > max || end > max) throw new ConnectError('invalid_argument', 'start and end are Unix milliseconds');
  const from = Number(start);
  const to = Number(end === 0n ? BigInt(now) : end);
  if (!(from < to)) throw new ConnectError('invalid_argument', `start (${from}) must be before end (${to})`);
  if (to - from > limits.maxQueryRangeMs) {
    if (clamp) return { from: to - limits.maxQueryRangeMs, to };
    throw new ConnectError(
      'invalid_argument',
      `the range spans ${Math.round((to - from) / 3_600_000)} h, more than the ${Math.round(limits.maxQueryRangeMs / 3_600_000)} h limit`,
    );
  }
  return { from, to };
}

export interface Selector {
  /** The service the selector names (service_name="x", or the legacy app{...} form), if exactly one. */
  service?: string;
  /** The profile type a __profile_type__="ID" matcher names. */
  type?: string;
  filters: LabelFilter[];
}

/**
 * A Pyroscope label selector ({service_name="x", host!="a"}): the service,
 * and the other matchers as Kiln's label filters. Only = and != exist here.
 */
export function parseSelector(text: string, limits: Limits): Selector {
  const { filters, service: legacy } = q.parseFilters([], text.trim() === '' ? undefined : text, limits);
  const own = filters.filter((f) => f.name === SERVICE_LABEL);
  const rest = filters.filter((f) => !f.name.startsWith('__') && f.name !== SERVICE_LABEL);
  let type: string | undefined;
  for (const f of filters) {
    if (!f.name.startsWith('__')) continue;
    if (f.name !== '__profile_type__' || f.op !== '=' || f.values.length !== 1) {
      throw new ConnectError('invalid_argument', `matcher ${f.name}${f.op} is not supported; of Pyroscope's reserved labels Kiln takes __profile_type__="ID"`);
    }
    type = typeOf(f.values[0]!);
  }
  const named = new Set<string>(legacy ? [legacy] : []);
  for (const f of own) {
    if (f.op !== '=') throw new ConnectError('invalid_argument', `${SERVICE_LABEL}!= is not supported: Kiln keeps profiles per service; name one with ${SERVICE_LABEL}="..."`);
    for (const v of f.values) named.add(v);
  }
  if (named.size > 1) {
    throw new ConnectError('invalid_argument', `the selector names ${named.size} services (${[...named].slice(0, 3).join(', ')}); Kiln answers for one service at a time`);
  }
  const [service] = named;
  return { ...(service !== undefined ? { service } : {}), ...(type !== undefined ? { type } : {}), filters: rest };
}

function requireService(s: Selector, what: string): string {
  if (s.service === undefined) {
    throw new ConnectError('invalid_argument', `${what} names no service: add ${SERVICE_LABEL}="..." to the label selector (Kiln keeps profiles per service)`);
  }
  return s.service;
}

/** A request's profile type ID, checked: empty means CPU, as everywhere in Kiln. A type nothing has is valid and has no data. */
export function typeOf(id: string): string {
  const type = requestedType(id);
  if (type === undefined) {
    throw new ConnectError('invalid_argument', `${JSON.stringify(id.slice(0, 200))} is not a profile type ID (name:sample_type:sample_unit:period_type:period_unit)`);
  }
  return type;
}

/** The request's type, which a __profile_type__ matcher in its selector must agree with. */
function selectType(id: string, s: Selector): string {
  const type = typeOf(id);
  if (s.type !== undefined && s.type !== type) {
    throw new ConnectError('invalid_argument', `profile_typeID ${type} and the selector's __profile_type__ ${s.type} disagree`);
  }
  return type;
}

export async function profileTypes(deps: QuerierDeps, req: ProfileTypesRequest): Promise<ProfileTypesResponse> {
  const range = rangeOf(req.start, req.end, deps.limits, true);
  const types = await q.profileTypes(deps.store, { range });
  return create(ProfileTypesResponseSchema, {
    profileTypes: types.flatMap((t) => {
      const p = parseProfileType(t.type);
      return p ? [create(ProfileTypeSchema, { ID: t.type, ...p })] : [];
    }),
  });
}

/** The selectors of a LabelNames/LabelValues request (each matcher is one; none means all of the range). */
function matchersOf(matchers: string[], limits: Limits): Selector[] {
  if (matchers.length > limits.maxFilters) throw new ConnectError('invalid_argument', `more than ${limits.maxFilters} matchers, the limit`);
  return matchers.map((m) => parseSelector(m, limits));
}

/**
 * Labels of a selector's service: of the type it names, else of every type
 * the service has (a service with only heap profiles still has labels).
 */
async function labelsOf(deps: QuerierDeps, s: Selector & { service: string }, range: TimeRange): Promise<LabelInfo[]> {
  const types = s.type !== undefined ? [s.type] : (await q.profileTypes(deps.store, { service: s.service, range, filters: s.filters })).map((t) => t.type);
  const out: LabelInfo[] = [];
  for (const type of types) out.push(...(await q.labels(deps.store, { service: s.service, range, filters: s.filters, type }, deps.limits.maxLabelValues)));
  return out;
}

export async function labelNames(deps: QuerierDeps, req: LabelNamesRequest): Promise<LabelNamesResponse> {
  const range = rangeOf(req.start, req.end, deps.limits, true);
  const names = new Set<string>([SERVICE_LABEL]);
  // Without a service there is nothing to list but the service label itself:
  // Grafana's editor picks service_name first, then asks again with it.
  for (const s of matchersOf(req.matchers, deps.limits)) {
    if (s.service === undefined) continue;
    for (const l of await labelsOf(deps, { ...s, service: s.service }, range)) names.add(l.name);
  }
  return create(LabelNamesResponseSchema, { names: [...names].sort() });
}

export async function labelValues(deps: QuerierDeps, req: LabelValuesRequest): Promise<LabelValuesResponse> {
  const range = rangeOf(req.start, req.end, deps.limits, true);
  const selectors = matchersOf(req.matchers, deps.limits);
  const named = selectors.filter((s) => s.service !== undefined);
  const values = new Set<string>();
  if (req.name === SERVICE_LABEL) {
    // Services with data in the range (of the type a matcher names, if one does).
    const types = new Set(selectors.flatMap((s) => (s.type !== undefined ? [s.type] : [])));
    const stored = await q.profileTypes(deps.store, { range });
    const all = new Set(stored.filter((t) => types.size === 0 || types.has(t.type)).flatMap((t) => t.services));
    const wanted = new Set(named.map((s) => s.service!));
    for (const s of all) if (wanted.size === 0 || wanted.has(s)) values.add(s);
  } else {
    if (named.length === 0) {
      throw new ConnectError('invalid_argument', `values of ${JSON.stringify(req.name.slice(0, 100))} need a service: add ${SERVICE_LABEL}="..." to the matchers`);
    }
    for (const s of named) {
      for (const l of await labelsOf(deps, { ...s, service: s.service! }, range)) if (l.name === req.name) for (const v of l.values) values.add(v);
    }
  }
  return create(LabelValuesResponseSchema, { names: [...values].sort() });
}

export async function selectMergeStacktraces(deps: QuerierDeps, req: SelectMergeStacktracesRequest): Promise<SelectMergeStacktracesResponse> {
  if (req.format !== ProfileFormat.UNSPECIFIED && req.format !== ProfileFormat.FLAMEGRAPH) {
    throw new ConnectError('unimplemented', `format ${ProfileFormat[req.format] ?? req.format} is not served; Kiln answers flame graphs (use /api/v1/pprof for pprof)`);
  }
  const sel = parseSelector(req.labelSelector, deps.limits);
  const type = selectType(req.profileTypeID, sel);
  const service = requireService(sel, 'SelectMergeStacktraces');
  const range = rangeOf(req.start, req.end, deps.limits, false);
  const maxNodes = maxNodesOf(req.maxNodes, deps.limits);
  const selection = { service, range, filters: sel.filters, type };
  const [root, scale] = await Promise.all([deps.flame(selection, maxNodes), deps.scale(selection)]);
  return create(SelectMergeStacktracesResponseSchema, { flamegraph: toFlameGraph(root, scale) });
}

/** Grafana sends its max-nodes setting; absent or 0 is Kiln's default, more than Kiln's limit is the limit. */
export function maxNodesOf(v: bigint | undefined, limits: Limits): number {
  if (v === undefined || v === 0n) return limits.defaultMaxNodes;
  if (v < 0n) throw new ConnectError('invalid_argument', 'max_nodes is positive');
  return v > BigInt(limits.maxMaxNodes) ? limits.maxMaxNodes : Math.max(2, Number(v));
}

/**
 * Pyroscope's flame graph form: one row of numbers per depth, four per node
 * (x offset from the end of the previous node of the row, total, self, index
 * in names), rows left to right; under a node its self time comes first,
 * then its children (pkg/model/flamegraph.go does the same). The root is
 * Pyroscope's "total".
 */
export function toFlameGraph(root: FlameNode, scale = 1): FlameGraph {
  const v = (x: number): number => Math.round(x * scale);
  const names: string[] = ['total'];
  const index = new Map<string, number>([['total', 0]]);
  const rows: number[][] = [];
  const rowEnd: number[] = [];
  let maxSelf = 0;
  // Depth-first, children in order, visits every row left to right.
  const stack: { n: FlameNode; depth: number; x: number; root: boolean }[] = [{ n: root, depth: 0, x: 0, root: true }];
  while (stack.length > 0) {
    const { n, depth, x, root: isRoot } = stack.pop()!;
    let i = isRoot ? 0 : index.get(n.name);
    if (i === undefined) {
      i = names.length;
      names.push(n.name);
      index.set(n.name, i);
    }
    const row = (rows[depth] ??= []);
    row.push(v(x) - v(rowEnd[depth] ?? 0), v(n.value), v(n.self), i);
    rowEnd[depth] = x + n.value;
    if (n.self > maxSelf) maxSelf = n.self;
    // As Pyroscope lays them out: the node's self time first, then its
    // children left to right (pushed last-first so the first pops first).
    let cx = x + n.self;
    const kids = n.children.map((child) => {
      const at = { n: child, depth: depth + 1, x: cx, root: false };
      cx += child.value;
      return at;
    });
    for (let c = kids.length - 1; c >= 0; c--) stack.push(kids[c]!);
  }
  return create(FlameGraphSchema, {
    names,
    levels: rows.map((r) => create(LevelSchema, { values: r.map(BigInt) })),
    total: BigInt(v(root.value)),
    maxSelf: BigInt(v(maxSelf)),
  });
}

/** The bucket width: the request's step (seconds) in whole seconds, widened to at most MAX_SERIES_POINTS buckets. */
export function stepOf(step: number, range: TimeRange): number {
  if (!Number.isFinite(step) || step < 0) throw new ConnectError('invalid_argument', 'step is a positive number of seconds');
  const stepMs = step === 0 ? q.autoStep(range) : Math.max(1, Math.ceil(step)) * 1000;
  const least = Math.ceil((range.to - range.from) / MAX_SERIES_POINTS / 1000) * 1000;
  return Math.max(stepMs, least);
}

export async function selectSeries(deps: QuerierDeps, req: SelectSeriesRequest): Promise<SelectSeriesResponse> {
  const sel = parseSelector(req.labelSelector, deps.limits);
  const type = selectType(req.profileTypeID, sel);
  const service = requireService(sel, 'SelectSeries');
  const range = rangeOf(req.start, req.end, deps.limits, false);
  const step = stepOf(req.step, range);
  if (req.aggregation !== undefined && req.aggregation !== TimeSeriesAggregationType.SUM) {
    throw new ConnectError('unimplemented', 'Kiln sums series points; average aggregation is not served');
  }
  const groupBy = [...new Set(req.groupBy)].filter((g) => g !== SERVICE_LABEL);
  if (groupBy.length > 1) throw new ConnectError('invalid_argument', `Kiln groups series by one label at a time (asked: ${groupBy.slice(0, 5).join(', ')})`);
  const limit = req.limit === undefined || req.limit <= 0n ? MAX_GROUP_VALUES : Math.min(MAX_GROUP_VALUES, Number(req.limit));
  const base = { service, range, filters: sel.filters, type };
  const scale = await deps.scale(base);
  const serviceLabel = req.groupBy.includes(SERVICE_LABEL) ? [{ name: SERVICE_LABEL, value: service }] : [];
  const seriesOf = async (s: q.Selection, labels: { name: string; value: string }[]): Promise<{ series: Series; total: number }> => {
    const t = await q.timeline(deps.store, s, step);
    return {
      total: t.total,
      series: create(SeriesSchema, {
        labels: labels.map((l) => create(LabelPairSchema, l)),
        points: t.points.map((p) => create(PointSchema, { value: p.value * scale, timestamp: BigInt(p.t) })),
      }),
    };
  };
  const g = groupBy[0];
  if (g === undefined) {
    const one = await seriesOf(base, serviceLabel);
    return create(SelectSeriesResponseSchema, { series: one.total > 0 ? [one.series] : [] });
  }
  const values = (await q.labels(deps.store, base, MAX_GROUP_VALUES)).find((l) => l.name === g);
  if (values?.truncated) {
    throw new ConnectError('invalid_argument', `${g} has ${values.count} values in the range, more than the ${MAX_GROUP_VALUES} Kiln splits series into; filter first`);
  }
  const out: { series: Series; total: number }[] = [];
  for (const v of values?.values ?? []) {
    const filters: LabelFilter[] = [...base.filters.filter((f) => !(f.name === g && f.op === '=')), { name: g, op: '=', values: [v] }];
    const s = await seriesOf({ ...base, filters }, [...serviceLabel, { name: g, value: v }]);
    if (s.total > 0) out.push(s);
  }
  out.sort((a, b) => b.total - a.total);
  return create(SelectSeriesResponseSchema, { series: out.slice(0, limit).map((s) => s.series) });
}

