/**
 * A single-pass reader of profile.proto into flat arrays, for the ingest hot
 * path. pprof-format's decoder builds an object per sample, location, line and
 * label, a Buffer view per field and a decoded JS string per string-table
 * entry; here strings stay byte ranges of the request body (rows.ts hashes
 * them as bytes and decodes only what it writes), and everything else is a
 * number in a flat array. Linear in the body: every loop advances the cursor.
 *
 * What it checks is what profile/pprof.ts's validate() checks (string indices
 * in range, one value per sample type); anything else malformed is a
 * truncated field or a bad wire type. Errors are 400s.
 */

import { HttpError } from './limits.js';

export interface PprofView {
  buf: Uint8Array;
  /** string_table entry i is buf[strStart[i], strEnd[i]). */
  strStart: number[];
  strEnd: number[];
  sampleTypeType: number[];
  sampleTypeUnit: number[];
  /** Per sample: ranges into locIds, values and the label arrays. */
  sampleLocStart: number[];
  sampleLocEnd: number[];
  sampleValStart: number[];
  sampleValEnd: number[];
  sampleLabStart: number[];
  sampleLabEnd: number[];
  locIds: number[];
  values: number[];
  labelKey: number[];
  labelStr: number[];
  labelNum: number[];
  labelNumUnit: number[];
  /** Per location: id, mapping id, address (64-bit, as two halves) and its lines. */
  locId: number[];
  locMapping: number[];
  locAddrLo: number[];
  locAddrHi: number[];
  locLineStart: number[];
  locLineEnd: number[];
  lineFunction: number[];
  lineNo: number[];
  fnId: number[];
  fnName: number[];
  fnSystemName: number[];
  fnFilename: number[];
  fnStartLine: number[];
  mappingId: number[];
  mappingFilename: number[];
  timeNanos: bigint;
  durationNanos: number;
  periodTypeType: number;
  periodTypeUnit: number;
  period: number;
}

const malformed = (detail: string): HttpError => new HttpError(400, 'malformed pprof', `pprof: ${detail}`);

const TWO32 = 4294967296;

/** Cursor over a protobuf message; each varint read leaves its halves in lo/hi for exact 64-bit uses. */
class Cursor {
  pos: number;
  lo = 0;
  hi = 0;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    public end: number,
  ) {
    this.pos = start;
  }

  /** Field number of a key read by varint(); keys past 32 bits are unknown fields. */
  static field(key: number): number {
    return key > 0xffffffff ? -1 : key >>> 3;
  }

  /** Unsigned varint as a number (exact below 2^53). */
  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= this.end) throw malformed('truncated varint');
    let b = buf[pos++]!;
    if (b < 0x80) {
      this.pos = pos;
      this.lo = b;
      this.hi = 0;
      return b;
    }
    let lo = b & 0x7f;
    let shift = 7;
    // Low 28 bits, then the 4 bits that straddle the halves, then the high part.
    while (shift < 28) {
      if (pos >= this.end) throw malformed('truncated varint');
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      shift += 7;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = 0;
        return this.lo;
      }
    }
    if (pos >= this.end) throw malformed('truncated varint');
    b = buf[pos++]!;
    lo = (lo | ((b & 0x0f) << 28)) >>> 0;
    let hi = (b & 0x70) >>> 4;
    shift = 3;
    while (b >= 0x80) {
      if (shift > 31) throw malformed('varint longer than 10 bytes');
      if (pos >= this.end) throw malformed('truncated varint');
      b = buf[pos++]!;
      hi = (hi | ((b & 0x7f) << shift)) >>> 0;
      shift += 7;
    }
    this.pos = pos;
    this.lo = lo;
    this.hi = hi >>> 0;
    return this.hi * TWO32 + lo;
  }

  /** int64 (two's complement in a varint) as a number. */
  int64(): number {
    const v = this.varint();
    return this.hi >= 0x80000000 ? (this.hi - TWO32) * TWO32 + this.lo : v;
  }

  /** Length-delimited field: returns its end and leaves pos at its start. */
  delimited(): number {
    const n = this.varint();
    const end = this.pos + n;
    if (n > this.end - this.pos) throw malformed('field runs past the end of its message');
    return end;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw malformed(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw malformed('truncated fixed-width field');
  }
}

/** Repeated scalar: packed (wire type 2) or one value (wire type 0). */
function readRepeated(c: Cursor, wireType: number, out: number[], signed: boolean): void {
  if (wireType === 0) {
    out.push(signed ? c.int64() : c.varint());
    return;
  }
  if (wireType !== 2) throw malformed(`repeated field with wire type ${wireType}`);
  const end = c.delimited();
  const outer = c.end;
  c.end = end;
  if (signed) while (c.pos < end) out.push(c.int64());
  else while (c.pos < end) out.push(c.varint());
  c.end = outer;
}

export interface ReadLimits {
  maxSamples: number;
}

export function readPprof(buf: Uint8Array, limits: ReadLimits): PprofView {
  const v: PprofView = {
    buf,
    strStart: [],
    strEnd: [],
    sampleTypeType: [],
    sampleTypeUnit: [],
    sampleLocStart: [],
    sampleLocEnd: [],
    sampleValStart: [],
    sampleValEnd: [],
    sampleLabStart: [],
    sampleLabEnd: [],
    locIds: [],
    values: [],
    labelKey: [],
    labelStr: [],
    labelNum: [],
    labelNumUnit: [],
    locId: [],
    locMapping: [],
    locAddrLo: [],
    locAddrHi: [],
    locLineStart: [],
    locLineEnd: [],
    lineFunction: [],
    lineNo: [],
    fnId: [],
    fnName: [],
    fnSystemName: [],
    fnFilename: [],
    fnStartLine: [],
    mappingId: [],
    mappingFilename: [],
    timeNanos: 0n,
    durationNanos: 0,
    periodTypeType: 0,
    periodTypeUnit: 0,
    period: 0,
  };
  const c = new Cursor(buf, 0, buf.length);
  while (c.pos < c.end) {
    const key = c.varint();
    const field = Cursor.field(key);
    const wt = key & 7;
    if (wt === 2 && (field === 1 || field === 2 || field === 3 || field === 4 || field === 5 || field === 11)) {
      const end = c.delimited();
      const m = c;
      m.end = end;
      if (field === 2) {
        if (v.sampleLocStart.length >= limits.maxSamples) {
          throw new HttpError(400, 'too many samples', `more than ${limits.maxSamples} samples, the limit`);
        }
        readSample(m, v);
      } else if (field === 4) readLocation(m, v);
      else if (field === 5) readFunction(m, v);
      else if (field === 3) readMapping(m, v);
      else {
        const [type, unit] = readValueType(m);
        if (field === 1) {
          v.sampleTypeType.push(type);
          v.sampleTypeUnit.push(unit);
        } else {
          v.periodTypeType = type;
          v.periodTypeUnit = unit;
        }
      }
      c.pos = end;
      c.end = buf.length;
    } else if (field === 6 && wt === 2) {
      const end = c.delimited();
      v.strStart.push(c.pos);
      v.strEnd.push(end);
      c.pos = end;
    } else if (field === 9 && wt === 0) {
      c.varint();
      v.timeNanos = BigInt.asIntN(64, (BigInt(c.hi) << 32n) | BigInt(c.lo));
    } else if (field === 10 && wt === 0) v.durationNanos = c.int64();
    else if (field === 12 && wt === 0) v.period = c.int64();
    else c.skip(wt);
  }
  validate(v);
  return v;
}

function readValueType(m: Cursor): [number, number] {
  let type = 0;
  let unit = 0;
  while (m.pos < m.end) {
    const key = m.varint();
    const f = Cursor.field(key);
    const wt = key & 7;
    if (f === 1 && wt === 0) type = m.varint();
    else if (f === 2 && wt === 0) unit = m.varint();
    else m.skip(wt);
  }
  return [type, unit];
}

function readSample(m: Cursor, v: PprofView): void {
  v.sampleLocStart.push(v.locIds.length);
  v.sampleValStart.push(v.values.length);
  v.sampleLabStart.push(v.labelKey.length);
  while (m.pos < m.end) {
    const key = m.varint();
    const f = Cursor.field(key);
    const wt = key & 7;
    if (f === 1) readRepeated(m, wt, v.locIds, false);
    else if (f === 2) readRepeated(m, wt, v.values, true);
    else if (f === 3 && wt === 2) {
      const end = m.delimited();
      const outer = m.end;
      m.end = end;
      const l = m;
      let k = 0;
      let s = 0;
      let num = 0;
      let unit = 0;
      while (l.pos < l.end) {
        const lk = l.varint();
        const lf = Cursor.field(lk);
        const lwt = lk & 7;
        if (lf === 1 && lwt === 0) k = l.varint();
        else if (lf === 2 && lwt === 0) s = l.varint();
        else if (lf === 3 && lwt === 0) num = l.int64();
        else if (lf === 4 && lwt === 0) unit = l.varint();
        else l.skip(lwt);
      }
      v.labelKey.push(k);
      v.labelStr.push(s);
      v.labelNum.push(num);
      v.labelNumUnit.push(unit);
      m.pos = end;
      m.end = outer;
    } else m.skip(wt);
  }
  v.sampleLocEnd.push(v.locIds.length);
  v.sampleValEnd.push(v.values.length);
  v.sampleLabEnd.push(v.labelKey.length);
}

function readLocation(m: Cursor, v: PprofView): void {
  let id = 0;
  let mapping = 0;
  let addrLo = 0;
  let addrHi = 0;
  const lineStart = v.lineFunction.length;
  while (m.pos < m.end) {
    const key = m.varint();
    const f = Cursor.field(key);
    const wt = key & 7;
    if (f === 1 && wt === 0) id = m.varint();
    else if (f === 2 && wt === 0) mapping = m.varint();
    else if (f === 3 && wt === 0) {
      m.varint();
      addrLo = m.lo;
      addrHi = m.hi;
    } else if (f === 4 && wt === 2) {
      const end = m.delimited();
      const outer = m.end;
      m.end = end;
      const l = m;
      let fn = 0;
      let line = 0;
      while (l.pos < l.end) {
        const lk = l.varint();
        const lf = Cursor.field(lk);
        const lwt = lk & 7;
        if (lf === 1 && lwt === 0) fn = l.varint();
        else if (lf === 2 && lwt === 0) line = l.int64();
        else l.skip(lwt);
      }
      v.lineFunction.push(fn);
      v.lineNo.push(line);
      m.pos = end;
      m.end = outer;
    } else m.skip(wt);
  }
  v.locId.push(id);
  v.locMapping.push(mapping);
  v.locAddrLo.push(addrLo);
  v.locAddrHi.push(addrHi);
  v.locLineStart.push(lineStart);
  v.locLineEnd.push(v.lineFunction.length);
}

function readFunction(m: Cursor, v: PprofView): void {
  let id = 0;
  let name = 0;
  let sys = 0;
  let file = 0;
  let start = 0;
  while (m.pos < m.end) {
    const key = m.varint();
    const f = Cursor.field(key);
    const wt = key & 7;
    if (wt !== 0) m.skip(wt);
    else if (f === 1) id = m.varint();
    else if (f === 2) name = m.varint();
    else if (f === 3) sys = m.varint();
    else if (f === 4) file = m.varint();
    else if (f === 5) start = m.int64();
    else m.skip(wt);
  }
  v.fnId.push(id);
  v.fnName.push(name);
  v.fnSystemName.push(sys);
  v.fnFilename.push(file);
  v.fnStartLine.push(start);
}

function readMapping(m: Cursor, v: PprofView): void {
  let id = 0;
  let file = 0;
  while (m.pos < m.end) {
    const key = m.varint();
    const f = Cursor.field(key);
    const wt = key & 7;
    if (f === 1 && wt === 0) id = m.varint();
    else if (f === 5 && wt === 0) file = m.varint();
    else m.skip(wt);
  }
  v.mappingId.push(id);
  v.mappingFilename.push(file);
}

/** The structural checks that tell a profile from bytes that merely parse as protobuf. */
function validate(v: PprofView): void {
  const n = v.strStart.length;
  if (n === 0 || v.strEnd[0] !== v.strStart[0]) throw malformed('string_table[0] must be the empty string');
  const check = (i: number, what: string): void => {
    if (!(i >= 0 && i < n)) throw malformed(`${what} refers to string ${i}, past the ${n}-entry string table`);
  };
  for (let i = 0; i < v.sampleTypeType.length; i++) {
    check(v.sampleTypeType[i]!, `sample_type[${i}].type`);
    check(v.sampleTypeUnit[i]!, `sample_type[${i}].unit`);
  }
  check(v.periodTypeType, 'period_type.type');
  check(v.periodTypeUnit, 'period_type.unit');
  for (let i = 0; i < v.fnId.length; i++) {
    check(v.fnName[i]!, `function ${v.fnId[i]} name`);
    check(v.fnSystemName[i]!, `function ${v.fnId[i]} system_name`);
    check(v.fnFilename[i]!, `function ${v.fnId[i]} filename`);
  }
  for (let i = 0; i < v.mappingId.length; i++) check(v.mappingFilename[i]!, `mapping ${v.mappingId[i]} filename`);
  const types = v.sampleTypeType.length;
  if (types === 0 && v.sampleLocStart.length > 0) throw malformed('samples without sample types');
  for (let i = 0; i < v.sampleLocStart.length; i++) {
    const nv = v.sampleValEnd[i]! - v.sampleValStart[i]!;
    if (nv !== types) throw malformed(`sample ${i} has ${nv} values for ${types} sample types`);
  }
  for (let i = 0; i < v.labelKey.length; i++) {
    check(v.labelKey[i]!, 'sample label key');
    check(v.labelStr[i]!, 'sample label value');
  }
}
