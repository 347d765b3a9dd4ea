/**
 * kiln_ingest rows in ClickHouse's RowBinary format: how a push's rows travel
 * from its worker through the ingest log into the store.
 *
 * RowBinary rather than TabSeparated because the engine reads it for a
 * fraction of the cost (ids are 8 bytes to copy, not 20 digits to parse):
 * measured on chDB, a batch of 300 agent profiles (104k rows) through
 * kiln_ingest and its views cost 0.44 ms of CPU per profile instead of 0.79
 * (ingest/README.md, "Insert format"). It has no row delimiters, so a row
 * that is one byte short would shift every row after it in a batch: every
 * push's rows are walked by checkIngestRows before they are logged, and a
 * push whose rows do not walk exactly is refused.
 *
 * A row is the columns of INSERT_COLUMNS.ingest (schema.ts), in order:
 *
 *   kind u8 | service string | type string | ts u32 | labels_hash u64 | stack_hash u64 | value u64 |
 *   series map | duration_ns u64 | period_ns u64 | samples u64 | rows u32 | source string | ingest_key u128
 *
 * Integers little-endian; a string is its UTF-8 length as LEB128, then the
 * bytes; a map is its entry count as LEB128, then key and value strings.
 * Sample rows (kind 0) leave the profile columns at zero; the profile row
 * (kind 1) leaves the sample columns at zero. A push is one group of rows per
 * profile type it holds: that type's sample rows, then its profile row. The
 * type travels as the empty string for CPU (nearly every row: one byte
 * instead of 44), which kiln_ingest's views store as its ID (schema.ts).
 */

import { dec64 } from '../profile/hash.js';
import { CPU_TYPE_ID, MAX_TYPE_ID_LENGTH } from '../profile/profile-type.js';

/** A type as kiln_ingest takes it: CPU as the empty string. */
export function wireType(type: string): string {
  return type === CPU_TYPE_ID ? '' : type;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Bytes of a sample row's own columns: labels_hash, stack_hash, value. */
const SAMPLE_NUMBERS = 8 + 8 + 8;

/** Bytes of a sample row after its value: the profile columns at zero (empty map, four numbers, empty string, key). */
const SAMPLE_TAIL = 1 + 8 + 8 + 8 + 4 + 1 + 16;

/** Appends rows to a growing, zero-filled buffer (zero columns cost no writes). */
export class RowWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(size = 16 * 1024) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private varint(n: number): void {
    this.room(5);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  private bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  private u32(n: number): void {
    this.room(4);
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }

  /** A whole number up to 2^53 as UInt64. */
  private u64(n: number): void {
    this.room(8);
    this.view.setUint32(this.pos, n % 0x1_0000_0000, true);
    this.view.setUint32(this.pos + 4, Math.floor(n / 0x1_0000_0000), true);
    this.pos += 8;
  }

  /**
   * Sample rows share kind, service, type and ts: encode them once per
   * profile type (sampleHead) and append each row as that head plus three numbers.
   */
  static sampleHead(service: string, type: string, tsSeconds: number): Uint8Array {
    const w = new RowWriter(128);
    w.room(1);
    w.buf[w.pos++] = 0;
    w.bytes(enc.encode(service));
    w.bytes(enc.encode(wireType(type)));
    w.u32(tsSeconds);
    return w.done();
  }

  /** value: a whole number up to 2^53. */
  sample(head: Uint8Array, labelsLo: number, labelsHi: number, stackLo: number, stackHi: number, value: number): void {
    this.room(head.length + SAMPLE_NUMBERS + SAMPLE_TAIL);
    this.buf.set(head, this.pos);
    let p = this.pos + head.length;
    const v = this.view;
    v.setUint32(p, labelsLo, true);
    v.setUint32(p + 4, labelsHi, true);
    v.setUint32(p + 8, stackLo, true);
    v.setUint32(p + 12, stackHi, true);
    v.setUint32(p + 16, value % 0x1_0000_0000, true);
    v.setUint32(p + 20, Math.floor(value / 0x1_0000_0000), true);
    p += SAMPLE_NUMBERS;
    // The profile columns stay zero: an empty map, zeros, an empty string.
    this.pos = p + SAMPLE_TAIL;
  }

  profile(p: {
    service: string;
    type: string;
    tsSeconds: number;
    series: readonly (readonly [string, string])[];
    durationNs: number;
    periodNs: number;
    samples: number;
    rows: number;
    source: string;
    /** UInt128, decimal. */
    key: string;
  }): void {
    this.room(1);
    this.buf[this.pos++] = 1;
    this.bytes(enc.encode(p.service));
    this.bytes(enc.encode(wireType(p.type)));
    this.u32(p.tsSeconds);
    this.room(SAMPLE_NUMBERS);
    this.pos += SAMPLE_NUMBERS;
    this.varint(p.series.length);
    for (const [k, val] of p.series) {
      this.bytes(enc.encode(k));
      this.bytes(enc.encode(val));
    }
    this.u64(p.durationNs);
    this.u64(p.periodNs);
    this.u64(p.samples);
    this.u32(p.rows);
    this.bytes(enc.encode(p.source));
    const key = BigInt(p.key);
    this.room(16);
    this.view.setBigUint64(this.pos, key & 0xffff_ffff_ffff_ffffn, true);
    this.view.setBigUint64(this.pos + 8, key >> 64n, true);
    this.pos += 16;
  }

  /** Drops the last `n` bytes (tests: a row cut short). */
  cut(n: number): void {
    this.pos = Math.max(0, this.pos - n);
  }

  /** The rows written, in a buffer of their own (it is transferred to another thread). */
  done(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** One row read back (tests and diagnostics). */
export interface IngestRow {
  kind: number;
  service: string;
  type: string;
  ts: number;
  labelsHash: string;
  stackHash: string;
  value: number;
  series: [string, string][];
  durationNs: bigint;
  periodNs: bigint;
  samples: bigint;
  rows: number;
  source: string;
  key: string;
}

/**
 * Checks that `data` is exactly `rows` kiln_ingest rows of `service`: one
 * group per profile type, each its sample rows (the fixed length its head
 * gives, starting with that head) then its profile row, the last of which
 * walks to the last byte. With every row where it must start, no row can
 * shift the next. Returns why not, or undefined. Linear in the size of
 * `data`; every length it reads is checked against what is left. `onRow`
 * (tests) gets every row decoded.
 */
export function checkIngestRows(data: Uint8Array, rows: number, service: string, onRow?: (r: IngestRow) => void): string | undefined {
  if (rows < 1) return 'no profile row';
  const svc = enc.encode(service);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let p = 0;
  const need = (n: number): boolean => p + n <= data.length;
  const varint = (): number => {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (!need(1)) return -1;
      const b = data[p++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    return -1;
  };
  const str = (max: number): Uint8Array | undefined => {
    const n = varint();
    if (n < 0 || n > max || !need(n)) return undefined;
    const x = data.subarray(p, p + n);
    p += n;
    return x;
  };
  const u64 = (): bigint => {
    const v = view.getBigUint64(p, true);
    p += 8;
    return v;
  };
  let r = 0;
  while (r < rows) {
    // The group's head: kind, service, type, ts (a sample row's, or the profile row's when the type has no samples).
    const start = p;
    if (!need(1)) return `row ${r} is missing`;
    const kind = data[p++]!;
    if (kind > 1) return `row ${r} has kind ${kind}`;
    const s = str(svc.length);
    if (!s || !sameBytes(s, svc)) return `row ${r} is not of service ${service}`;
    const typeBytes = str(MAX_TYPE_ID_LENGTH);
    if (!typeBytes) return `row ${r} has no profile type`;
    const type = typeBytes.length === 0 ? CPU_TYPE_ID : dec.decode(typeBytes);
    if (!need(4)) return `row ${r} is cut short`;
    const ts = view.getUint32(p, true);
    p += 4;
    const headLen = p - start;
    p = start;
    const sampleLen = headLen + SAMPLE_NUMBERS + SAMPLE_TAIL;
    while (r < rows - 1 && data[p] === 0) {
      if (!need(sampleLen)) return `sample row ${r} is cut short`;
      for (let i = 1; i < headLen; i++) if (data[p + i] !== data[start + i]) return `row ${r} is not a sample row of the group's service, type and time`;
      if (onRow) {
        const q = p + headLen;
        for (let i = q + SAMPLE_NUMBERS; i < p + sampleLen; i++) if (data[i] !== 0) return `sample row ${r} carries profile columns`;
        onRow({
        kind: 0,
        service,
        type,
        ts,
        labelsHash: dec64(view.getUint32(q + 4, true), view.getUint32(q, true)),
        stackHash: dec64(view.getUint32(q + 12, true), view.getUint32(q + 8, true)),
        value: view.getUint32(q + 16, true) + view.getUint32(q + 20, true) * 0x1_0000_0000,
        series: [],
        durationNs: 0n,
        periodNs: 0n,
        samples: 0n,
        rows: 0,
        source: '',
        key: '0',
        });
      }
      p += sampleLen;
      r++;
    }
    // The group's profile row: the same head with kind 1.
    if (!need(headLen) || data[p] !== 1) return `row ${r} is not the profile row`;
    for (let i = 1; i < headLen; i++) if (data[p + i] !== data[start + i]) return `the profile row ${r} is not of the group's service, type and time`;
    p += headLen;
    if (!need(SAMPLE_NUMBERS)) return 'the profile row is cut short';
    p += SAMPLE_NUMBERS;
    const entries = varint();
    if (entries < 0 || entries > 1000) return 'the profile row has a bad label map';
    const series: [string, string][] = [];
    for (let e = 0; e < entries; e++) {
      const k = str(data.length);
      const v = k && str(data.length);
      if (!k || !v) return 'the profile row has a label cut short';
      series.push([dec.decode(k), dec.decode(v)]);
    }
    if (!need(8 + 8 + 8 + 4)) return 'the profile row is cut short';
    const durationNs = u64();
    const periodNs = u64();
    const total = u64();
    const count = view.getUint32(p, true);
    p += 4;
    const source = str(data.length);
    if (!source || !need(16)) return 'the profile row is cut short';
    const keyLo = u64();
    const keyHi = u64();
    onRow?.({
      kind: 1,
      service,
      type,
      ts,
      labelsHash: '0',
      stackHash: '0',
      value: 0,
      series,
      durationNs,
      periodNs,
      samples: total,
      rows: count,
      source: dec.decode(source),
      key: ((keyHi << 64n) | keyLo).toString(),
    });
    r++;
  }
  if (p !== data.length) return `${data.length - p} bytes after the last row`;
  return undefined;
}

/**
 * Rows as schema v3 wrote them (ingest logs of the version before profile
 * types: no type column, 32-bit values) in today's layout, typed `type`; or
 * undefined when they do not walk. Linear, bounded by `data`.
 */
export function upgradeV3Rows(data: Uint8Array, rows: number, type: string): Uint8Array | undefined {
  const typeBytes = enc.encode(wireType(type));
  const out = new Uint8Array(data.length + rows * (typeBytes.length + 1 + 4));
  const outView = new DataView(out.buffer);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let p = 0;
  let q = 0;
  const copy = (n: number): boolean => {
    if (p + n > data.length) return false;
    out.set(data.subarray(p, p + n), q);
    p += n;
    q += n;
    return true;
  };
  /** A LEB128 length, copied; -1 when cut short. */
  const varint = (): number => {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (p >= data.length) return -1;
      const b = data[p++]!;
      out[q++] = b;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    return -1;
  };
  const str = (): boolean => {
    const n = varint();
    return n >= 0 && copy(n);
  };
  for (let r = 0; r < rows; r++) {
    if (p >= data.length) return undefined;
    const kind = data[p]!;
    if (kind > 1 || !copy(1) || !str()) return undefined;
    out[q++] = typeBytes.length;
    out.set(typeBytes, q);
    q += typeBytes.length;
    // ts, labels_hash, stack_hash; then the 32-bit value as 64 bits.
    if (!copy(4 + 16) || p + 4 > data.length) return undefined;
    outView.setUint32(q, view.getUint32(p, true), true);
    p += 4;
    q += 8;
    const entries = varint();
    if (entries < 0) return undefined;
    for (let e = 0; e < 2 * entries; e++) if (!str()) return undefined;
    if (!copy(8 + 8 + 8 + 4) || !str() || !copy(16)) return undefined;
  }
  return p === data.length ? out.slice(0, q) : undefined;
}

/** The rows of `data` (tests): throws if they do not walk. */
export function readIngestRows(data: Uint8Array, rows: number, service: string): IngestRow[] {
  const out: IngestRow[] = [];
  const why = checkIngestRows(data, rows, service, (r) => out.push(r));
  if (why) throw new Error(`not kiln_ingest rows: ${why}`);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
