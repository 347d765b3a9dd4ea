/**
 * A read pprof (pprof-read.ts) -> the rows Kiln stores, with the ids of
 * ids.ts computed straight from the profile's bytes:
 *
 * - a function's id is hashed once per distinct (name, system name, file)
 *   string triple of the profile; the hash state after the strings is kept,
 *   so functions that differ only in start line, and every location of a
 *   function (function id, then the line), cost a few byte steps each;
 * - a stack's id is FNV over its location ids, leaf first;
 * - label sets are read once per distinct set of string indices.
 *
 * Strings are decoded only for rows actually written (dictionary rows this
 * worker has not written today) and for labels. Non-ASCII or over-long
 * symbols take the exact slow path of ids.ts (decode, cut, re-encode), so the
 * ids are the same whichever way they were computed.
 *
 * Every loop is bounded by the body's size, and the work that indirection
 * could multiply (a 64 KiB name shared by thousands of functions, thousands
 * of label sets sharing long values, a location with 20,000 inline lines
 * referenced on every sample) is capped by explicit budgets that answer 413.
 */

import type { IngestResponse } from './api.js';
import { Fnv64, dec64 } from '../profile/hash.js';
import { functionIdOf, labelsIdOf, sortedLabels } from '../profile/ids.js';
import { HttpError, checkLabel, type Limits } from './limits.js';
import type { PprofView } from './pprof-read.js';
import { NATIVE_MAGIC, unescapeField } from '../profile/native.js';
import type { KnownStacks } from './known.js';
import { RowWriter } from './rowbinary.js';
import { tsvEscape, tsvMap } from './tsv.js';
import { SYNTHETIC } from '../profile/profile.js';
import { CPU_TYPE_ID } from '../profile/profile-type.js';
import { seriesOf, type SampleTypeConfig } from './profile-types.js';

export type DictTable = 'functions' | 'locations' | 'stacks' | 'labelsets';
export const DICT_TABLES: readonly DictTable[] = ['functions', 'locations', 'stacks', 'labelsets'];

export interface RowsInput {
  service: string;
  /** Query-string labels (host, pid, ...); they win over a sample label of the same name. */
  series: Record<string, string>;
  /** Overrides the profile's own start time (Unix ms). */
  timeMs?: number;
  /** The period when the profile has none of its own (Pyroscope's sampleRate). */
  periodNs?: number;
  /** Overrides the profile's duration (Pyroscope's from/until). */
  durationNs?: number;
  source: string;
  /** The profile name of every series (the push's __name__ label); by default it follows from the sample types. */
  name?: string;
  /** pyroscope-go's sample_type_config: which sample types to store, and their display names. */
  sampleTypeConfig?: SampleTypeConfig;
  format: IngestResponse['format'];
  /** The idempotency key as stored (UInt128, decimal). */
  key: string;
  now: number;
}

export interface Rows {
  /** kiln_ingest rows (RowBinary, rowbinary.ts): one per (stack, label set), then the profile's own row last. */
  data: Uint8Array;
  dataRows: number;
  /** Dictionary rows this worker has not written today, per table (TabSeparated, may be empty). */
  dict: Record<DictTable, string>;
  dictRows: number;
  /**
   * Native form only, as [lo, hi, lo, hi, ...]: the stacks this push defines
   * (S records), and the ones it counts without defining that this worker
   * does not know (ingest checks those in the store before taking the push).
   */
  definedStacks: Uint32Array;
  unknownStacks: Uint32Array;
  response: IngestResponse;
}

/** Fault injection for tests. */
export interface Faults {
  /** Data rows of this service are cut short: the committer refuses them before they are logged (500). */
  malformedService?: string;
  /** Dictionary rows of this service carry a date the engine refuses: logged and acknowledged, then refused by the store. */
  poisonService?: string;
}

/**
 * Ids seen in one profile: (a, b, c, d) int32 keys -> their index in order of
 * first sight. Open addressing over typed arrays, so the hot loops build no
 * string keys.
 */
export class KeyTable {
  private keys: Int32Array;
  private slots: Int32Array;
  size = 0;
  constructor(capacity = 1024) {
    const n = 1 << Math.ceil(Math.log2(Math.max(16, capacity * 2)));
    this.slots = new Int32Array(n);
    this.keys = new Int32Array(n * 2);
  }

  /** The index of the key, adding it if new (then `added` is true until the next call). */
  added = false;
  index(a: number, b: number, c: number, d: number): number {
    if ((this.size + 1) * 2 > this.slots.length) this.grow();
    const mask = this.slots.length - 1;
    let i = (Math.imul(a ^ Math.imul(b, 0x9e3779b1) ^ Math.imul(c, 0x85ebca6b) ^ Math.imul(d, 0xc2b2ae35), 0x27d4eb2f) >>> 0) & mask;
    const k = this.keys;
    for (;;) {
      const at = this.slots[i]!;
      if (at === 0) break;
      const j = (at - 1) * 4;
      if (k[j] === (a | 0) && k[j + 1] === (b | 0) && k[j + 2] === (c | 0) && k[j + 3] === (d | 0)) {
        this.added = false;
        return at - 1;
      }
      i = (i + 1) & mask;
    }
    const idx = this.size++;
    if (idx * 4 + 4 > k.length) {
      const next = new Int32Array(k.length * 2);
      next.set(k);
      this.keys = next;
    }
    this.keys.set([a, b, c, d], idx * 4);
    this.slots[i] = idx + 1;
    this.added = true;
    return idx;
  }

  private grow(): void {
    const old = this.slots;
    const n = old.length * 2;
    this.slots = new Int32Array(n);
    const mask = n - 1;
    const k = this.keys;
    for (let idx = 0; idx < this.size; idx++) {
      const j = idx * 4;
      let i = (Math.imul(k[j]! ^ Math.imul(k[j + 1]!, 0x9e3779b1) ^ Math.imul(k[j + 2]!, 0x85ebca6b) ^ Math.imul(k[j + 3]!, 0xc2b2ae35), 0x27d4eb2f) >>> 0) & mask;
      while (this.slots[i] !== 0) i = (i + 1) & mask;
      this.slots[i] = idx + 1;
    }
  }

  /** Key word w (0-3) of entry idx. */
  key(idx: number, w: number): number {
    return this.keys[idx * 4 + w]!;
  }
}

/** A profile's kiln_ingest sample rows: counts summed per (label set, stack). */
class SampleRows {
  private readonly table = new KeyTable(512);
  private readonly values: number[] = [];

  add(labelsLo: number, labelsHi: number, stackLo: number, stackHi: number, count: number): void {
    const i = this.table.index(labelsLo, labelsHi, stackLo, stackHi);
    if (this.table.added) this.values.push(count);
    else {
      const v = this.values[i]! + count;
      if (v > Number.MAX_SAFE_INTEGER) throw new HttpError(400, 'bad sample value', `one stack adds up to more than ${Number.MAX_SAFE_INTEGER}`);
      this.values[i] = v;
    }
  }

  get size(): number {
    return this.table.size;
  }

  write(w: RowWriter, head: Uint8Array): void {
    const t = this.table;
    for (let i = 0; i < t.size; i++) w.sample(head, t.key(i, 0) >>> 0, t.key(i, 1) >>> 0, t.key(i, 2) >>> 0, t.key(i, 3) >>> 0, this.values[i]!);
  }
}

const UNKNOWN = '[unknown]';
const NO_IDS = new Uint32Array(0);
const enc = new TextEncoder();
const dec = new TextDecoder();
const UNKNOWN_BYTES = enc.encode(UNKNOWN);

/**
 * 64-bit id -> UTC day it was last written, open addressing over typed arrays
 * (no string keys on the hot path). When three quarters full it starts over:
 * that only means rows get written once more.
 */
export class WrittenDays {
  private keysLo: Int32Array;
  private keysHi: Int32Array;
  private days: Int32Array;
  private size = 0;
  constructor(private readonly capacity: number) {
    this.keysLo = new Int32Array(capacity);
    this.keysHi = new Int32Array(capacity);
    this.days = new Int32Array(capacity);
  }

  private slot(lo: number, hi: number): number {
    const mask = this.capacity - 1;
    let i = (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 0) & mask;
    while (this.days[i] !== 0 && (this.keysLo[i] !== (lo | 0) || this.keysHi[i] !== (hi | 0))) i = (i + 1) & mask;
    return i;
  }

  /** The day it was written, or 0. */
  get(lo: number, hi: number): number {
    return this.days[this.slot(lo, hi)]!;
  }

  /** Marks made since begin(), to take back if the profile they belong to is refused. */
  private journal: number[] | undefined;

  begin(): void {
    this.journal = [];
  }

  /** The profile's rows were handed over: keep the marks. */
  commit(): void {
    this.journal = undefined;
  }

  /** The profile was refused before its rows left: its marks never happened. */
  rollback(): void {
    const j = this.journal;
    this.journal = undefined;
    if (!j) return;
    for (let k = j.length - 3; k >= 0; k -= 3) this.set(j[k]!, j[k + 1]!, j[k + 2]!);
  }

  set(lo: number, hi: number, day: number): void {
    this.journal?.push(lo, hi, this.get(lo, hi));
    let i = this.slot(lo, hi);
    if (this.days[i] === 0) {
      if (this.size >= (this.capacity * 3) / 4) {
        this.clear();
        i = this.slot(lo, hi);
      }
      this.size++;
    }
    this.keysLo[i] = lo;
    this.keysHi[i] = hi;
    this.days[i] = day;
  }

  clear(): void {
    this.days.fill(0);
    this.size = 0;
  }
}

/** A function of the profile as hashed: its id and (when it must be written) its text. */
interface Fn {
  lo: number;
  hi: number;
  /** Decimal id, computed when a row needs it. */
  dec: string | undefined;
  /** Hash state after the function id, so a location's id is one u32 away. */
  loc: Fnv64;
  startLine: number;
  name?: string;
  systemName?: string;
  filename?: string;
  /** Index in the view's function arrays, or -1 for synthetic frames. */
  index: number;
}

/**
 * Decimal text of ids seen recently: converting a 64-bit id to decimal costs
 * more than hashing the stack, and a fleet sends the same stacks every period.
 */
class DecimalCache {
  private map = new Map<number, { lo: number; hi: number; dec: string }>();
  constructor(private readonly capacity: number) {}
  get(lo: number, hi: number): string {
    // 53 bits of the id as the key; the entry holds all 64 to confirm.
    const key = hi * 2097152 + (lo >>> 11);
    const e = this.map.get(key);
    if (e && e.lo === lo && e.hi === hi) return e.dec;
    const dec = dec64(hi, lo);
    if (this.map.size >= this.capacity) this.map = new Map();
    this.map.set(key, { lo, hi, dec });
    return dec;
  }
}

/** Per worker: what it wrote today, by table. Ids are 64-bit, keyed as two halves. */
export class RowBuilder {
  private readonly written: Record<DictTable, WrittenDays>;
  private readonly decs = new DecimalCache(500_000);
  /** Decimal id text -> its halves, for the native form. */
  private readonly parsedIds = new Map<string, { lo: number; hi: number; dec: string }>();
  constructor(
    private readonly limits: Limits,
    private readonly retentionDays: number,
    private readonly faults: Faults = {},
    scale = 1,
    /** Stacks the process knows are stored or logged (known.ts); without it, only this builder's own. */
    private readonly known?: KnownStacks,
  ) {
    this.written = {
      functions: new WrittenDays(1 << Math.round(18 + Math.log2(scale))),
      locations: new WrittenDays(1 << Math.round(20 + Math.log2(scale))),
      stacks: new WrittenDays(1 << Math.round(20 + Math.log2(scale))),
      labelsets: new WrittenDays(1 << Math.round(17 + Math.log2(scale))),
    };
  }

  /** Forget what was written (a batch holding some of it was dropped): the next profiles write it again. */
  forget(): void {
    for (const t of DICT_TABLES) this.written[t].clear();
  }

  /**
   * The rows of one profile. What it marks as written is taken back if the
   * profile is refused halfway (a bad label on its last sample): those rows
   * never reach the store, and the next profile must write them.
   */
  build(v: PprofView, input: RowsInput): Rows {
    return this.journaled(() => this.buildRows(v, input));
  }

  private journaled(fn: () => Rows): Rows {
    for (const t of DICT_TABLES) this.written[t].begin();
    try {
      const rows = fn();
      for (const t of DICT_TABLES) this.written[t].commit();
      return rows;
    } catch (e) {
      for (const t of DICT_TABLES) this.written[t].rollback();
      throw e;
    }
  }

  private buildRows(v: PprofView, input: RowsInput): Rows {
    const limits = this.limits;
    const { service, now } = input;
    const buf = v.buf;
    const strStart = v.strStart;
    const strEnd = v.strEnd;

    // --- time, period, duration ---
    const ts = this.checkedTime(input.timeMs ?? (v.timeNanos > 0n ? Number(v.timeNanos / 1_000_000n) : now), now);
    const duration = input.durationNs ?? v.durationNanos;

    const todayDay = Math.floor(now / 86_400_000);
    const today = new Date(todayDay * 86_400_000).toISOString().slice(0, 10);
    const svc = tsvEscape(service);
    const out: Record<DictTable, string[]> = { functions: [], locations: [], stacks: [], labelsets: [] };

    // --- the series: one per profile type the sample types hold (profile-types.ts) ---
    const specs = seriesOf(
      {
        sampleTypes: v.sampleTypeType.map((t, i) => ({ type: this.str(v, t), unit: this.str(v, v.sampleTypeUnit[i]!) })),
        periodType: { type: this.str(v, v.periodTypeType), unit: this.str(v, v.periodTypeUnit) },
        period: v.period,
      },
      {
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.sampleTypeConfig !== undefined ? { config: input.sampleTypeConfig } : {}),
        ...(input.periodNs !== undefined ? { fallbackPeriodNs: input.periodNs } : {}),
      },
    );
    if (specs.length === 0) {
      throw new HttpError(400, 'no profile type', 'the sample_type_config names none of the profile\'s sample types');
    }
    const nSpecs = specs.length;
    const groups = specs.map((spec) => ({ spec, rows: new SampleRows(), total: 0 }));
    const sampleValues = new Array<number>(nSpecs).fill(0);

    // --- functions: hashed once per distinct string triple ---
    const fnIndex = indexOf(v.fnId);
    const tripleState = new Map<string, { state: Fnv64; name: string | undefined; sys: string | undefined; file: string | undefined }>();
    // Names of distinct functions: each may become a dictionary row, so a long
    // name shared by thousands of functions (a few bytes of pprof each) counts
    // once per function.
    let symbolBytes = 0;
    const symbolBudget = 2 * limits.maxProfileBytes;
    const fnCache: (Fn | undefined)[] = new Array(v.fnId.length);
    const writeFn = (f: Fn): void => {
      if (this.written.functions.get(f.lo, f.hi) === todayDay) return;
      this.written.functions.set(f.lo, f.hi, todayDay);
      if (f.name === undefined) {
        const i = f.index;
        const sys = this.str(v, v.fnSystemName[i]!);
        const name = this.str(v, v.fnName[i]!) || sys || UNKNOWN;
        f.name = name;
        f.systemName = sys || name;
        f.filename = this.str(v, v.fnFilename[i]!);
      }
      f.dec ??= dec64(f.hi, f.lo);
      out.functions.push(`${f.dec}\t${tsvEscape(f.name)}\t${tsvEscape(f.systemName!)}\t${tsvEscape(f.filename!)}\t${f.startLine >>> 0}\t${today}`);
    };
    const fnOf = (i: number): Fn => {
      let f = fnCache[i];
      if (f) return f;
      const nameIdx = v.fnName[i]!;
      const sysIdx = v.fnSystemName[i]!;
      const fileIdx = v.fnFilename[i]!;
      const tkey = `${nameIdx},${sysIdx},${fileIdx}`;
      let t = tripleState.get(tkey);
      const nameLen = strEnd[nameIdx]! - strStart[nameIdx]!;
      const sysLen = strEnd[sysIdx]! - strStart[sysIdx]!;
      const fileLen = strEnd[fileIdx]! - strStart[fileIdx]!;
      symbolBytes += nameLen + sysLen + fileLen;
      if (symbolBytes > symbolBudget) {
        throw new HttpError(413, 'profile too large', `its functions' names add up to more than ${symbolBudget} bytes`);
      }
      if (!t) {
        const max = limits.maxSymbolLength;
        const fast =
          nameLen <= max &&
          sysLen <= max &&
          fileLen <= max &&
          isAscii(buf, strStart[nameIdx]!, strEnd[nameIdx]!) &&
          isAscii(buf, strStart[sysIdx]!, strEnd[sysIdx]!) &&
          isAscii(buf, strStart[fileIdx]!, strEnd[fileIdx]!);
        const h = new Fnv64();
        if (fast) {
          // The byte view of the fallbacks in profileFromPprof: no name -> system name -> "[unknown]".
          if (nameLen > 0) h.bytes(buf, strStart[nameIdx]!, strEnd[nameIdx]!);
          else if (sysLen > 0) h.bytes(buf, strStart[sysIdx]!, strEnd[sysIdx]!);
          else h.bytes(UNKNOWN_BYTES);
          h.byte(0);
          if (sysLen > 0) h.bytes(buf, strStart[sysIdx]!, strEnd[sysIdx]!);
          else if (nameLen > 0) h.bytes(buf, strStart[nameIdx]!, strEnd[nameIdx]!);
          else h.bytes(UNKNOWN_BYTES);
          h.byte(0);
          h.bytes(buf, strStart[fileIdx]!, strEnd[fileIdx]!).byte(0);
          t = { state: h, name: undefined, sys: undefined, file: undefined };
        } else {
          const sys0 = this.str(v, sysIdx);
          const name = (this.str(v, nameIdx) || sys0 || UNKNOWN).slice(0, max);
          const sys = (sys0 || name).slice(0, max);
          const file = this.str(v, fileIdx).slice(0, max);
          h.string(name).string(sys).string(file);
          t = { state: h, name, sys, file };
        }
        tripleState.set(tkey, t);
      }
      const startLine = v.fnStartLine[i]!;
      const id = new Fnv64().from(t.state).u32(startLine);
      const lo = id.lo;
      const hi = id.hi;
      f = {
        lo,
        hi,
        dec: undefined,
        loc: new Fnv64().u32(lo).u32(hi),
        startLine,
        name: t.name,
        systemName: t.sys,
        filename: t.file,
        index: i,
      };
      fnCache[i] = f;
      return f;
    };
    const syntheticFns = new Map<string, Fn>();
    const syntheticFn = (name: string, filename = ''): Fn => {
      const key = `${name}\0${filename}`;
      let f = syntheticFns.get(key);
      if (!f) {
        const cut = name.slice(0, limits.maxSymbolLength);
        const file = filename.slice(0, limits.maxSymbolLength);
        const id = functionIdOf({ name: cut, systemName: cut, filename: file, startLine: 0 });
        f = { lo: id.lo, hi: id.hi, dec: id.dec, loc: new Fnv64().id(id), startLine: 0, name: cut, systemName: cut, filename: file, index: -1 };
        syntheticFns.set(key, f);
      }
      return f;
    };

    // --- locations: each pprof location -> its frames' (function, line), innermost first ---
    const locIndex = indexOf(v.locId);
    const mapIndex = indexOf(v.mappingId);
    // Per pprof location: range into the frame arrays.
    const locFrameStart = new Int32Array(v.locId.length).fill(-1);
    const locFrameEnd = new Int32Array(v.locId.length);
    const frameFn: Fn[] = [];
    const frameLine: number[] = [];
    const frameLo: number[] = [];
    const frameHi: number[] = [];
    const scratch = new Fnv64();
    const pushFrame = (f: Fn, line: number): void => {
      const h = scratch.from(f.loc).u32(line);
      frameFn.push(f);
      frameLine.push(line);
      frameLo.push(h.lo);
      frameHi.push(h.hi);
    };
    const unknownLocFrame = frameFn.length;
    pushFrame(syntheticFn(UNKNOWN), 0);
    const framesOf = (pprofId: number): number => {
      const li = locIndex(pprofId);
      if (li < 0) return -1;
      if (locFrameStart[li]! >= 0) return li;
      locFrameStart[li] = frameFn.length;
      const ls = v.locLineStart[li]!;
      const le = v.locLineEnd[li]!;
      if (ls === le) {
        // An unsymbolized native address: keep it visible and distinct.
        const addr = ((BigInt(v.locAddrHi[li]!) << 32n) | BigInt(v.locAddrLo[li]!)).toString(16);
        const mi = mapIndex(v.locMapping[li]!);
        pushFrame(syntheticFn(`0x${addr}`, mi >= 0 ? this.str(v, v.mappingFilename[mi]!) : ''), 0);
      } else {
        for (let l = ls; l < le; l++) {
          const fi = fnIndex(v.lineFunction[l]!);
          pushFrame(fi >= 0 ? fnOf(fi) : syntheticFn(UNKNOWN), v.lineNo[l]!);
        }
      }
      locFrameEnd[li] = frameFn.length;
      return li;
    };

    // --- label sets ---
    const series = Object.entries(input.series);
    const labelIds = new Map<string, { lo: number; hi: number; dec: string }>();
    let labelBytes = 0;
    const labelBudget = limits.maxProfileBytes;
    const labelsOf = (s: number): { lo: number; hi: number; dec: string } => {
      const a = v.sampleLabStart[s]!;
      const b = v.sampleLabEnd[s]!;
      let key = '';
      for (let j = a; j < b; j++) key += `${v.labelKey[j]},${v.labelStr[j]},${v.labelNum[j]},${v.labelNumUnit[j]};`;
      const known = labelIds.get(key);
      if (known) return known;
      const labels = new Map<string, string>();
      let n = 0;
      for (let j = a; j < b; j++) {
        const k = this.str(v, v.labelKey[j]!);
        if (!k) continue;
        const isNum = v.labelStr[j] === 0 && (v.labelNum[j] !== 0 || v.labelNumUnit[j] !== 0);
        const value = isNum ? String(v.labelNum[j]) : this.str(v, v.labelStr[j]!);
        const prev = labels.get(k);
        labels.set(k, prev === undefined ? value : `${prev},${value}`);
        if (++n > limits.maxSampleLabels) {
          throw new HttpError(400, 'too many labels', `a sample has more than ${limits.maxSampleLabels} labels, the limit`);
        }
      }
      for (const [k, val] of labels) checkLabel(k, val, limits, 'sample label');
      for (const [k, val] of series) labels.set(k, val);
      const sorted = sortedLabels(labels);
      for (const [k, val] of sorted) labelBytes += k.length + val.length;
      if (labelBytes > labelBudget) {
        throw new HttpError(413, 'profile too large', `its distinct label sets add up to more than ${labelBudget} characters`);
      }
      const id = labelsIdOf(service, sorted);
      if (this.written.labelsets.get(id.lo, id.hi) !== todayDay) {
        this.written.labelsets.set(id.lo, id.hi, todayDay);
        out.labelsets.push(`${svc}\t${id.dec}\t${tsvMap(sorted)}\t${today}`);
      }
      labelIds.set(key, id);
      return id;
    };

    // --- samples ---
    const maxDepth = limits.maxStackDepth;
    const frameBudget = limits.maxProfileFrames;
    let frames = 0;
    let truncated = 0;
    const stacksSeen = new Set<string>();
    let newStacks = 0;
    const truncatedFn = syntheticFn(SYNTHETIC.truncated);
    const noFramesFn = syntheticFn(SYNTHETIC.noPython);
    // The stack being hashed, leaf first: frame indices (-1 the cut mark, -2 no frames).
    const stack: number[] = [];
    const refs: number[] = [];
    const cutLoc = new Fnv64().from(truncatedFn.loc).u32(0);
    const noFramesLoc = new Fnv64().from(noFramesFn.loc).u32(0);
    const h = new Fnv64();
    const nSamples = v.sampleLocStart.length;
    for (let s = 0; s < nSamples; s++) {
      // This sample's value in each series; a sample with none is skipped before its stack is hashed.
      const vs = v.sampleValStart[s]!;
      let any = false;
      for (let k = 0; k < nSpecs; k++) {
        const spec = specs[k]!;
        const x = spec.index < 0 ? 1 : v.values[vs + spec.index]!;
        let value: number;
        if (spec.mode === 'count') value = x;
        else if (spec.mode === 'timed') value = x > 0 ? Math.max(1, Math.round((x * spec.scale) / spec.periodNs)) : 0;
        else value = x > 0 ? Math.round(x * spec.scale) : 0;
        if (!(value > 0)) value = 0;
        else if (spec.mode !== 'value' && value > 0xffffffff) {
          throw new HttpError(400, 'bad sample value', `sample ${s} counts ${value} samples, more than 4294967295`);
        } else if (value > Number.MAX_SAFE_INTEGER) {
          throw new HttpError(400, 'bad sample value', `sample ${s} has value ${value}, more than ${Number.MAX_SAFE_INTEGER}`);
        }
        sampleValues[k] = value;
        if (value > 0) any = true;
      }
      if (!any) continue;

      // Frames leaf first; past maxDepth keep the root side and mark the cut at the leaf.
      const ls = v.sampleLocStart[s]!;
      const le = v.sampleLocEnd[s]!;
      // Location ids resolved once per sample; depth from their memoized frame ranges.
      refs.length = 0;
      let depth = 0;
      for (let j = ls; j < le; j++) {
        const li = framesOf(v.locIds[j]!);
        refs.push(li);
        depth += li < 0 ? 1 : locFrameEnd[li]! - locFrameStart[li]!;
      }
      stack.length = 0;
      let skip = depth > maxDepth ? depth - (maxDepth - 1) : 0;
      if (skip > 0) {
        truncated++;
        stack.push(-1);
      }
      for (let j = 0; j < refs.length; j++) {
        const li = refs[j]!;
        const a = li < 0 ? unknownLocFrame : locFrameStart[li]!;
        const b = li < 0 ? unknownLocFrame + 1 : locFrameEnd[li]!;
        if (skip >= b - a) {
          skip -= b - a;
          continue;
        }
        for (let f = a + skip; f < b; f++) stack.push(f);
        skip = 0;
      }
      if (stack.length === 0) stack.push(-2);
      frames += stack.length;
      if (frames > frameBudget) {
        throw new HttpError(413, 'profile too large', `more than ${frameBudget} frames in all its stacks`);
      }
      h.reset();
      for (let i = 0; i < stack.length; i++) {
        const f = stack[i]!;
        if (f >= 0) h.u64(frameLo[f]!, frameHi[f]!);
        else {
          const l = f === -1 ? cutLoc : noFramesLoc;
          h.u64(l.lo, l.hi);
        }
      }
      const stackLo = h.lo;
      const stackHi = h.hi;
      const stackDec = this.decs.get(stackLo, stackHi);
      if (!stacksSeen.has(stackDec)) {
        stacksSeen.add(stackDec);
        if (this.written.stacks.get(stackLo, stackHi) !== todayDay) {
          this.written.stacks.set(stackLo, stackHi, todayDay);
          newStacks++;
          out.stacks.push(`${stackDec}\t[${this.writeStackLocations(stack, frameFn, frameLine, frameLo, frameHi, truncatedFn, noFramesFn, writeFn, out.locations, todayDay, today)}]\t${today}`);
        }
      }
      const labels = labelsOf(s);
      for (let k = 0; k < nSpecs; k++) {
        const value = sampleValues[k]!;
        if (value === 0) continue;
        const g = groups[k]!;
        g.rows.add(labels.lo, labels.hi, stackLo, stackHi, value);
        g.total += value;
      }
    }

    return this.finish(
      out,
      groups.map((g) => ({ type: g.spec.type, rows: g.rows, period: g.spec.periodNs, total: g.total })),
      { service, ts, duration, stacks: stacksSeen.size, newStacks, truncated },
      input,
    );
  }

  /** The rows of a profile in Kiln's native form (profile/native.ts); marks taken back on refusal as build() does. */
  buildNative(text: string, input: RowsInput): Rows {
    return this.journaled(() => this.buildNativeRows(text, input));
  }

  private buildNativeRows(text: string, input: RowsInput): Rows {
    const limits = this.limits;
    const { service, now } = input;
    const bad = (line: number, why: string): HttpError => new HttpError(400, 'malformed native profile', `line ${line}: ${why}`);
    const firstEnd = text.indexOf('\n');
    if ((firstEnd < 0 ? text : text.slice(0, firstEnd)) !== NATIVE_MAGIC) throw bad(1, `expected "${NATIVE_MAGIC}"`);
    const todayDay = Math.floor(now / 86_400_000);
    const today = new Date(todayDay * 86_400_000).toISOString().slice(0, 10);
    const svc = tsvEscape(service);
    const out: Record<DictTable, string[]> = { functions: [], locations: [], stacks: [], labelsets: [] };
    const series = Object.entries(input.series);
    const labelIds: { lo: number; hi: number; dec: string }[] = [];
    const rows = new SampleRows();
    const stacks = new KeyTable(512);
    const defined = new KeyTable(16);
    let period = 0;
    let duration = 0;
    let startMs = 0;
    let truncated = 0;
    let total = 0;
    let newStacks = 0;
    let frames = 0;
    let labelBytes = 0;
    let symbolBytes = 0;
    let samples = 0;
    const num = (x: string | undefined, line: number, what: string, max = Number.MAX_SAFE_INTEGER): number => {
      const n = x !== undefined && x.length > 0 && x.length <= 16 && isDigits(x) ? Number(x) : NaN;
      if (!(n >= 0 && n <= max)) throw bad(line, `${what} is not a whole number from 0 to ${max}`);
      return n;
    };
    const parsed = this.parsedIds;
    const id = (x: string | undefined, line: number, what: string): { lo: number; hi: number; dec: string } => {
      if (x === undefined) throw bad(line, `${what} is missing`);
      // The same ids come back in every profile: parse each once.
      const known = parsed.get(x);
      if (known) return known;
      if (x.length === 0 || x.length > 20 || !isDigits(x) || (x.length > 1 && x[0] === '0')) throw bad(line, `${what} is not a UInt64`);
      const v = BigInt(x);
      if (v > 0xffffffffffffffffn) throw bad(line, `${what} is not a UInt64`);
      const out = { lo: Number(v & 0xffffffffn), hi: Number(v >> 32n), dec: x };
      if (parsed.size > 1_000_000) parsed.clear();
      parsed.set(x, out);
      return out;
    };
    // Counts (C) are nearly every line of a fleet's steady-state pushes: they are read in
    // place (ids straight into two 32-bit halves, no strings); the rest are split.
    const u64 = { lo: 0, hi: 0 };
    let n = 1;
    for (let start = firstEnd < 0 ? text.length : firstEnd + 1; start < text.length; ) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      n++;
      const lineStart = start;
      start = end + 1;
      if (end === lineStart) continue;
      if (text.charCodeAt(lineStart) === 67 /* C */ && text.charCodeAt(lineStart + 1) === 9) {
        if (++samples > limits.maxSamples) throw new HttpError(400, 'too many samples', `more than ${limits.maxSamples} samples, the limit`);
        const a = lineStart + 2;
        const b = fieldEnd(text, a, end);
        if (!readU64(text, a, b, u64)) throw bad(n, a === b ? 'stack id is missing' : 'stack id is not a UInt64');
        const c = fieldEnd(text, b + 1, end);
        const set = b < end ? readSmall(text, b + 1, c, Number.MAX_SAFE_INTEGER) : -1;
        if (set < 0) throw bad(n, `label set number is not a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`);
        const labels = labelIds[set];
        if (labels === undefined) throw bad(n, `label set ${set} is not defined before it is used`);
        const count = c < end ? readSmall(text, c + 1, fieldEnd(text, c + 1, end), 0xffffffff) : -1;
        if (count < 0) throw bad(n, 'count is not a whole number from 0 to 4294967295');
        if (count === 0) continue;
        stacks.index(u64.lo, u64.hi, 0, 0);
        rows.add(labels.lo, labels.hi, u64.lo, u64.hi, count);
        total += count;
        continue;
      }
      const f = text.slice(lineStart, end).split('\t');
      switch (f[0]) {
        case 'P': {
          period = num(f[1], n, 'period');
          duration = num(f[2], n, 'duration');
          startMs = f[3] && f[3] !== '0' ? Math.floor(num(f[3].slice(0, -6) || '0', n, 'start')) : 0;
          truncated = num(f[4] ?? '0', n, 'truncated stacks');
          break;
        }
        case 'F': {
          const fid = id(f[1], n, 'function id');
          const name = unescapeField(f[2] ?? '');
          const systemName = unescapeField(f[3] ?? '');
          const filename = unescapeField(f[4] ?? '');
          const startLine = num(f[5], n, 'start line', 0xffffffff);
          if (name.length > limits.maxSymbolLength || systemName.length > limits.maxSymbolLength || filename.length > limits.maxSymbolLength) {
            throw bad(n, `a symbol is longer than ${limits.maxSymbolLength} characters`);
          }
          symbolBytes += name.length + systemName.length + filename.length;
          if (symbolBytes > 2 * limits.maxProfileBytes) throw new HttpError(413, 'profile too large', 'its functions are too long in all');
          const want = functionIdOf({ name, systemName, filename, startLine });
          if (want.dec !== fid.dec) throw bad(n, `function id ${fid.dec} is not the id of its fields (${want.dec})`);
          if (this.written.functions.get(fid.lo, fid.hi) !== todayDay) {
            this.written.functions.set(fid.lo, fid.hi, todayDay);
            out.functions.push(`${fid.dec}\t${tsvEscape(name)}\t${tsvEscape(systemName)}\t${tsvEscape(filename)}\t${startLine}\t${today}`);
          }
          break;
        }
        case 'L': {
          const lid = id(f[1], n, 'location id');
          const fid = id(f[2], n, 'function id');
          const ln = num(f[3], n, 'line', 0xffffffff);
          const want = new Fnv64().u32(fid.lo).u32(fid.hi).u32(ln);
          if (want.lo !== lid.lo || want.hi !== lid.hi) throw bad(n, `location id ${lid.dec} is not the id of its function and line`);
          if (this.written.locations.get(lid.lo, lid.hi) !== todayDay) {
            this.written.locations.set(lid.lo, lid.hi, todayDay);
            out.locations.push(`${lid.dec}\t${fid.dec}\t${ln}\t${today}`);
          }
          break;
        }
        case 'S': {
          const sid = id(f[1], n, 'stack id');
          const locs = (f[2] ?? '').split(',');
          if (locs.length > limits.maxStackDepth) throw bad(n, `a stack of ${locs.length} frames, more than the ${limits.maxStackDepth} allowed`);
          frames += locs.length;
          if (frames > limits.maxProfileFrames) throw new HttpError(413, 'profile too large', `more than ${limits.maxProfileFrames} frames in all its stacks`);
          const h = new Fnv64();
          const decs: string[] = new Array(locs.length);
          for (let k = 0; k < locs.length; k++) {
            const l = id(locs[k], n, 'location id');
            h.u64(l.lo, l.hi);
            decs[k] = l.dec;
          }
          if (h.lo !== sid.lo || h.hi !== sid.hi) throw bad(n, `stack id ${sid.dec} is not the id of its locations`);
          defined.index(sid.lo, sid.hi, 0, 0);
          if (this.written.stacks.get(sid.lo, sid.hi) !== todayDay) {
            this.written.stacks.set(sid.lo, sid.hi, todayDay);
            newStacks++;
            out.stacks.push(`${sid.dec}\t[${decs.join(',')}]\t${today}`);
          }
          break;
        }
        case 'X': {
          const set = num(f[1], n, 'label set number');
          if (set !== labelIds.length) throw bad(n, 'label sets are numbered 0, 1, 2, ... in order');
          if ((f.length - 2) % 2 !== 0) throw bad(n, 'labels come in name/value pairs');
          if ((f.length - 2) / 2 > limits.maxSampleLabels) throw new HttpError(400, 'too many labels', `a sample has more than ${limits.maxSampleLabels} labels, the limit`);
          const labels = new Map<string, string>();
          for (let k = 2; k < f.length; k += 2) {
            const name = unescapeField(f[k]!);
            const value = unescapeField(f[k + 1]!);
            checkLabel(name, value, limits, 'sample label');
            labels.set(name, value);
          }
          for (const [k, v] of series) labels.set(k, v);
          const sorted = sortedLabels(labels);
          for (const [k, v] of sorted) labelBytes += k.length + v.length;
          if (labelBytes > limits.maxProfileBytes) throw new HttpError(413, 'profile too large', 'its label sets are too long in all');
          const lid = labelsIdOf(service, sorted);
          if (this.written.labelsets.get(lid.lo, lid.hi) !== todayDay) {
            this.written.labelsets.set(lid.lo, lid.hi, todayDay);
            out.labelsets.push(`${svc}\t${lid.dec}\t${tsvMap(sorted)}\t${today}`);
          }
          labelIds.push(lid);
          break;
        }
        default:
          throw bad(n, `unknown record ${JSON.stringify((f[0] ?? '').slice(0, 10))}`);
      }
    }
    const ts = this.checkedTime(input.timeMs ?? (startMs > 0 ? startMs : now), now);
    // Stacks counted but not defined here: known if this worker wrote them today or the process knows them.
    const definedHere = defined.size;
    const unknown: number[] = [];
    for (let i = 0; i < stacks.size; i++) {
      const lo = stacks.key(i, 0) >>> 0;
      const hi = stacks.key(i, 1) >>> 0;
      defined.index(lo, hi, 0, 0);
      if (!defined.added) continue;
      if (this.written.stacks.get(lo, hi) === todayDay || this.known?.has(lo, hi, todayDay)) continue;
      unknown.push(lo, hi);
    }
    const definedStacks = new Uint32Array(2 * definedHere);
    const rowsOut = this.finish(
      out,
      // Kiln's agent records CPU.
      [{ type: CPU_TYPE_ID, rows, period: period > 0 ? period : (input.periodNs ?? 0), total }],
      {
        service,
        ts,
        duration: input.durationNs ?? duration,
        stacks: stacks.size,
        newStacks,
        truncated,
      },
      input,
    );
    // The S records' stacks are the first entries of `defined`; the rest were added above.
    for (let i = 0; i < definedHere; i++) {
      definedStacks[2 * i] = defined.key(i, 0) >>> 0;
      definedStacks[2 * i + 1] = defined.key(i, 1) >>> 0;
    }
    return { ...rowsOut, definedStacks, unknownStacks: Uint32Array.from(unknown) };
  }

  /** Stored to the second (kiln_samples.ts is a DateTime), within the retention window. */
  private checkedTime(startMs: number, now: number): number {
    const ts = Math.floor(startMs / 1000) * 1000;
    if (!Number.isFinite(ts) || ts < now - this.retentionDays * 86_400_000 || ts > now + 86_400_000) {
      throw new HttpError(
        400,
        'bad time range',
        `profile time ${isoOf(ts)} is outside the retention window (${this.retentionDays} days back, one day ahead); pass time= to re-time it`,
      );
    }
    return ts;
  }

  /** kiln_ingest rows (per series: its samples, then its profile row with the push's key) and the dictionary rows, as Rows. */
  private finish(
    out: Record<DictTable, string[]>,
    series: { type: string; rows: SampleRows; period: number; total: number }[],
    p: { service: string; ts: number; duration: number; stacks: number; newStacks: number; truncated: number },
    input: RowsInput,
  ): Rows {
    if (!(p.duration >= 0 && p.duration <= Number.MAX_SAFE_INTEGER)) throw new HttpError(400, 'bad duration', `duration ${p.duration} is not a non-negative number of nanoseconds`);
    const tsSeconds = p.ts / 1000;
    let rowCount = 0;
    for (const g of series) {
      if (!(g.period >= 0 && g.period <= Number.MAX_SAFE_INTEGER)) throw new HttpError(400, 'bad period', `period ${g.period} is not a non-negative number of nanoseconds`);
      rowCount += g.rows.size;
    }
    const w = new RowWriter(64 + rowCount * 120);
    const seriesSorted = Object.entries(input.series).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const g of series) {
      g.rows.write(w, RowWriter.sampleHead(p.service, g.type, tsSeconds));
      w.profile({
        service: p.service,
        type: g.type,
        tsSeconds,
        series: seriesSorted,
        durationNs: Math.round(p.duration),
        periodNs: Math.round(g.period),
        samples: g.total,
        rows: g.rows.size,
        source: input.source,
        key: input.key,
      });
    }
    if (this.faults.malformedService === p.service) w.cut(1);
    if (this.faults.poisonService === p.service) out.labelsets.push(`${tsvEscape(p.service)}\t1\t{}\tpoison`);
    const dict = {} as Record<DictTable, string>;
    let dictRows = 0;
    for (const t of DICT_TABLES) {
      dict[t] = out[t].length ? out[t].join('\n') + '\n' : '';
      dictRows += out[t].length;
    }
    const first = series[0]!;
    return {
      data: w.done(),
      dataRows: rowCount + series.length,
      dict,
      dictRows,
      definedStacks: NO_IDS,
      unknownStacks: NO_IDS,
      response: {
        service: p.service,
        labels: input.series,
        time: p.ts,
        format: input.format,
        type: first.type,
        samples: first.total,
        rows: rowCount,
        stacks: p.stacks,
        newStacks: p.newStacks,
        truncatedStacks: p.truncated,
        types: series.map((g) => ({ type: g.type, total: g.total, periodNs: Math.round(g.period) })),
      },
    };
  }

  /** A new stack's location ids for kiln_stacks, writing the locations and functions this worker has not written today. */
  private writeStackLocations(
    stack: number[],
    frameFn: Fn[],
    frameLine: number[],
    frameLo: number[],
    frameHi: number[],
    truncatedFn: Fn,
    noFramesFn: Fn,
    writeFn: (f: Fn) => void,
    locations: string[],
    todayDay: number,
    today: string,
  ): string {
    const ids: string[] = new Array(stack.length);
    for (let i = 0; i < stack.length; i++) {
      const f = stack[i]!;
      let fn: Fn;
      let line: number;
      let lo: number;
      let hi: number;
      if (f >= 0) {
        fn = frameFn[f]!;
        line = frameLine[f]!;
        lo = frameLo[f]!;
        hi = frameHi[f]!;
      } else {
        fn = f === -1 ? truncatedFn : noFramesFn;
        line = 0;
        const l = new Fnv64().from(fn.loc).u32(0);
        lo = l.lo;
        hi = l.hi;
      }
      const locDec = dec64(hi, lo);
      ids[i] = locDec;
      if (this.written.locations.get(lo, hi) !== todayDay) {
        this.written.locations.set(lo, hi, todayDay);
        writeFn(fn);
        fn.dec ??= dec64(fn.hi, fn.lo);
        locations.push(`${locDec}\t${fn.dec}\t${line >>> 0}\t${today}`);
      }
    }
    return ids.join(',');
  }

  /** String i of the table, decoded. */
  private str(v: PprofView, i: number): string {
    const a = v.strStart[i];
    if (a === undefined) return '';
    const b = v.strEnd[i]!;
    if (a === b) return '';
    return dec.decode(v.buf.subarray(a, b));
  }
}

/** Where the tab-separated field starting at `a` ends (its tab, or the line's end). */
function fieldEnd(text: string, a: number, end: number): number {
  const t = text.indexOf('\t', a);
  return t < 0 || t > end ? end : t;
}

/**
 * Decimal UInt64 text in [a, b) into `out` as two 32-bit halves, without
 * BigInt or a substring: value = value * 10 + digit on (hi, lo), each step
 * exact in a double. False unless it is 1-20 digits, no leading zero, below 2^64.
 */
function readU64(text: string, a: number, b: number, out: { lo: number; hi: number }): boolean {
  const len = b - a;
  if (len <= 0 || len > 20 || (len > 1 && text.charCodeAt(a) === 48)) return false;
  let lo = 0;
  let hi = 0;
  for (let i = a; i < b; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    const l = lo * 10 + d;
    const carry = Math.floor(l / 0x1_0000_0000);
    lo = l - carry * 0x1_0000_0000;
    hi = hi * 10 + carry;
    if (hi > 0xffffffff) return false;
  }
  out.lo = lo;
  out.hi = hi;
  return true;
}

/** A whole number of at most 16 digits in [a, b), up to max; -1 if it is not one. */
function readSmall(text: string, a: number, b: number, max: number): number {
  if (b <= a || b - a > 16) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v <= max ? v : -1;
}

function isDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function isAscii(buf: Uint8Array, a: number, b: number): boolean {
  for (let i = a; i < b; i++) if (buf[i]! >= 0x80) return false;
  return true;
}

/** pprof ids -> array index: direct when the ids are 1..n in order (every producer we know), else a Map. */
function indexOf(ids: number[]): (id: number) => number {
  let sequential = true;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== i + 1) {
      sequential = false;
      break;
    }
  }
  if (sequential) return (id) => (id >= 1 && id <= ids.length ? id - 1 : -1);
  const m = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) if (!m.has(ids[i]!)) m.set(ids[i]!, i);
  return (id) => m.get(id) ?? -1;
}

function isoOf(ms: number): string {
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : String(ms);
}
