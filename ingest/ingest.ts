/**
 * Profile -> rows, and the group commit that writes them.
 *
 * Ids: every function, location (function + line), stack (location ids, leaf
 * first) and label set gets a 64-bit FNV-1a id computed here, so any number of
 * Kiln processes agree on them without coordination, and each distinct stack
 * is stored once (ReplacingMergeTree merges the duplicates that several
 * processes, or a cold cache, write).
 *
 * Group commit: a request's rows join the current batch and the request
 * answers once that batch is in ClickHouse. One INSERT per table per batch
 * instead of per profile: an INSERT costs ~3-5 ms of fixed overhead, and a
 * part per profile would drown MergeTree in merges at fleet rates. A request
 * never gets an answer for rows that are not stored.
 */

import type { IngestResponse } from './api.js';
import { TwoGen, dayNumber, dayText, writtenCaches, type Resolver, type WrittenCaches } from './dict.js';
import { Fnv64, type Id64 } from './hash.js';
import { HttpError, checkLabel, type Limits } from './limits.js';
import { tsvEscape, tsvMap, type Store } from './store.js';
import { iso } from './time.js';
import { SYNTHETIC, type Frame, type Profile } from '../profile/profile.js';

export interface IngestInput {
  service: string;
  /** Query-string labels (host, region, ...). They win over a sample label of the same name. */
  series: Record<string, string>;
  profile: Profile;
  /** Overrides the profile's own start time (Unix ms). */
  timeMs?: number;
  /** Recorded in kiln_profiles.source: pprof, pyroscope-pprof, pyroscope-folded, ... */
  source: string;
  format: IngestResponse['format'];
}

export interface IngestOptions {
  /** How long the first row of a batch waits for company before the INSERT, ms. */
  maxDelayMs?: number;
  /** A batch this large is written at once. */
  maxBatchRows?: number;
  now?: () => number;
}

/** Written in this order so a visible sample's stack and labels are already there. */
const FLUSH_ORDER = ['functions', 'locations', 'stacks', 'labelsets', 'samples', 'profiles'] as const;

/** The rollups are filled by materialized views, not written here. */
const COLUMNS: Record<(typeof FLUSH_ORDER)[number], string[]> = {
  functions: ['function_id', 'name', 'system_name', 'filename', 'start_line', 'last_seen'],
  locations: ['location_id', 'function_id', 'line', 'last_seen'],
  stacks: ['stack_hash', 'location_ids', 'last_seen'],
  labelsets: ['service', 'labels_hash', 'labels', 'last_seen'],
  samples: ['service', 'ts', 'labels_hash', 'stack_hash', 'value'],
  profiles: ['service', 'ts', 'series', 'duration_ns', 'period_ns', 'samples', 'rows', 'source'],
};

type DictTable = 'functions' | 'locations' | 'stacks' | 'labelsets';

/** What ingest remembers about a location across profiles. */
interface KnownLoc {
  id: Id64;
  fnId: Id64;
  /** Index in the Resolver's interned tables, valid while epoch matches the Resolver's. */
  idx: number;
  epoch: number;
  /** UTC day on which it was seen written; until then each profile checks the written caches. */
  checkedDay: number;
}

interface Contribution {
  lines: Record<(typeof FLUSH_ORDER)[number], string[]>;
  /** Dictionary rows: skipped when the batch already has the key. */
  dict: { table: DictTable; key: string; line: string }[];
}

interface Batch {
  lines: Record<(typeof FLUSH_ORDER)[number], string[]>;
  keys: Record<DictTable, Set<string>>;
  rows: number;
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class Ingestor {
  readonly written: WrittenCaches = writtenCaches();
  /** Frame content -> ids, so a location is hashed once per process, not once per profile. */
  private readonly locCache = new TwoGen<string, KnownLoc>(400_000);
  private batch: Batch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private inFlightRows = 0;
  private readonly maxDelayMs: number;
  private readonly maxBatchRows: number;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly limits: Limits,
    private readonly resolver: Resolver,
    private readonly retentionDays: number,
    opts: IngestOptions = {},
  ) {
    this.maxDelayMs = opts.maxDelayMs ?? 25;
    this.maxBatchRows = opts.maxBatchRows ?? 50_000;
    this.now = opts.now ?? Date.now;
  }

  async ingest(input: IngestInput): Promise<IngestResponse> {
    const { contribution, response } = this.toRows(input);
    await this.store.ready();
    await this.add(contribution);
    return response;
  }

  /**
   * Turns a profile into rows without writing anything (the caches are only
   * read and primed). Public for benchmarks; ingest() is the way in.
   */
  toRows(input: IngestInput): { contribution: Contribution; response: IngestResponse } {
    const { service, series, profile, limits } = { ...input, limits: this.limits };
    const now = this.now();
    if (profile.samples.length > limits.maxSamples) {
      throw new HttpError(400, 'too many samples', `${profile.samples.length} samples, limit ${limits.maxSamples}`);
    }
    const given = input.timeMs ?? (profile.startNs > 0n ? Number(profile.startNs / 1_000_000n) : now);
    // Stored to the second (kiln_samples.ts is a DateTime): profiles last seconds, and
    // whole seconds make the column smaller and scans faster (see schema.ts).
    const ts = Math.floor(given / 1000) * 1000;
    if (!Number.isFinite(ts) || ts < now - this.retentionDays * 86_400_000 || ts > now + 86_400_000) {
      throw new HttpError(
        400,
        'bad time range',
        `profile time ${iso(ts)} is outside the retention window ` +
          `(${this.retentionDays} days back, one day ahead); pass time= to re-time it`,
      );
    }
    const today = dayText(now);
    const todayN = dayNumber(now);
    const contribution: Contribution = {
      lines: { functions: [], locations: [], stacks: [], labelsets: [], samples: [], profiles: [] },
      dict: [],
    };
    const seriesEntries = Object.entries(series);

    // profileFromPprof (and the folded reader) hand out one Frame object per
    // distinct location, so within a profile most lookups hit byFrame; across
    // profiles, locCache maps frame content to ids already computed.
    const byFrame = new Map<Frame, KnownLoc>();
    const labelIds = new Map<string, Id64>();
    const rows = new Map<string, { labels: Id64; stack: Id64; value: number }>();
    const stacks = new Set<string>();
    const resolver = this.resolver;
    let truncated = 0;
    let total = 0;

    const locationId = (frame: Frame): KnownLoc => {
      let loc = byFrame.get(frame);
      if (loc) return loc;
      const f = clampFrame(frame, limits.maxSymbolLength);
      const key = `${f.name}\0${f.systemName}\0${f.filename}\0${f.startLine}\0${f.line}`;
      loc = this.locCache.get(key);
      if (!loc) {
        const fnId = functionIdOf(f);
        loc = { id: locationIdOf(fnId, f.line), fnId, idx: 0, epoch: -1, checkedDay: -1 };
        this.locCache.set(key, loc);
      }
      if (loc.epoch !== resolver.epoch) {
        const fnIdx = resolver.internFunction(loc.fnId.dec, { name: f.name, systemName: f.systemName, filename: f.filename, startLine: f.startLine });
        loc.idx = resolver.internLocation(loc.id.dec, fnIdx, f.line);
        loc.epoch = resolver.epoch;
      }
      if (loc.checkedDay !== todayN) {
        // A location written today was written with (or after) its function.
        if (this.written.locations.get(loc.id.dec) === todayN) loc.checkedDay = todayN;
        else {
          if (this.written.functions.get(loc.fnId.dec) !== todayN) {
            contribution.dict.push({
              table: 'functions',
              key: loc.fnId.dec,
              line: `${loc.fnId.dec}\t${tsvEscape(f.name)}\t${tsvEscape(f.systemName)}\t${tsvEscape(f.filename)}\t${f.startLine >>> 0}\t${today}`,
            });
          }
          contribution.dict.push({ table: 'locations', key: loc.id.dec, line: `${loc.id.dec}\t${loc.fnId.dec}\t${f.line >>> 0}\t${today}` });
        }
      }
      byFrame.set(frame, loc);
      return loc;
    };

    const labelsRaw = new Map<string, Id64>();
    const labelsId = (sampleLabels: Record<string, string>): Id64 => {
      // Cheap per-profile memo on the labels as given; the full path sorts and validates.
      let raw = '';
      for (const k in sampleLabels) raw += `${k}\0${sampleLabels[k]}\0`;
      const known = labelsRaw.get(raw);
      if (known) return known;
      const id = labelsIdFull(sampleLabels);
      labelsRaw.set(raw, id);
      return id;
    };

    const labelsIdFull = (sampleLabels: Record<string, string>): Id64 => {
      const merged = new Map<string, string>();
      const entries = Object.entries(sampleLabels);
      if (entries.length > limits.maxSampleLabels) {
        throw new HttpError(400, 'too many labels', `a sample has ${entries.length} labels, limit ${limits.maxSampleLabels}`);
      }
      for (const [k, v] of entries) merged.set(k, v);
      for (const [k, v] of seriesEntries) merged.set(k, v);
      const sorted = sortedLabels(merged);
      const key = sorted.map(([k, v]) => `${k}\0${v}`).join('\0');
      let id = labelIds.get(key);
      if (!id) {
        for (const [k, v] of entries) checkLabel(k, v, limits, 'sample label');
        id = labelsIdOf(service, sorted);
        labelIds.set(key, id);
        const cacheKey = `${service}\0${id.dec}`;
        if (this.written.labelsets.get(cacheKey) !== todayN) {
          contribution.dict.push({
            table: 'labelsets',
            key: cacheKey,
            line: `${tsvEscape(service)}\t${id.dec}\t${tsvMap(sorted)}\t${today}`,
          });
        }
      }
      return id;
    };

    for (const sample of profile.samples) {
      const count = sample.count;
      if (!(Number.isFinite(count) && count >= 0)) {
        throw new HttpError(400, 'malformed profile', `sample count ${String(count)} is not a non-negative number`);
      }
      if (count === 0) continue;
      let frames = sample.frames;
      if (frames.length > limits.maxStackDepth) {
        // Keep the root side, where the flame graph's shape comes from, and say so at the leaf.
        frames = [TRUNCATED, ...frames.slice(frames.length - (limits.maxStackDepth - 1))];
        truncated++;
      }
      if (frames.length === 0) frames = [NO_FRAMES];
      const locs: KnownLoc[] = new Array(frames.length);
      const h = new Fnv64();
      for (let i = 0; i < frames.length; i++) {
        const l = locationId(frames[i]!);
        locs[i] = l;
        h.id(l.id);
      }
      const stack = h.digest();
      if (!stacks.has(stack.dec)) {
        stacks.add(stack.dec);
        if (this.written.stacks.get(stack.dec) !== todayN) {
          contribution.dict.push({
            table: 'stacks',
            key: stack.dec,
            line: `${stack.dec}\t[${locs.map((l) => l.id.dec).join(',')}]\t${today}`,
          });
        }
        if (!this.resolver.hasStack(stack.dec)) this.resolver.setStack(stack.dec, locs.map((l) => l.idx));
      }
      const labels = labelsId(sample.labels);
      const rowKey = `${labels.dec}:${stack.dec}`;
      const row = rows.get(rowKey);
      if (row) row.value += count;
      else rows.set(rowKey, { labels, stack, value: count });
      total += count;
    }

    const tsText = String(ts / 1000);
    const svc = tsvEscape(service);
    for (const r of rows.values()) {
      // kiln_samples.value is UInt32; one profile's count for one stack never comes close.
      contribution.lines.samples.push(`${svc}\t${tsText}\t${r.labels.dec}\t${r.stack.dec}\t${Math.min(r.value, 0xffffffff)}`);
    }
    contribution.lines.profiles.push(
      `${svc}\t${tsText}\t${tsvMap(seriesEntries.sort((a, b) => (a[0] < b[0] ? -1 : 1)))}\t${Math.max(0, Math.round(profile.durationNs))}\t` +
        `${Math.max(0, Math.round(profile.periodNs))}\t${total}\t${rows.size}\t${tsvEscape(input.source)}`,
    );

    const response: IngestResponse = {
      service,
      labels: series,
      time: ts,
      format: input.format,
      samples: total,
      rows: rows.size,
      stacks: stacks.size,
      newStacks: contribution.dict.filter((d) => d.table === 'stacks').length,
      truncatedStacks: truncated,
    };
    return { contribution, response };
  }

  private add(c: Contribution): Promise<void> {
    const incoming = c.lines.samples.length + c.dict.length;
    const pending = (this.batch?.rows ?? 0) + this.inFlightRows;
    if (pending + incoming > this.limits.maxPendingRows) {
      throw new HttpError(503, 'ingest backlog full', `${pending} rows are waiting for the store; retry later`);
    }
    const b = (this.batch ??= newBatch());
    for (const t of FLUSH_ORDER) for (const l of c.lines[t]) b.lines[t].push(l);
    for (const d of c.dict) {
      if (b.keys[d.table].has(d.key)) continue;
      b.keys[d.table].add(d.key);
      b.lines[d.table].push(d.line);
    }
    b.rows += incoming;
    this.schedule();
    return b.promise;
  }

  private schedule(): void {
    if (this.flushing || !this.batch) return;
    if (this.batch.rows >= this.maxBatchRows) {
      this.startFlush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.startFlush();
    }, this.maxDelayMs);
  }

  private startFlush(): void {
    if (this.flushing || !this.batch) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const b = this.batch;
    this.batch = undefined;
    this.inFlightRows = b.rows;
    this.flushing = this.write(b).finally(() => {
      this.flushing = undefined;
      this.inFlightRows = 0;
      // Whatever arrived during the INSERTs has waited long enough: go at once.
      if (this.batch) this.startFlush();
    });
  }

  private async write(b: Batch): Promise<void> {
    try {
      for (const t of FLUSH_ORDER) await this.store.insertTsv(t, COLUMNS[t], b.lines[t]);
      const today = dayNumber(this.now());
      for (const t of ['functions', 'locations', 'stacks', 'labelsets'] as const) {
        for (const k of b.keys[t]) this.written[t].set(k, today);
      }
      b.resolve();
    } catch (e) {
      b.reject(e);
    }
  }

  /** Writes whatever is pending now (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.batch || this.flushing) {
      if (!this.flushing) this.startFlush();
      await this.flushing?.catch(() => {});
    }
  }
}

/**
 * The ids, exported so other writers (the bench's bulk loader) derive exactly
 * what ingest does. Changing any of them changes every id in the store.
 */
export function functionIdOf(f: Frame): Id64 {
  return new Fnv64().string(f.name).string(f.systemName).string(f.filename).u32(f.startLine).digest();
}

export function locationIdOf(functionId: Id64, line: number): Id64 {
  return new Fnv64().id(functionId).u32(line).digest();
}

/** Over the location ids leaf first, as stored in kiln_stacks.location_ids. */
export function stackIdOf(locations: Id64[]): Id64 {
  const h = new Fnv64();
  for (const l of locations) h.id(l);
  return h.digest();
}

/** Series labels win over sample labels of the same name; pairs sorted by name. */
export function mergedLabels(sample: Record<string, string>, series: Record<string, string>): [string, string][] {
  const merged = new Map<string, string>(Object.entries(sample));
  for (const [k, v] of Object.entries(series)) merged.set(k, v);
  return sortedLabels(merged);
}

function sortedLabels(m: Map<string, string>): [string, string][] {
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function labelsIdOf(service: string, sorted: [string, string][]): Id64 {
  const h = new Fnv64().string(service);
  for (const [k, v] of sorted) h.string(k).string(v);
  return h.digest();
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Every waiter awaits the promise; this keeps a batch nobody awaits (all its
  // requests aborted) from surfacing as an unhandled rejection.
  promise.catch(() => {});
  return {
    lines: { functions: [], locations: [], stacks: [], labelsets: [], samples: [], profiles: [] },
    keys: { functions: new Set(), locations: new Set(), stacks: new Set(), labelsets: new Set() },
    rows: 0,
    promise,
    resolve,
    reject,
  };
}

function clampFrame(f: Frame, max: number): Frame {
  if (f.name.length <= max && f.systemName.length <= max && f.filename.length <= max) return f;
  return { ...f, name: f.name.slice(0, max), systemName: f.systemName.slice(0, max), filename: f.filename.slice(0, max) };
}

const TRUNCATED: Frame = { name: SYNTHETIC.truncated, systemName: SYNTHETIC.truncated, filename: '', startLine: 0, line: 0 };
const NO_FRAMES: Frame = { name: SYNTHETIC.noPython, systemName: SYNTHETIC.noPython, filename: '', startLine: 0, line: 0 };
