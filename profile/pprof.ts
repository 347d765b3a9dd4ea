/**
 * pprof (profile.proto) -> Profile, via the pprof-format package. Kiln writes
 * gzipped pprof for `go tool pprof`, Pyroscope, Parca and Grafana (written by
 * pprof-encode.ts, re-exported here); the ingest service reads pprof from
 * Kiln agents and from other producers, so the reader side is bounded and
 * tolerant of what other tools leave out.
 */

import { gunzipSync } from 'node:zlib';
import { Function as PprofFunction, Location, Profile as PprofProfile, Sample } from 'pprof-format';
import type { Frame, Profile } from './profile.js';

export { PprofProfile };
export { encodePprof, pprofBytes, PprofDictionary } from './pprof-encode.js';

type Numeric = number | bigint;

/** Default bound on a decompressed profile; callers facing the network pass their own. */
export const DEFAULT_MAX_INFLATED_BYTES = 64 * 1024 * 1024;

/** Frame name used where a pprof file has no function for a location. */
export const UNKNOWN_FUNCTION = '[unknown]';

/**
 * Reads a pprof file, gzipped (as files on disk and most HTTP bodies are) or
 * not. Decompression is capped at maxInflatedBytes so a gzip bomb fails fast
 * instead of exhausting memory; anything that is not a usable profile throws
 * an Error whose message starts with "pprof:".
 */
export function decodePprof(buf: Uint8Array, maxInflatedBytes = DEFAULT_MAX_INFLATED_BYTES): PprofProfile {
  let raw: Uint8Array;
  if (isGzip(buf)) {
    raw = gunzipBounded(buf, maxInflatedBytes);
  } else {
    if (buf.length > maxInflatedBytes) {
      throw new Error(`pprof: profile is ${buf.length} bytes, more than the ${maxInflatedBytes}-byte limit`);
    }
    raw = buf;
  }
  let p: PprofProfile;
  try {
    p = PprofProfile.decode(raw);
  } catch (e) {
    throw new Error(`pprof: not a profile.proto message (${errorText(e)})`);
  }
  validate(p);
  return p;
}

function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

function gunzipBounded(buf: Uint8Array, max: number): Uint8Array {
  try {
    return gunzipSync(buf, { maxOutputLength: max });
  } catch (e) {
    if (e instanceof RangeError || (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new Error(`pprof: gzipped profile inflates to more than ${max} bytes`);
    }
    throw new Error(`pprof: corrupt gzip data (${errorText(e)})`);
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The structural checks that tell a profile from bytes that merely parse as
 * protobuf (the decoder accepts almost anything): string indices in range,
 * one value per sample type.
 */
function validate(p: PprofProfile): void {
  const strings = p.stringTable.strings;
  if (strings.length === 0 || strings[0] !== '') {
    throw new Error('pprof: string_table[0] must be the empty string');
  }
  const checkString = (i: Numeric, what: string): void => {
    const n = Number(i);
    if (!(n >= 0 && n < strings.length)) {
      throw new Error(`pprof: ${what} refers to string ${String(i)}, past the ${strings.length}-entry string table`);
    }
  };
  p.sampleType.forEach((t, i) => {
    checkString(t.type, `sample_type[${i}].type`);
    checkString(t.unit, `sample_type[${i}].unit`);
  });
  for (const f of p.function) {
    checkString(f.name, `function ${String(f.id)} name`);
    checkString(f.systemName, `function ${String(f.id)} system_name`);
    checkString(f.filename, `function ${String(f.id)} filename`);
  }
  p.sample.forEach((s, i) => {
    if (s.value.length !== p.sampleType.length) {
      throw new Error(`pprof: sample ${i} has ${s.value.length} values for ${p.sampleType.length} sample types`);
    }
    for (const l of s.label) {
      checkString(l.key, `sample ${i} label key`);
      checkString(l.str, `sample ${i} label value`);
    }
  });
}

/**
 * Maps any producer's pprof back into Kiln's model. One count per sample is
 * taken from a samples/count type when there is one, else derived from a
 * value in the period's unit, else the first value. Inlined lines expand
 * into one frame each (innermost first, as pprof lists them); locations with
 * no function become "[unknown]" or their address.
 */
export function profileFromPprof(p: PprofProfile): Profile {
  const strings = p.stringTable.strings;
  const str = (i: Numeric): string => strings[Number(i)] ?? '';
  const functions = new Map<number, PprofFunction>();
  for (const f of p.function) functions.set(Number(f.id), f);
  const locations = new Map<number, Location>();
  for (const l of p.location) locations.set(Number(l.id), l);
  const mappings = new Map<number, string>();
  for (const m of p.mapping) mappings.set(Number(m.id), str(m.filename));

  const periodUnit = p.periodType ? str(p.periodType.unit) : '';
  const period = toNumber(p.period);
  const count = sampleCounter(p, str, periodUnit, period);

  const framesOf = new Map<number, Frame[]>();
  const locationFrames = (id: Numeric): Frame[] => {
    const key = Number(id);
    let frames = framesOf.get(key);
    if (!frames) {
      frames = expandLocation(locations.get(key), functions, mappings, str);
      framesOf.set(key, frames);
    }
    return frames;
  };

  const samples: Profile['samples'] = [];
  for (const s of p.sample) {
    const n = count(s);
    if (n <= 0) continue;
    samples.push({ frames: s.locationId.flatMap(locationFrames), labels: labelsOf(s, str), count: n });
  }
  const out: Profile = {
    samples,
    periodNs: periodUnit === 'nanoseconds' ? period : 0,
    startNs: BigInt.asIntN(64, BigInt(p.timeNanos)),
    durationNs: toNumber(p.durationNanos),
  };
  // The main mapping (the first, as pprof tools take it) names the binary.
  const main = p.mapping[0] ? str(p.mapping[0].filename) : '';
  if (main) out.mainBinary = main;
  return out;
}

function sampleCounter(
  p: PprofProfile,
  str: (i: Numeric) => string,
  periodUnit: string,
  period: number,
): (s: Sample) => number {
  const types = p.sampleType.map((t) => ({ type: str(t.type), unit: str(t.unit) }));
  let idx = types.findIndex((t) => t.type === 'samples' && t.unit === 'count');
  if (idx < 0) idx = types.findIndex((t) => t.unit === 'count');
  if (idx >= 0) return (s) => toNumber(s.value[idx] ?? 0);
  const timed = periodUnit && period > 0 ? types.findIndex((t) => t.unit === periodUnit) : -1;
  if (timed >= 0) {
    return (s) => {
      const v = toNumber(s.value[timed] ?? 0);
      // Keep a sample that ran for less than one period rather than round it away.
      return v > 0 ? Math.max(1, Math.round(v / period)) : 0;
    };
  }
  return (s) => (s.value.length === 0 ? 1 : toNumber(s.value[0] ?? 0));
}

function expandLocation(
  loc: Location | undefined,
  functions: Map<number, PprofFunction>,
  mappings: Map<number, string>,
  str: (i: Numeric) => string,
): Frame[] {
  if (!loc) return [unknownFrame()];
  if (loc.line.length === 0) {
    // Unsymbolized native address: keep it visible and distinct.
    const name = `0x${BigInt.asUintN(64, BigInt(loc.address)).toString(16)}`;
    return [{ name, systemName: name, filename: mappings.get(Number(loc.mappingId)) ?? '', startLine: 0, line: 0 }];
  }
  return loc.line.map((l) => {
    const fn = functions.get(Number(l.functionId));
    if (!fn) return { ...unknownFrame(), line: toNumber(l.line) };
    const systemName = str(fn.systemName);
    const name = str(fn.name) || systemName || UNKNOWN_FUNCTION;
    return {
      name,
      systemName: systemName || name,
      filename: str(fn.filename),
      startLine: toNumber(fn.startLine),
      line: toNumber(l.line),
    };
  });
}

function unknownFrame(): Frame {
  return { name: UNKNOWN_FUNCTION, systemName: UNKNOWN_FUNCTION, filename: '', startLine: 0, line: 0 };
}

/** String labels as they are; numeric ones as decimal text. A repeated key keeps every value, comma-joined. */
function labelsOf(s: Sample, str: (i: Numeric) => string): Record<string, string> {
  // A Map, not an object, so keys like "__proto__" stay plain data.
  const labels = new Map<string, string>();
  for (const l of s.label) {
    const key = str(l.key);
    if (!key) continue;
    const isNum = Number(l.str) === 0 && (Number(l.num) !== 0 || Number(l.numUnit) !== 0);
    const value = isNum ? String(toNumber(l.num)) : str(l.str);
    const prev = labels.get(key);
    labels.set(key, prev === undefined ? value : `${prev},${value}`);
  }
  return Object.fromEntries(labels);
}

/** pprof-format hands out unsigned bigints for large varints; profile.proto fields are int64. */
function toNumber(v: Numeric): number {
  return typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : v;
}
