/**
 * The HTTP service: express app factory. The process keeps no state but
 * caches, so any number of them can run behind a load balancer against one
 * ClickHouse.
 */

import { timingSafeEqual, createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type {
  ApiError,
  DiffResponse,
  FlamegraphResponse,
  Granularity,
  HealthResponse,
  IngestResponse,
  LabelsResponse,
  ServicesResponse,
  TimelineResponse,
  TopResponse,
  TopSort,
} from './api.js';
import { limitsFrom, loadTokens, resolveUiDir, DEFAULTS, type ServeOptions, type Tokens } from './config.js';
import { Resolver, UNKNOWN_STACK_FN } from './dict.js';
import { Ingestor } from './ingest.js';
import { HttpError, checkLabel, checkService, inflateBounded, type Limits } from './limits.js';
import { parseAppName, parseFolded, parseMultipart } from './pyroscope.js';
import * as q from './query.js';
import { Store } from './store.js';
import { parseRange, parseTime } from './time.js';
import { buildCallTree, frameView, toDiff, toFlame, topFunctions, type FrameView, type StackValue } from './tree.js';
import { decodePprof, encodePprof, profileFromPprof } from '../profile/pprof.js';
import type { Frame, Profile } from '../profile/profile.js';

export interface KilnServer {
  app: express.Express;
  store: Store;
  ingestor: Ingestor;
  /** Writes pending rows and closes the store (not the HTTP listener: serve() owns that). */
  close(): Promise<void>;
}

/** Pyroscope's default sampling rate, used when a profile did not say. */
const FALLBACK_PERIOD_NS = 10_000_000;

export async function createServer(opts: ServeOptions = {}): Promise<KilnServer> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const limits = limitsFrom(opts.limits);
  const tokens = loadTokens(opts);
  const retentionDays = opts.retentionDays ?? DEFAULTS.retentionDays;
  const store = await Store.open({
    data: opts.data ?? DEFAULTS.data,
    url: opts.clickhouseUrl,
    user: opts.clickhouseUser,
    password: opts.clickhousePassword,
    database: opts.clickhouseDatabase,
    cluster: opts.cluster,
    retentionDays,
    log,
  });
  // Try the schema now so a misconfiguration shows at start-up; if the store
  // is down, keep going: requests answer 503 and retry until it is back.
  try {
    await store.ready();
  } catch (e) {
    log(`kiln: store not ready yet (${e instanceof Error ? e.message : String(e)}); will retry on demand`);
  }
  const resolver = new Resolver();
  const ingestor = new Ingestor(store, limits, resolver, retentionDays, { maxDelayMs: opts.batchDelayMs });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  const raw = express.raw({ type: () => true, limit: limits.maxBodyBytes, inflate: true });
  const auth = authMiddleware(tokens);

  app.get('/healthz', async (_req, res) => {
    const body: HealthResponse = { ok: true, store: store.description, mode: store.mode };
    try {
      await store.ready();
      await store.rows('SELECT 1', {});
      res.json(body);
    } catch (e) {
      res.status(503).json({ ...body, ok: false, detail: e instanceof Error ? e.message : String(e) });
    }
  });

  app.post('/api/v1/profiles', auth.write, raw, async (req, res) => {
    const query = queryOf(req);
    const service = checkService(one(query, 'service'));
    const series: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) {
      if (k === 'service' || k === 'time') continue;
      if (Array.isArray(v)) throw new HttpError(400, 'bad label', `label ${k} is given ${v.length} times`);
      checkLabel(k, v, limits, 'query label');
      series[k] = v;
    }
    if (Object.keys(series).length > limits.maxSeriesLabels) {
      throw new HttpError(400, 'too many labels', `${Object.keys(series).length} labels, limit ${limits.maxSeriesLabels}`);
    }
    const timeMs = parseTime(one(query, 'time'), Date.now(), 'time');
    const profile = await readPprof(bodyOf(req), limits);
    const out: IngestResponse = await ingestor.ingest({ service, series, profile, timeMs, source: 'pprof', format: 'pprof' });
    res.json(out);
  });

  app.post('/ingest', auth.write, raw, async (req, res) => {
    const query = queryOf(req);
    const { service, labels } = parseAppName(one(query, 'name'), limits);
    checkService(service, 'application name');
    const now = Date.now();
    const from = parseTime(one(query, 'from'), now, 'from');
    const until = parseTime(one(query, 'until'), now, 'until');
    if (from !== undefined && until !== undefined && until < from) {
      throw new HttpError(400, 'bad time range', 'until is before from');
    }
    const fmt = one(query, 'format');
    const spyName = one(query, 'spyName');
    if (spyName !== undefined && !/^[\w.-]{0,100}$/.test(spyName)) throw new HttpError(400, 'bad spyName', 'letters, digits, _ . - only');
    const rateText = one(query, 'sampleRate');
    const sampleRate = rateText === undefined ? undefined : Number(rateText);
    if (sampleRate !== undefined && !(sampleRate > 0 && sampleRate <= 1e6)) {
      throw new HttpError(400, 'bad sampleRate', `${JSON.stringify(rateText)} is not a rate in Hz`);
    }

    let body = bodyOf(req);
    const contentType = req.headers['content-type'] ?? '';
    if (/^multipart\/form-data/i.test(contentType)) {
      const parts = parseMultipart(body, contentType);
      const part = parts.find((p) => p.name === 'profile') ?? parts[0];
      if (!part) throw new HttpError(400, 'malformed multipart body', 'no "profile" part');
      body = part.data;
    }
    let format: 'pprof' | 'folded';
    if (fmt === 'pprof' || fmt === 'folded') format = fmt;
    else if (fmt === undefined || fmt === '') format = looksLikePprof(body) ? 'pprof' : 'folded';
    else throw new HttpError(400, 'unknown format', `format ${JSON.stringify(fmt.slice(0, 50))} is not supported; use pprof or folded`);

    let profile: Profile;
    if (format === 'pprof') profile = await readPprof(body, limits);
    else {
      const text = await inflateBounded(body, limits.maxProfileBytes);
      profile = parseFolded(text.toString('utf8'), limits);
    }
    if (sampleRate !== undefined) profile.periodNs = 1e9 / sampleRate;
    else if (format === 'folded' && profile.periodNs === 0) profile.periodNs = FALLBACK_PERIOD_NS;
    if (from !== undefined && until !== undefined) profile.durationNs = (until - from) * 1e6;
    const source = `pyroscope-${format}${spyName ? `/${spyName}` : ''}`;
    const out = await ingestor.ingest({ service, series: labels, profile, timeMs: from, source, format });
    res.json(out);
  });

  const api = express.Router();
  api.use(auth.read);

  api.get('/services', async (req, res) => {
    const query = queryOf(req);
    const range = parseRange(one(query, 'from'), one(query, 'to'), { now: Date.now(), maxRangeMs: limits.maxQueryRangeMs });
    await store.ready();
    const body: ServicesResponse = { ...range, services: await q.services(store, range) };
    res.json(body);
  });

  api.get('/labels', async (req, res) => {
    const sel = selection(queryOf(req), limits);
    await store.ready();
    const body: LabelsResponse = {
      service: sel.service,
      ...sel.range,
      labels: await q.labels(store, sel, limits.maxLabelValues),
    };
    res.json(body);
  });

  api.get('/flamegraph', async (req, res) => {
    const query = queryOf(req);
    const sel = selection(query, limits);
    const maxNodes = maxNodesOf(query, limits);
    const granularity = granularityOf(query);
    await store.ready();
    const stacks = await q.stackValues(store, sel);
    const view = await viewFor(store, resolver, stacks, granularity);
    const tree = toFlame(buildCallTree(view, stacks), view, maxNodes);
    const body: FlamegraphResponse = {
      service: sel.service,
      ...sel.range,
      filters: sel.filters,
      granularity,
      total: tree.root.value,
      nodes: tree.nodes,
      fullNodes: tree.fullNodes,
      maxNodes,
      root: tree.root,
    };
    res.json(body);
  });

  api.get('/diff', async (req, res) => {
    const query = queryOf(req);
    const base = selection(query, limits, 'base');
    const comparison = selection(query, limits, 'comparison');
    if (base.service !== comparison.service) throw new HttpError(400, 'bad service', 'both sides must be the same service');
    const maxNodes = maxNodesOf(query, limits);
    const granularity = granularityOf(query);
    await store.ready();
    const [b, c] = await Promise.all([q.stackValues(store, base), q.stackValues(store, comparison)]);
    const view = await viewFor(store, resolver, [...b, ...c], granularity);
    const tree = toDiff(buildCallTree(view, c, b), view, maxNodes);
    const body: DiffResponse = {
      service: base.service,
      granularity,
      base: { ...base.range, filters: base.filters, total: tree.root.base },
      comparison: { ...comparison.range, filters: comparison.filters, total: tree.root.comparison },
      baseScale: tree.baseScale,
      nodes: tree.nodes,
      fullNodes: tree.fullNodes,
      maxNodes,
      root: tree.root,
    };
    res.json(body);
  });

  api.get('/top', async (req, res) => {
    const query = queryOf(req);
    const sel = selection(query, limits);
    const granularity = granularityOf(query);
    const sortText = one(query, 'sort') ?? 'self';
    if (sortText !== 'self' && sortText !== 'total' && sortText !== 'name') {
      throw new HttpError(400, 'bad sort', 'sort is self, total or name');
    }
    const sort: TopSort = sortText;
    const orderText = one(query, 'order') ?? (sort === 'name' ? 'asc' : 'desc');
    if (orderText !== 'asc' && orderText !== 'desc') throw new HttpError(400, 'bad order', 'order is asc or desc');
    const limit = intParam(query, 'limit', 100, 1, 10_000);
    await store.ready();
    const stacks = await q.stackValues(store, sel);
    const view = await viewFor(store, resolver, stacks, granularity);
    const top = topFunctions(view, stacks, sort, orderText);
    const body: TopResponse = {
      service: sel.service,
      ...sel.range,
      filters: sel.filters,
      granularity,
      total: top.total,
      sort,
      order: orderText,
      count: top.entries.length,
      functions: top.entries.slice(0, limit),
    };
    res.json(body);
  });

  api.get('/timeline', async (req, res) => {
    const query = queryOf(req);
    const sel = selection(query, limits);
    const stepText = one(query, 'step');
    let step = q.autoStep(sel.range);
    if (stepText !== undefined) {
      const s = Number(stepText);
      // Samples are filed by whole seconds, so buckets are too.
      if (!(Number.isInteger(s) && s >= 1)) throw new HttpError(400, 'bad step', 'step is a whole number of seconds, at least 1');
      step = s * 1000;
    }
    if ((sel.range.to - sel.range.from) / step > 10_000) {
      throw new HttpError(400, 'bad step', 'more than 10,000 buckets; use a wider step');
    }
    await store.ready();
    const t = await q.timeline(store, sel, step);
    const body: TimelineResponse = { service: sel.service, ...sel.range, filters: sel.filters, step, total: t.total, points: t.points };
    res.json(body);
  });

  api.get('/pprof', async (req, res) => {
    const sel = selection(queryOf(req), limits);
    await store.ready();
    const [stacks, period] = await Promise.all([q.stackValues(store, sel), q.samplingPeriod(store, sel)]);
    await resolver.load(store, stacks.map((s) => s.hash));
    const profile: Profile = {
      samples: stacks.map((s) => ({ frames: pprofFrames(resolver, s.hash), labels: {}, count: s.value })),
      periodNs: period > 0 ? period : FALLBACK_PERIOD_NS,
      startNs: BigInt(sel.range.from) * 1_000_000n,
      durationNs: (sel.range.to - sel.range.from) * 1e6,
    };
    const buf = await encodePprof(profile);
    const name = `${sel.service.replace(/[^\w.-]+/g, '_')}-${new Date(sel.range.from).toISOString().replace(/[:.]/g, '')}.pb.gz`;
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Disposition', `attachment; filename="${name}"`);
    res.send(buf);
  });

  app.use('/api/v1', api);
  app.use('/api', (_req, _res, next) => next(new HttpError(404, 'not found', 'no such endpoint')));

  const uiDir = resolveUiDir(opts.uiDir);
  if (uiDir) app.use(express.static(uiDir, { index: 'index.html', fallthrough: true }));

  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const e = toHttpError(err);
    if (e.status >= 500) log(`kiln: ${e.status} ${e.message}`);
    const body: ApiError = e.detail ? { error: e.error, detail: e.detail } : { error: e.error };
    res.status(e.status).json(body);
  });

  return {
    app,
    store,
    ingestor,
    async close() {
      await ingestor.flush();
      await store.close();
    },
  };
}

type Query = Record<string, string | string[]>;

function queryOf(req: Request): Query {
  const out: Query = {};
  for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.map(String);
  }
  return out;
}

function one(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw new HttpError(400, `repeated parameter`, `${name} is given ${v.length} times`);
  return v;
}

function many(query: Query, name: string): string[] {
  const v = query[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function intParam(query: Query, name: string, dflt: number, min: number, max: number): number {
  const text = one(query, name);
  if (text === undefined || text === '') return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `bad ${name}`, `${name} is a whole number from ${min} to ${max}`);
  return n;
}

function maxNodesOf(query: Query, limits: Limits): number {
  return intParam(query, 'maxNodes', limits.defaultMaxNodes, 2, limits.maxMaxNodes);
}

function granularityOf(query: Query): Granularity {
  const g = one(query, 'granularity') ?? 'function';
  if (g !== 'function' && g !== 'line') throw new HttpError(400, 'bad granularity', 'granularity is function or line');
  return g;
}

/** service, range and filters of a query; with a prefix (base, comparison), side parameters override the shared ones. */
function selection(query: Query, limits: Limits, prefix = ''): q.Selection {
  const side = (name: string): string | undefined =>
    (prefix ? one(query, `${prefix}${name[0]!.toUpperCase()}${name.slice(1)}`) : undefined) ?? one(query, name);
  const labels = [...many(query, 'label'), ...(prefix ? many(query, `${prefix}Label`) : [])];
  const { filters, service: fromSelector } = q.parseFilters(labels, one(query, 'query'), limits);
  const given = one(query, 'service');
  if (given !== undefined && fromSelector !== undefined && given !== fromSelector) {
    throw new HttpError(400, 'bad service', `service=${given} and query=${fromSelector}{...} disagree`);
  }
  const service = checkService(given ?? fromSelector);
  const range = parseRange(side('from'), side('to'), {
    now: Date.now(),
    maxRangeMs: limits.maxQueryRangeMs,
    prefix: prefix ? `${prefix} ` : '',
  });
  return { service, range, filters };
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

function bodyOf(req: Request): Buffer {
  const b: unknown = req.body;
  if (!Buffer.isBuffer(b) || b.length === 0) throw new HttpError(400, 'empty body', 'the request has no profile in its body');
  return b;
}

/**
 * pprof (gzipped or raw protobuf) rather than folded text: gzip magic, or
 * control bytes other than tab/newline/CR near the start. Protobuf's tags and
 * small varint lengths are full of them; folded text has none. (The first
 * byte alone is no tell: field 1, sample_type, is tagged 0x0a, a newline.)
 */
function looksLikePprof(b: Buffer): boolean {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true;
  const n = Math.min(b.length, 1024);
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c < 0x09 || c === 0x0b || c === 0x0c || (c > 0x0d && c < 0x20) || c === 0x7f) return true;
  }
  return false;
}

async function readPprof(body: Buffer, limits: Limits): Promise<Profile> {
  const raw = await inflateBounded(body, limits.maxProfileBytes);
  let p: ReturnType<typeof decodePprof>;
  try {
    p = decodePprof(raw, limits.maxProfileBytes);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/more than/.test(msg)) throw new HttpError(413, 'profile too large', msg);
    throw new HttpError(400, 'malformed pprof', msg);
  }
  if (p.sample.length > limits.maxSamples) {
    throw new HttpError(400, 'too many samples', `${p.sample.length} samples, limit ${limits.maxSamples}`);
  }
  if (p.sampleType.length === 0 && p.sample.length > 0) {
    throw new HttpError(400, 'malformed pprof', 'samples without sample types');
  }
  try {
    return profileFromPprof(p);
  } catch (e) {
    throw new HttpError(400, 'malformed pprof', e instanceof Error ? e.message : String(e));
  }
}

function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  // body-parser's errors carry status and type.
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (e.type === 'entity.too.large') return new HttpError(413, 'body too large', message);
  if (e.type === 'encoding.unsupported') return new HttpError(415, 'unsupported content encoding', message);
  if (status >= 400 && status < 500) return new HttpError(status, 'bad request', message);
  return new HttpError(500, 'internal error', message);
}

/** Bearer tokens, compared in constant time (over SHA-256 digests, so lengths do not leak either). */
function authMiddleware(tokens: Tokens) {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  const write = tokens.write.map(digest);
  const read = [...tokens.read, ...tokens.write].map(digest);
  const matches = (req: Request, allowed: Buffer[]): boolean => {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) return false;
    const d = digest(m[1]!);
    let ok = false;
    for (const a of allowed) ok = timingSafeEqual(a, d) || ok;
    return ok;
  };
  const guard = (allowed: Buffer[], what: string) => (req: Request, res: Response, next: NextFunction) => {
    if (allowed.length === 0 || matches(req, allowed)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer');
    const body: ApiError = { error: 'unauthorized', detail: `${what} need Authorization: Bearer <token>` };
    res.status(401).json(body);
  };
  return {
    write: guard(write, 'writes'),
    // Reads are open unless a read token exists; write tokens also read.
    read: tokens.read.length === 0 ? (_req: Request, _res: Response, next: NextFunction) => next() : guard(read, 'reads'),
  };
}
