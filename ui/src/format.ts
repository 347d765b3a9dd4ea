/**
 * Numbers as the page prints them. Every value of a profile (tooltip, table,
 * summary, search status, timeline) is printed here in its measure's unit:
 * the API says what its values are (ingest/api.ts ValueUnitOf: CPU and wall
 * time as sample counts worth the period each, memory in bytes, objects and
 * contentions as counts), and only the measure changes between types.
 */

import type { ValueUnitOf } from '../../ingest/api.js';
import { parseProfileType, valueKind, type ProfileType } from '../../profile/profile-type.js';

export type Unit = 'nanoseconds' | 'bytes' | 'count';

/** What a profile's values measure. */
export interface Measure {
  unit: Unit;
  /** What the total is, for sentences ("60 % of samples", "of CPU time"). */
  noun: string;
  /** A value times scale is an amount in unit (a CPU sample count times the period is time). */
  scale: number;
}

/** Plain sample counts: what the page shows before it knows better. */
export const CPU_SAMPLES: Measure = { unit: 'count', noun: 'samples', scale: 1 };

/** Nouns for the sample types Pyroscope's clients send; others are spelled from their name. */
const NOUNS: Record<string, string> = {
  cpu: 'CPU time',
  wall: 'wall time',
  samples: 'samples',
  alloc_space: 'allocated bytes',
  inuse_space: 'in-use bytes',
  alloc_objects: 'allocated objects',
  inuse_objects: 'in-use objects',
  contentions: 'contentions',
  delay: 'delay',
};

/** What a type's values are called: "CPU time", "in-use bytes", "goroutine count". */
function nounOf(t: ProfileType): string {
  // hasOwn: a type named after an Object.prototype key ("constructor") is spelled, not looked up.
  return Object.hasOwn(NOUNS, t.sampleType) ? NOUNS[t.sampleType]! : t.sampleType.replace(/_/g, ' ');
}

/**
 * The measure of a Pyroscope profile type ID (name:sample_type:sample_unit:period_type:period_unit,
 * e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds, memory:inuse_space:bytes:space:bytes)
 * when its values are in its own unit: time and bytes print as such,
 * anything else is a count. Not an ID: plain samples.
 */
export function measureOfType(id: string): Measure {
  const t = parseProfileType(id);
  if (!t) return CPU_SAMPLES;
  return { unit: valueKind(t), noun: nounOf(t), scale: 1 };
}

/** The measure of an API answer: its unit and scale, named after its type (counts of unknown period are samples). */
export function measureOf(r: ValueUnitOf): Measure {
  const t = parseProfileType(r.type);
  if (!t) return { ...CPU_SAMPLES, unit: r.unit, scale: r.scale };
  const noun = r.unit === 'count' && valueKind(t) === 'nanoseconds' ? 'samples' : nounOf(t);
  return { unit: r.unit, noun, scale: r.scale };
}

/** How the type picker names a type: its noun, and the profile's name when the noun does not say it ("mutex: delay"). */
export function typeLabel(id: string): string {
  const t = parseProfileType(id);
  if (!t) return id;
  const noun = nounOf(t);
  return t.name === 'process_cpu' || t.name === 'wall' || t.name === 'memory' ? noun : `${t.name}: ${noun}`;
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** A whole count with thousands separators (also for things that are not values: frames, functions). */
export function count(n: number): string {
  return int.format(n);
}

/** Three significant digits at most, trailing zeros dropped: 1, 12.5, 123, 1.05. */
function short(n: number): string {
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return String(Number(n.toFixed(digits)));
}

const TIME_UNITS: [string, number][] = [
  ['d', 86_400e9],
  ['h', 3_600e9],
  ['min', 60e9],
  ['s', 1e9],
  ['ms', 1e6],
  ['µs', 1e3],
];

const BYTE_UNITS: [string, number][] = [
  ['TiB', 2 ** 40],
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10],
];

/** `units` largest first, each bigger than the next; below the last, `base`. */
function scaled(v: number, units: [string, number][], base: string): string {
  const a = Math.abs(v);
  let i = units.findIndex(([, size]) => a >= size);
  if (i < 0) i = units.length;
  const size = (k: number): number => (k < units.length ? units[k]![1] : 1);
  // Rounding can reach the next unit (999.7 ms is "1000 ms"): then say it in that unit ("1 s").
  if (i > 0 && Number(short(a / size(i))) * size(i) >= size(i - 1)) i--;
  return `${short(v / size(i))} ${i < units.length ? units[i]![0] : base}`;
}

/** A value without its noun, for axes and the left side of "base A → comparison B": "1,234", "1.5 s", "12 MiB". */
export function amount(v: number, unit: Unit): string {
  switch (unit) {
    case 'nanoseconds':
      return scaled(v, TIME_UNITS, 'ns');
    case 'bytes':
      return scaled(v, BYTE_UNITS, 'B');
    case 'count':
      return count(v);
  }
}

/** A value as a phrase: "1,234 samples", "1.5 s", "12 MiB" (time and bytes say what they are). */
export function value(v: number, m: Measure): string {
  return m.unit === 'count' ? `${count(v * m.scale)} ${m.noun}` : amount(v * m.scale, m.unit);
}

/** A value without its noun, in its measure: amount() of the value scaled. */
export function amountOf(v: number, m: Measure): string {
  return amount(v * m.scale, m.unit);
}

/** A share 0..1 as a percentage: one decimal, two below 1 %. */
export function percent(share: number): string {
  const p = share * 100;
  if (p === 0) return '0 %';
  return `${p < 1 ? p.toFixed(2) : p.toFixed(1)} %`;
}

/** A change in share, in percentage points, with its sign. */
export function pp(change: number): string {
  const p = change * 100;
  const text = Math.abs(p) < 1 ? Math.abs(p).toFixed(2) : Math.abs(p).toFixed(1);
  if (Number(text) === 0) return '±0 pp';
  return `${p > 0 ? '+' : '−'}${text} pp`;
}
