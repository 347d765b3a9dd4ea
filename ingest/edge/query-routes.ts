/**
 * The query endpoints. Each takes exactly the parameters it names (anything
 * else is a 400), answers JSON gzipped when the client accepts it (on the
 * libuv pool, off the event loop), and asks ClickHouse through the query
 * client only, never an insert lane.
 */

import express, { type Request, type Response } from 'express';
import type {
  DiffResponse,
  FlamegraphResponse,
  Granularity,
  LabelsResponse,
  ServicesResponse,
  TimelineResponse,
  TopResponse,
  TopSort,
  TypesResponse,
  ValueUnitOf,
} from '../api.js';
import { Resolver, UNKNOWN_STACK_FN } from '../dict.js';
import { HttpError, checkService, type Limits } from '../limits.js';
import * as q from '../query.js';
import type { Store } from '../store.js';
import { parseRange } from '../time.js';
import { buildCallTree, frameView, toDiff, toFlame, topFunctions, type FlameResult, type FrameView, type StackValue } from '../tree.js';
import { encodePprof } from '../../profile/pprof.js';
import { interpreterBinary, type Frame, type Profile } from '../../profile/profile.js';
import type { Auth } from './auth.js';
import { sendBytes } from './respond.js';
import { RANGE_PARAMS, granularityOf, intParam, maxNodesOf, one, onlyParams, queryOf, selection, serviceAndFilters } from './params.js';
import { CPU_TYPE, CPU_TYPE_ID, isSampledTime, parseProfileType, valueKind, valueUnit } from '../../profile/profile-type.js';

/** Pyroscope's default sampling rate, used when the stored profiles did not say. */
const FALLBACK_PERIOD_NS = 10_000_000;

export interface QueryDeps {
  limits: Limits;
  auth: Auth;
  store: Store;
  resolver: Resolver;
  /**
   * Read-your-writes: resolves once what ingest acknowledged before the
   * request is stored (or after a bounded wait; see ingest/README.md).
   */
  caughtUp: () => Promise<unknown>;
}

/** JSON, gzipped when the client takes gzip and the body is worth it. */
export async function sendJson(req: Request, res: Response, body: unknown): Promise<void> {
  await sendBytes(req, res, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(body)));
}

export function queryRoutes(deps: QueryDeps): express.Router {
  const { limits, store, resolver } = deps;
  const api = express.Router();
  api.use(deps.auth.read);
  api.use(async (_req, _res, next) => {
    await deps.caughtUp();
    next();
  });

  api.get('/services', async (req, res) => {
    const query = queryOf(req);
    onlyParams(query, ['from', 'to']);
    const range = parseRange(one(query, 'from'), one(query, 'to'), { now: Date.now(), maxRangeMs: limits.maxQueryRangeMs });
    await store.ready();
    const body: ServicesResponse = { ...range, services: await q.services(store, range) };
    await sendJson(req, res, body);
  });

  api.get('/types', async (req, res) => {
    const query = queryOf(req);
    onlyParams(query, ['service', 'from', 'to', 'label', 'query']);
    const { service, filters } = serviceAndFilters(query, limits);
    if (service !== undefined) checkService(service);
    if (filters.length > 0 && service === undefined) throw new HttpError(400, 'bad query', 'label filters need a service');
    const range = parseRange(one(query, 'from'), one(query, 'to'), { now: Date.now(), maxRangeMs: limits.maxQueryRangeMs });
    await store.ready();
    const types = await q.profileTypes(store, { ...(service !== undefined ? { service } : {}), range, filters });
    const body: TypesResponse = {
      ...(service !== undefined ? { service } : {}),
      ...range,
      types: types.flatMap((t) => {
        const p = parseProfileType(t.type);
        return p ? [{ id: t.type, ...p, unit: valueKind(p), services: t.services }] : [];
      }),
    };
    await sendJson(req, res, body);
  });

  api.get('/labels', async (req, res) => {
    const query = queryOf(req);
    onlyParams(query, RANGE_PARAMS);
    const sel = selection(query, limits);
    await store.ready();
    const body: LabelsResponse = { service: sel.service, ...sel.range, labels: await q.labels(store, sel, limits.maxLabelValues) };
    await sendJson(req, res, body);
  });

  api.get('/flamegraph', async (req, res) => {
    const query = queryOf(req);
    onlyParams(query, [...RANGE_PARAMS, 'maxNodes', 'granularity']);
    const sel = selection(query, limits);
    const maxNodes = maxNodesOf(query, limits);
    const granularity = granularityOf(query);
    await store.ready();
    const [tree, unit] = await Promise.all([flameTree(store, resolver, sel, granularity, maxNodes), unitOf(store, sel)]);
    const body: FlamegraphResponse = {
      service: sel.service,
      ...unit,
      ...sel.range,
      filters: sel.filters,
      granularity,
      total: tree.root.value,
      nodes: tree.nodes,
      fullNodes: tree.fullNodes,
      maxNodes,
      root: tree.root,
    };
    await sendJson(req, res, body);
  });

  api.get('/diff', async (req, res) => {
    const query = queryOf(req);
    onlyParams(query, [
      ...RANGE_PARAMS,
      'maxNodes',
      'granularity',
      'baseFrom',
      'baseTo',
      'baseLabel',
      'comparisonFrom',
      'comparisonTo',
      'comparisonLabel',
    ]);
    const base = selection(query, limits, 'base');
    const comparison = selection(query, limits, 'comparison');
    if (base.service !== comparison.service) throw new HttpError(400, 'bad service', 'both sides must be the same service');
    const maxNodes = maxNodesOf(query, limits);
    const granularity = granularityOf(query);
    await store.ready();
    const [b, c, unit] = await Promise.all([q.stackValues(store, base), q.stackValues(store, comparison), unitOf(store, comparison)]);
    const view = await viewFor(store, resolver, [...b, ...c], granularity);
    const tree = toDiff(buildCallTree(view, c, b), view, maxNodes);
    const body: DiffResponse = {
      service: base.service,
      ...unit,
      granularity,
      base: { ...base.range, filters: base.filters, total: tree.root.base },
      comparison: { ...comparison.range, filters: comparison.filters, total: tree.root.comparison },
      baseScale: tree.baseScale,
      nodes: tree.nodes,
      fullNodes: tree.fullNodes,
      maxNodes,
      root: tree.root,
    };
    await sendJson(req, res, body);
  });

  api.get('/top', async (req, res) => {
    const query = queryOf(req);
    onlyParams(query, [...RANGE_PARAMS, 'sort', 'order', 'limit', 'granularity']);
    const sel = selection(query, limits);
    const granularity = granularityOf(query);
    const sortText = one(query, 'sort') ?? 'self';
    if (sortText !== 'self' && sortText !== 'total' && sortText !== 'name') throw new HttpError(400, 'bad sort', 'sort is self, total or name');
    const sort: TopSort = sortText;
    const orderText = one(query, 'order') ?? (sort === 'name' ? 'asc' : 'desc');
    if (orderText !== 'asc' && orderText !== 'desc') throw new HttpError(400, 'bad order', 'order is asc or desc');
    const limit = intParam(query, 'limit', 100, 1, 10_000);
    await store.ready();
    const [stacks, unit] = await Promise.all([q.stackValues(store, sel), unitOf(store, sel)]);
    const view = await viewFor(store, resolver, stacks, granularity);
    const top = topFunctions(view, stacks, sort, orderText);
    const body: TopResponse = {
      service: sel.service,
      ...unit,
      ...sel.range,
      filters: sel.filters,
      granularity,
      total: top.total,
      sort,
      order: orderText,
      count: top.entries.length,
      functions: top.entries.slice(0, limit),
    };
    await sendJson(req, res, body);
  });

  api.get('/timeline', async (req, res) => {
    const query = queryOf(req);
    onlyParams(query, [...RANGE_PARAMS, 'step']);
    const sel = selection(query, limits);
    const stepText = one(query, 'step');
    let step = q.autoStep(sel.range);
    if (stepText !== undefined) {
      // Samples are filed by whole seconds, so buckets are too.
      const s = intParam(query, 'step', 0, 1, Number.MAX_SAFE_INTEGER);
      step = s * 1000;
      if (step > sel.range.to - sel.range.from) {
        throw new HttpError(400, 'bad step', `a step of ${s} s is longer than the range (${Math.round((sel.range.to - sel.range.from) / 1000)} s)`);
      }
    }
    if ((sel.range.to - sel.range.from) / step > 10_000) throw new HttpError(400, 'bad step', 'more than 10,000 buckets; use a wider step');
    await store.ready();
    const [t, unit] = await Promise.all([q.timeline(store, sel, step), unitOf(store, sel)]);
    const body: TimelineResponse = { service: sel.service, ...unit, ...sel.range, filters: sel.filters, step, total: t.total, points: t.points };
    await sendJson(req, res, body);
  });

  api.get('/pprof', async (req, res) => {
    const query = queryOf(req);
    onlyParams(query, RANGE_PARAMS);
    const sel = selection(query, limits);
    const type = parseProfileType(sel.type ?? CPU_TYPE_ID) ?? CPU_TYPE;
    await store.ready();
    const [stacks, period] = await Promise.all([q.stackLabelValues(store, sel), q.samplingPeriod(store, sel)]);
    const [labelSets] = await Promise.all([
      q.labelSets(store, sel.service, stacks.map((s) => s.labels)),
      resolver.load(store, stacks.map((s) => s.hash)),
    ]);
    const labelsOf = (id: string): Record<string, string> => labelSets.get(id) ?? {};
    const profile: Profile = {
      samples: stacks.map((s) => ({ frames: pprofFrames(resolver, s.hash), labels: labelsOf(s.labels), count: s.value })),
      periodNs: period > 0 ? period : isSampledTime(type) ? FALLBACK_PERIOD_NS : 0,
      startNs: BigInt(sel.range.from) * 1_000_000n,
      durationNs: (sel.range.to - sel.range.from) * 1e6,
      type,
    };
    const binary = interpreterBinary([...labelSets.values()].map((l) => l.python_version ?? ''));
    if (binary) profile.mainBinary = binary;
    const buf = await encodePprof(profile);
    const name = `${sel.service.replace(/[^\w.-]+/g, '_')}-${new Date(sel.range.from).toISOString().replace(/[:.]/g, '')}.pb.gz`;
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Disposition', `attachment; filename="${name}"`);
    res.send(buf);
  });

  return api;
}

/** The flame tree of a selection: what /api/v1/flamegraph draws (and the Connect querier sends in Pyroscope's form). */
export async function flameTree(store: Store, resolver: Resolver, sel: q.Selection, granularity: Granularity, maxNodes: number): Promise<FlameResult> {
  const stacks = await q.stackValues(store, sel);
  const view = await viewFor(store, resolver, stacks, granularity);
  return toFlame(buildCallTree(view, stacks), view, maxNodes);
}

/** The unit of a selection's values: a sampled time's counts are worth its most common period. */
export async function unitOf(store: Store, sel: q.Selection): Promise<ValueUnitOf> {
  const type = sel.type ?? CPU_TYPE_ID;
  const t = parseProfileType(type) ?? CPU_TYPE;
  const period = isSampledTime(t) ? await q.samplingPeriod(store, sel) : 0;
  return { type, ...valueUnit(t, period) };
}

async function viewFor(store: Store, resolver: Resolver, stacks: StackValue[], granularity: Granularity): Promise<FrameView> {
  await resolver.load(store, stacks.map((s) => s.hash));
  return frameView(resolver, granularity);
}

/** Leaf-first frames of a stack for pprof export. */
function pprofFrames(resolver: Resolver, hash: string): Frame[] {
  const locs = resolver.stack(hash);
  const fn = (i: number): Frame => {
    const f = resolver.functions[i]!;
    return { name: f.name, systemName: f.systemName, filename: f.filename, startLine: f.startLine, line: 0 };
  };
  if (!locs) return [fn(UNKNOWN_STACK_FN)];
  const out: Frame[] = new Array(locs.length);
  for (let i = 0; i < locs.length; i++) {
    const l = locs[i]!;
    out[locs.length - 1 - i] = { ...fn(resolver.locFn[l]!), line: resolver.locLine[l] ?? 0 };
  }
  return out;
}
