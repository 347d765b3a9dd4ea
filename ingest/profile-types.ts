/**
 * Which profile types a pushed pprof holds, and how each is read from its
 * samples. A pprof carries several sample types (Go's heap: alloc_objects,
 * alloc_space, inuse_objects, inuse_space; Node's wall: samples and wall
 * time); each becomes a series of its own, so memory never lands in a CPU
 * flame graph.
 *
 * - A time sampled at a period (CPU, wall: a samples/count type next to a
 *   time type named like the period, or the time type alone) is one series,
 *   stored as sample counts with the period in nanoseconds beside them
 *   (count x period is the time; counts compress to a few bits a row).
 * - Every other sample type is stored as its values, time units converted to
 *   nanoseconds.
 * - The period is the pprof's own; a client's sampleRate counts only for a
 *   profile that has none.
 * - The profile name (Pyroscope's __name__: process_cpu, wall, memory, mutex,
 *   block, goroutine) is the __name__ label when the push names one, else
 *   what pyroscope-go's sample_type_config display name says (mutex_count,
 *   block_duration, ...), else it follows from the sample type.
 */

import { HttpError } from './limits.js';
import { nanosecondsPer, profileTypeId, typePart } from '../profile/profile-type.js';

/** One entry of pyroscope-go's sample_type_config part (a JSON object keyed by sample type). */
export interface SampleTypeSetting {
  units?: string;
  aggregation?: string;
  displayName?: string;
  sampled?: boolean;
  cumulative?: boolean;
}

export type SampleTypeConfig = Record<string, SampleTypeSetting>;

/** How one stored series is read from a pprof's sample values. */
export interface SeriesSpec {
  /** Profile type ID. */
  type: string;
  /** Index into a sample's values; -1 when every sample counts one (a pprof without sample types). */
  index: number;
  /**
   * count: the value is a sample count. timed: the value is a time, divided
   * by the period to give a count. value: the value itself, times scale.
   */
  mode: 'count' | 'timed' | 'value';
  /** value mode: nanoseconds per unit for a time, else 1. timed mode: nanoseconds per unit of the value. */
  scale: number;
  /** Nanoseconds per count (count and timed modes), stored in kiln_profiles.period_ns; 0 for value series. */
  periodNs: number;
}

export interface PprofTypes {
  sampleTypes: readonly { type: string; unit: string }[];
  periodType: { type: string; unit: string };
  period: number;
}

/** Names for sample types and period types; anything else is named after itself. */
const NAME_OF: Record<string, string> = {
  cpu: 'process_cpu',
  itimer: 'process_cpu',
  wall: 'wall',
  alloc_objects: 'memory',
  alloc_space: 'memory',
  inuse_objects: 'memory',
  inuse_space: 'memory',
  objects: 'memory',
  space: 'memory',
  goroutine: 'goroutine',
  goroutines: 'goroutine',
  contentions: 'mutex',
  delay: 'mutex',
  lock_count: 'block',
  lock_duration: 'block',
  exceptions: 'exceptions',
};

/** pyroscope-go's display names: the profile they belong to, and the sample type and unit to file them under. */
const DISPLAY_NAMES: Record<string, { name: string; sampleType: string; unit: string }> = {
  mutex_count: { name: 'mutex', sampleType: 'contentions', unit: 'count' },
  mutex_duration: { name: 'mutex', sampleType: 'delay', unit: 'nanoseconds' },
  block_count: { name: 'block', sampleType: 'contentions', unit: 'count' },
  block_duration: { name: 'block', sampleType: 'delay', unit: 'nanoseconds' },
  goroutines: { name: 'goroutine', sampleType: 'goroutine', unit: 'count' },
};

const lookup = <T>(table: Record<string, T>, key: string): T | undefined => (Object.hasOwn(table, key) ? table[key] : undefined);

/** Bounds on a sample_type_config part: Go's has four entries of a few short fields. */
export const CONFIG_MAX_BYTES = 64 * 1024;
const CONFIG_MAX_ENTRIES = 64;
const CONFIG_MAX_STRING = 200;

/** Reads a sample_type_config part; anything but an object of objects of short strings and booleans is refused. */
export function parseSampleTypeConfig(text: string): SampleTypeConfig {
  const bad = (why: string): HttpError => new HttpError(400, 'bad sample_type_config', why);
  if (text.length > CONFIG_MAX_BYTES) throw bad(`more than ${CONFIG_MAX_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not a JSON object keyed by sample type');
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > CONFIG_MAX_ENTRIES) throw bad(`more than ${CONFIG_MAX_ENTRIES} sample types`);
  const out: SampleTypeConfig = Object.create(null) as SampleTypeConfig;
  for (const [key, v] of entries) {
    if (key.length === 0 || key.length > CONFIG_MAX_STRING) throw bad('a sample type name is empty or too long');
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${JSON.stringify(key)} is not an object`);
    const o = v as Record<string, unknown>;
    const str = (k: string): string | undefined => {
      const x = o[k];
      if (x === undefined || x === null) return undefined;
      if (typeof x !== 'string' || x.length > CONFIG_MAX_STRING) throw bad(`${JSON.stringify(key)}.${k} is not a short string`);
      return x;
    };
    const bool = (k: string): boolean | undefined => {
      const x = o[k];
      if (x === undefined || x === null) return undefined;
      if (typeof x !== 'boolean') throw bad(`${JSON.stringify(key)}.${k} is not true or false`);
      return x;
    };
    const s: SampleTypeSetting = {};
    const units = str('units');
    const aggregation = str('aggregation');
    const displayName = str('display-name');
    const sampled = bool('sampled');
    const cumulative = bool('cumulative');
    if (units !== undefined) s.units = units;
    if (aggregation !== undefined) s.aggregation = aggregation;
    if (displayName !== undefined) s.displayName = displayName;
    if (sampled !== undefined) s.sampled = sampled;
    if (cumulative !== undefined) s.cumulative = cumulative;
    out[key] = s;
  }
  return out;
}

/** A time unit as nanoseconds in an ID, anything else as it is (made safe for the ID). */
function unitPart(unit: string): string {
  return nanosecondsPer(unit) !== undefined ? 'nanoseconds' : typePart(unit) || 'count';
}

/**
 * The series of a pprof, in sample-type order; empty when a sample_type_config
 * names none of its sample types. `name` is the push's __name__ label;
 * `fallbackPeriodNs` the client's sampleRate as a period, used only when the
 * pprof has no time period of its own.
 */
export function seriesOf(p: PprofTypes, opts: { name?: string; config?: SampleTypeConfig; fallbackPeriodNs?: number } = {}): SeriesSpec[] {
  const types = p.sampleTypes;
  const periodPer = nanosecondsPer(p.periodType.unit);
  const ownPeriodNs = periodPer !== undefined && p.period > 0 ? p.period * periodPer : 0;
  const periodNs = ownPeriodNs > 0 ? ownPeriodNs : (opts.fallbackPeriodNs ?? 0);
  // A period without a type (folded text, some producers) is a CPU period.
  const periodType = p.periodType.type ? typePart(p.periodType.type) : 'cpu';
  const periodUnit = p.periodType.type ? unitPart(p.periodType.unit) : 'nanoseconds';
  const wanted = (t: string): boolean => opts.config === undefined || Object.hasOwn(opts.config, t);
  const nameOf = (sampleType: string): string => opts.name ?? lookup(NAME_OF, sampleType) ?? lookup(NAME_OF, periodType) ?? typePart(sampleType);

  if (types.length === 0) {
    // No sample types: every sample counts one, at the period.
    const name = nameOf(periodType);
    return [{ type: profileTypeId({ name, sampleType: periodType, sampleUnit: 'nanoseconds', periodType, periodUnit }), index: -1, mode: 'count', scale: 1, periodNs }];
  }

  const samplesIdx = types.findIndex((t) => t.type === 'samples' && t.unit === 'count');
  // The time sampled at the period: named like the period type, else cpu or wall.
  let timedIdx = types.findIndex((t) => nanosecondsPer(t.unit) !== undefined && t.type === p.periodType.type);
  if (timedIdx < 0) timedIdx = types.findIndex((t) => nanosecondsPer(t.unit) !== undefined && (t.type === 'cpu' || t.type === 'wall'));
  const out: SeriesSpec[] = [];
  const consumed = new Set<number>();
  // samples/count is a count of samples even where the period is unknown (stored with period 0).
  if ((samplesIdx >= 0 || (timedIdx >= 0 && periodNs > 0)) && (wanted('samples') || (timedIdx >= 0 && wanted(types[timedIdx]!.type)))) {
    const sampleType = timedIdx >= 0 ? typePart(types[timedIdx]!.type) : periodType;
    const name = nameOf(sampleType);
    // Filed under its own sample type as the period type: what says its values are counts of the period (profile-type.ts).
    const type = profileTypeId({ name, sampleType, sampleUnit: 'nanoseconds', periodType: sampleType, periodUnit: 'nanoseconds' });
    if (samplesIdx >= 0) out.push({ type, index: samplesIdx, mode: 'count', scale: 1, periodNs });
    // (timed needs a period: the condition above.)
    else out.push({ type, index: timedIdx, mode: 'timed', scale: nanosecondsPer(types[timedIdx]!.unit)!, periodNs });
    if (samplesIdx >= 0) consumed.add(samplesIdx);
    if (timedIdx >= 0) consumed.add(timedIdx);
  }
  types.forEach((t, i) => {
    if (consumed.has(i) || !wanted(t.type)) return;
    const display = opts.config?.[t.type]?.displayName;
    const shown = display !== undefined ? lookup(DISPLAY_NAMES, display) : undefined;
    const sampleType = shown?.sampleType ?? typePart(t.type);
    const sampleUnit = shown?.unit ?? unitPart(t.unit);
    const name = opts.name ?? shown?.name ?? nameOf(sampleType);
    const type = profileTypeId({ name, sampleType, sampleUnit, periodType, periodUnit });
    if (out.some((s) => s.type === type)) return;
    out.push({ type, index: i, mode: 'value', scale: nanosecondsPer(t.unit) ?? 1, periodNs: 0 });
  });
  return out;
}
