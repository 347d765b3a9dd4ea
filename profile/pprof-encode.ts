/**
 * Profile -> pprof (profile.proto), written directly as protobuf. A producer
 * that encodes one profile per period for a long-lived source (the agent,
 * once per process per period) keeps a PprofDictionary: a stack it has
 * encoded before is written from bytes kept from last time instead of being
 * walked frame by frame, and each profile carries only the functions and
 * locations its samples use. Decoding, and the checks that go with it, are
 * in pprof.ts (by pprof-format, an independent implementation the tests
 * check this one against).
 */
import { promisify } from 'node:util';
import { gzip, gzipSync } from 'node:zlib';
import type { Frame, Profile } from './profile.js';
import { CPU_TYPE, isSampledTime } from './profile-type.js';

const gzipAsync = promisify(gzip);

/** Profiles up to this many samples are encoded and compressed at once, not on the thread pool. */
const SMALL_PROFILE_SAMPLES = 2000;

/** A stack's location ids (leaf first), the same without repeats, and its packed location_id field. */
interface StackIds {
  ids: number[];
  unique: number[];
  packed?: Buffer;
}

/**
 * Function and location ids of one source of profiles, kept across the
 * profiles it encodes. A stack met before (the same Frame[] object, as the
 * recorder hands out each period for a stack it symbolized once) costs one
 * lookup. Ids are 1-based in first-seen order, so one dictionary per
 * encoding gives a Profile the same bytes every time.
 */
export class PprofDictionary {
  private readonly stacks = new WeakMap<Frame[], StackIds>();
  private readonly frames = new WeakMap<Frame, number>();
  private readonly functionIds = new Map<string, number>();
  private readonly locationIds = new Map<string, number>();
  /** by id - 1 */
  readonly functions: Omit<Frame, 'line'>[] = [];
  readonly locations: { functionId: number; line: number }[] = [];

  /** Distinct locations known: a long-lived dictionary is replaced past a bound by its owner. */
  get size(): number {
    return this.locations.length;
  }

  stack(frames: Frame[]): StackIds {
    let known = this.stacks.get(frames);
    if (!known) {
      const ids = frames.map((f) => this.location(f));
      known = { ids, unique: [...new Set(ids)] };
      this.stacks.set(frames, known);
    }
    return known;
  }

  private location(f: Frame): number {
    let id = this.frames.get(f);
    if (id !== undefined) return id;
    const fn = this.function(f);
    const key = `${fn}:${f.line}`;
    id = this.locationIds.get(key);
    if (id === undefined) {
      this.locations.push({ functionId: fn, line: f.line });
      id = this.locations.length;
      this.locationIds.set(key, id);
    }
    this.frames.set(f, id);
    return id;
  }

  private function(f: Frame): number {
    const key = `${f.name}\0${f.systemName}\0${f.filename}\0${f.startLine}`;
    let id = this.functionIds.get(key);
    if (id === undefined) {
      this.functions.push({ name: f.name, systemName: f.systemName, filename: f.filename, startLine: f.startLine });
      id = this.functions.length;
      this.functionIds.set(key, id);
    }
    return id;
  }
}

export interface EncodeOptions {
  /** ids kept across this source's profiles (a fresh dictionary otherwise) */
  dictionary?: PprofDictionary;
  /** gzip level: 1 for a producer that sends often and small, where CPU counts more than bytes (default 6) */
  level?: number;
}

/** Gzipped pprof of `profile`. */
export async function encodePprof(profile: Profile, options: EncodeOptions = {}): Promise<Buffer> {
  const raw = pprofBytes(profile, options.dictionary);
  const zlibOptions = { level: options.level ?? 6 };
  // a small profile (an agent's period, say) costs less compressed at once
  // than handed to the thread pool; a big one (a merged query) must not hold
  // the event loop
  return profile.samples.length <= SMALL_PROFILE_SAMPLES ? gzipSync(raw, zlibOptions) : gzipAsync(raw, zlibOptions);
}

// profile.proto field numbers
const PROFILE = { sampleType: 1, sample: 2, mapping: 3, location: 4, function: 5, stringTable: 6, timeNanos: 9, durationNanos: 10, periodType: 11, period: 12, defaultSampleType: 14 };
const SAMPLE = { locationId: 1, value: 2, label: 3 };
const LABEL = { key: 1, str: 2 };
const MAPPING = { id: 1, filename: 5, hasFunctions: 7, hasFilenames: 8, hasLineNumbers: 9 };
const LOCATION = { id: 1, mappingId: 2, line: 4 };
const LINE = { functionId: 1, line: 2 };
const FUNCTION = { id: 1, name: 2, systemName: 3, filename: 4, startLine: 5 };
const VALUE_TYPE = { type: 1, unit: 2 };

/** The uncompressed pprof message of `profile`. */
export function pprofBytes(profile: Profile, dictionary = new PprofDictionary()): Buffer {
  const w = new ProtoWriter();
  const strings = new Strings();
  // pprof periods are int64; 1e9/frequency is rarely whole.
  const period = Math.round(profile.periodNs);
  const type = profile.type ?? CPU_TYPE;
  // A sampled time (CPU, wall): samples/count and the time, values [count, count x period].
  // Anything else: its own sample type, values [count].
  const sampled = isSampledTime(type);
  const sampleTypes: [number, number][] = sampled
    ? [
        [strings.index('samples'), strings.index('count')],
        [strings.index(type.sampleType), strings.index('nanoseconds')],
      ]
    : [[strings.index(type.sampleType), strings.index(type.sampleUnit)]];
  const periodType = strings.index(type.periodType);
  const periodUnit = strings.index(type.periodUnit);
  for (const [type, unit] of sampleTypes) {
    const at = w.begin(PROFILE.sampleType);
    w.uint(VALUE_TYPE.type, type);
    w.uint(VALUE_TYPE.unit, unit);
    w.end(at);
  }

  const usedLocations = new Set<number>();
  for (const s of profile.samples) {
    const stack = dictionary.stack(s.frames);
    for (const id of stack.unique) usedLocations.add(id);
    stack.packed ??= packed(stack.ids);
    const at = w.begin(PROFILE.sample);
    w.raw(SAMPLE.locationId, stack.packed);
    const values = w.begin(SAMPLE.value);
    w.varint(s.count);
    if (sampled) w.int64(s.count * period);
    w.end(values);
    for (const key in s.labels) {
      const label = w.begin(SAMPLE.label);
      w.uint(LABEL.key, strings.index(key));
      w.uint(LABEL.str, strings.index(s.labels[key]!));
      w.end(label);
    }
    w.end(at);
  }

  const usedFunctions = new Set<number>();
  for (const id of [...usedLocations].sort((a, b) => a - b)) {
    const l = dictionary.locations[id - 1]!;
    usedFunctions.add(l.functionId);
    const at = w.begin(PROFILE.location);
    w.uint(LOCATION.id, id);
    w.uint(LOCATION.mappingId, 1);
    const line = w.begin(LOCATION.line);
    w.uint(LINE.functionId, l.functionId);
    w.int(LINE.line, l.line);
    w.end(line);
    w.end(at);
  }
  for (const id of [...usedFunctions].sort((a, b) => a - b)) {
    const f = dictionary.functions[id - 1]!;
    const at = w.begin(PROFILE.function);
    w.uint(FUNCTION.id, id);
    w.uint(FUNCTION.name, strings.index(f.name));
    // Left empty where it is the name: pprof reads a system name like <module> that differs from
    // nothing as a mangled one and prints <unknown>; readers take the name for an empty one.
    if (f.systemName !== f.name) w.uint(FUNCTION.systemName, strings.index(f.systemName));
    w.uint(FUNCTION.filename, strings.index(f.filename));
    w.int(FUNCTION.startLine, f.startLine);
    w.end(at);
  }
  // One mapping, the interpreter: every location is in it. Its functions, files and lines are
  // known, so pprof tools neither warn that the main binary is missing nor try to symbolize it.
  const mapping = w.begin(PROFILE.mapping);
  w.uint(MAPPING.id, 1);
  w.uint(MAPPING.filename, strings.index(profile.mainBinary || 'python'));
  w.uint(MAPPING.hasFunctions, 1);
  w.uint(MAPPING.hasFilenames, 1);
  w.uint(MAPPING.hasLineNumbers, 1);
  w.end(mapping);
  for (const s of strings.all) w.string(PROFILE.stringTable, s);
  w.int(PROFILE.timeNanos, profile.startNs);
  w.int(PROFILE.durationNanos, Math.round(profile.durationNs));
  const pt = w.begin(PROFILE.periodType);
  w.uint(VALUE_TYPE.type, periodType);
  w.uint(VALUE_TYPE.unit, periodUnit);
  w.end(pt);
  w.int(PROFILE.period, period);
  w.uint(PROFILE.defaultSampleType, sampleTypes[sampleTypes.length - 1]![0]);
  return w.finish();
}

/** The string table: index 0 is "", each string once, in first-use order. */
class Strings {
  readonly all: string[] = [''];
  private readonly index_ = new Map<string, number>([['', 0]]);

  index(s: string): number {
    let i = this.index_.get(s);
    if (i === undefined) {
      i = this.all.length;
      this.all.push(s);
      this.index_.set(s, i);
    }
    return i;
  }
}

/** A packed repeated uint64 field's contents. */
function packed(ids: number[]): Buffer {
  const w = new ProtoWriter(ids.length * 2 + 8);
  for (const id of ids) w.varint(id);
  return w.finish();
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** Just enough protobuf writing: varints, length-delimited fields, nested messages. */
class ProtoWriter {
  private buf: Buffer;
  private len = 0;

  constructor(size = 1 << 12) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** A non-negative integer (below 2^53) as a varint. */
  varint(v: number): void {
    this.room(10);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  /** An int64 as a varint (negative ones in ten bytes, as protobuf does). */
  int64(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && Number.isSafeInteger(v)) return this.varint(v);
    let u = BigInt.asUintN(64, BigInt(v));
    this.room(10);
    while (u >= 0x80n) {
      this.buf[this.len++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.len++] = Number(u);
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** An unsigned field, left out when 0 (its default). */
  uint(field: number, v: number): void {
    if (!v) return;
    this.tag(field, WIRE_VARINT);
    this.varint(v);
  }

  /** A signed field, left out when 0. */
  int(field: number, v: number | bigint): void {
    if (v === 0 || v === 0n) return;
    this.tag(field, WIRE_VARINT);
    this.int64(v);
  }

  string(field: number, s: string): void {
    const n = Buffer.byteLength(s);
    this.tag(field, WIRE_LEN);
    this.varint(n);
    this.room(n);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  raw(field: number, bytes: Buffer): void {
    this.tag(field, WIRE_LEN);
    this.varint(bytes.length);
    this.room(bytes.length);
    bytes.copy(this.buf, this.len);
    this.len += bytes.length;
  }

  /** Starts a length-delimited field; returns where its contents start, for end(). */
  begin(field: number): number {
    this.tag(field, WIRE_LEN);
    this.room(5);
    this.len += 5; // room for the length, moved up in end() when it needs less
    return this.len;
  }

  end(start: number): void {
    const n = this.len - start;
    let lenBytes = 1;
    for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) lenBytes++;
    let at = start - 5;
    if (lenBytes < 5) this.buf.copyWithin(at + lenBytes, start, this.len);
    // the length goes where room was kept for it (no growing here: the contents follow)
    for (let v = n; ; v = Math.floor(v / 0x80)) {
      if (v < 0x80) {
        this.buf[at++] = v;
        break;
      }
      this.buf[at++] = (v % 0x80) | 0x80;
    }
    this.len = at + n;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
