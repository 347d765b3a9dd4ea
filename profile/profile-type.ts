/**
 * Profile types in Pyroscope's ID form,
 * `name:sample_type:sample_unit:period_type:period_unit`
 * (process_cpu:cpu:nanoseconds:cpu:nanoseconds, memory:inuse_space:bytes:space:bytes).
 * The one place that spells, reads and checks them: storage keeps one per
 * sample row, ingest derives them from a pprof's sample and period types,
 * the HTTP API and Grafana's querier take them, the UI prints units from them.
 */

export interface ProfileType {
  /** The profile's name: process_cpu, wall, memory, mutex, block, ... */
  name: string;
  sampleType: string;
  sampleUnit: string;
  periodType: string;
  periodUnit: string;
}

/** What Kiln's own sampler records, and what every query means when it names no type. */
export const CPU_TYPE: ProfileType = Object.freeze({
  name: 'process_cpu',
  sampleType: 'cpu',
  sampleUnit: 'nanoseconds',
  periodType: 'cpu',
  periodUnit: 'nanoseconds',
});

export const CPU_TYPE_ID = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';

/** Longest ID accepted; real ones are under 60 characters. */
export const MAX_TYPE_ID_LENGTH = 200;

export function profileTypeId(t: ProfileType): string {
  return `${t.name}:${t.sampleType}:${t.sampleUnit}:${t.periodType}:${t.periodUnit}`;
}

/** Each part: what Pyroscope's clients send (letters, digits, _ . - /), never empty except the period's. */
const PART = /^[A-Za-z0-9_.\-/]*$/;

/**
 * Reads an ID, or undefined when it is not one: five parts, the first three
 * non-empty (a profile with no period type leaves the last two empty).
 */
export function parseProfileType(id: string): ProfileType | undefined {
  if (id.length === 0 || id.length > MAX_TYPE_ID_LENGTH) return undefined;
  const parts = id.split(':');
  if (parts.length !== 5 || !parts.every((p) => PART.test(p))) return undefined;
  const [name, sampleType, sampleUnit, periodType, periodUnit] = parts as [string, string, string, string, string];
  if (!name || !sampleType || !sampleUnit) return undefined;
  return { name, sampleType, sampleUnit, periodType, periodUnit };
}

/** A type a query asks for: none (absent or empty) is CPU, Kiln's default everywhere; undefined when it is not an ID. */
export function requestedType(id: string | undefined): string | undefined {
  if (id === undefined || id === '') return CPU_TYPE_ID;
  return parseProfileType(id) ? id : undefined;
}

/** Turns anything into a valid ID part: Pyroscope's separator and odd bytes become _. */
export function typePart(s: string): string {
  return s.replace(/[^A-Za-z0-9_.\-/]/g, '_').slice(0, 40);
}

/** Units that are time: values in them are converted to nanoseconds. */
const TIME_UNITS_NS: Record<string, number> = {
  nanoseconds: 1,
  microseconds: 1e3,
  milliseconds: 1e6,
  seconds: 1e9,
};

/** Nanoseconds per unit for a time unit, undefined for anything else. */
export function nanosecondsPer(unit: string): number | undefined {
  return Object.hasOwn(TIME_UNITS_NS, unit) ? TIME_UNITS_NS[unit] : undefined;
}

/** How values of a type print: time, bytes, or a plain count. */
export type ValueKind = 'nanoseconds' | 'bytes' | 'count';

export function valueKind(t: ProfileType): ValueKind {
  if (nanosecondsPer(t.sampleUnit) !== undefined) return 'nanoseconds';
  if (t.sampleUnit === 'bytes') return 'bytes';
  return 'count';
}

/**
 * A time sampled at a period (CPU, wall: the sample type is the period's):
 * Kiln stores its values as sample counts, each worth the period.
 */
export function isSampledTime(t: ProfileType): boolean {
  return valueKind(t) === 'nanoseconds' && t.sampleType === t.periodType;
}

/** What a stored value of a type is worth: the unit it prints in, and the factor to get there. */
export interface ValueUnit {
  unit: ValueKind;
  /** A stored value times scale is an amount in unit. */
  scale: number;
}

/**
 * The unit of a type's stored values given its sampling period (ns, 0 when
 * unknown): a sampled time's counts are worth the period each (plain sample
 * counts when it is unknown); every other type's values are in its own unit.
 */
export function valueUnit(t: ProfileType, periodNs: number): ValueUnit {
  if (isSampledTime(t)) return periodNs > 0 ? { unit: 'nanoseconds', scale: periodNs } : { unit: 'count', scale: 1 };
  return { unit: valueKind(t), scale: 1 };
}
