/**
 * The time-range choices the controls offer, as changes to the view state:
 * the presets, the diff base (the previous period, a day or a week earlier,
 * the same range to compare label sets), and the pinned range of a copied
 * link. Pure: the clock comes in as `now`.
 */

import type { Mode, ViewState } from './state.js';
import { absolute, isRelative, parseTime, resolve, shifted, type Range } from './time.js';

const DAY = 86_400_000;

export const PRESETS: readonly string[] = ['now-15m', 'now-1h', 'now-24h', 'now-7d'];

/** The preset button a state is on: a preset ending now, else "custom". */
export function presetOf(s: ViewState): string {
  return s.to === 'now' && PRESETS.includes(s.from) ? s.from : 'custom';
}

export type BaseChoice = 'prev' | 'day' | 'week' | 'same' | 'custom';
type Shift = Exclude<BaseChoice, 'same' | 'custom'>;
const SHIFTS: readonly Shift[] = ['prev', 'day', 'week'];

/** The main range moved back by its own length, a day or a week; relative stays relative. */
export function baseRange(choice: Shift, s: ViewState, now: number): Range {
  const r = resolve(s, now);
  const shift = choice === 'prev' ? r.to - r.from : choice === 'day' ? DAY : 7 * DAY;
  return shifted({ from: s.from, to: s.to }, shift, now);
}

/** Which choice the base of a state is: what the base selector shows. */
export function baseChoice(s: ViewState, now: number): BaseChoice {
  if (!s.baseFrom && !s.baseTo) return 'same';
  for (const c of SHIFTS) {
    const r = baseRange(c, s, now);
    if (r.from === s.baseFrom && r.to === s.baseTo) return c;
  }
  return 'custom';
}

/** The base a choice sets ("custom" changes nothing until the form is applied). */
export function basePatch(choice: BaseChoice, s: ViewState, now: number): Partial<ViewState> {
  if (choice === 'same') return { baseFrom: undefined, baseTo: undefined };
  if (choice === 'custom') return {};
  const r = baseRange(choice, s, now);
  return { baseFrom: r.from, baseTo: r.to };
}

/** A preset button: the range ends now; in a diff, a base derived from the range follows it. */
export function presetPatch(s: ViewState, preset: string, now: number): Partial<ViewState> {
  const patch: Partial<ViewState> = { from: preset, to: 'now' };
  if (s.mode === 'diff') {
    const choice = baseChoice(s, now);
    if (choice !== 'same' && choice !== 'custom') Object.assign(patch, basePatch(choice, { ...s, ...patch }, now));
  }
  return patch;
}

/** Switching modes; the first time in diff mode compares with the period just before, the usual "what changed" question. */
export function modePatch(s: ViewState, mode: Mode, now: number): Partial<ViewState> {
  if (mode === s.mode) return {};
  const patch: Partial<ViewState> = { mode, sort: undefined, order: undefined };
  if (mode === 'diff' && !s.baseFrom && !s.baseTo && !s.baseLabels.length && !s.comparisonLabels.length) {
    Object.assign(patch, basePatch('prev', s, now));
  }
  return patch;
}

/** Another service: its labels, zoom and picked function belonged to the old one. */
export function servicePatch(service: string): Partial<ViewState> {
  return { service, labels: [], baseLabels: [], comparisonLabels: [], zoom: [], focus: undefined, filter: '' };
}

/** The state with relative times pinned to `now`, so whoever opens the link later sees these same samples. */
export function pinned(s: ViewState, now: number): ViewState {
  const pin = (v: string): string => (isRelative(v) ? absolute(parseTime(v, now) ?? now) : v);
  const pinOpt = (v: string | undefined): string | undefined => (v === undefined ? v : pin(v));
  const out: ViewState = { ...s, from: pin(s.from), to: pin(s.to) };
  if (s.mode === 'diff') {
    out.baseFrom = pinOpt(s.baseFrom);
    out.baseTo = pinOpt(s.baseTo);
    out.comparisonFrom = pinOpt(s.comparisonFrom);
    out.comparisonTo = pinOpt(s.comparisonTo);
  }
  return out;
}
