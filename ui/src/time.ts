/**
 * Time strings as the URL and the API carry them: "now", "now-1h", Unix ms,
 * RFC 3339. The page keeps the user's own form (a relative range stays
 * relative, so a bookmarked "last 24 h" keeps meaning that) and resolves it
 * here only to draw and to compute derived ranges.
 */
import { readTime, RELATIVE, UNIT_MS } from '../../ingest/time-grammar.js';

/** The server's reading (ingest/time-grammar.ts); undefined for what it cannot read. */
export function parseTime(value: string | undefined, now: number): number | undefined {
  const t = readTime(value, now);
  return t !== undefined && Number.isFinite(t) ? t : undefined;
}

export function isRelative(value: string): boolean {
  return RELATIVE.test(value.trim());
}

/** "now-Nunit" with the largest unit that divides the offset, so URLs stay readable. */
export function relative(offsetMs: number): string {
  if (offsetMs <= 0) return 'now';
  for (const u of ['w', 'd', 'h', 'm', 's'] as const) {
    const ms = UNIT_MS[u]!;
    if (offsetMs % ms === 0) return `now-${offsetMs / ms}${u}`;
  }
  return `now-${Math.round(offsetMs)}ms`;
}

/** Absolute time for the URL: RFC 3339 to the second, readable and unambiguous. */
export function absolute(ms: number): string {
  return new Date(Math.round(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export interface Range {
  from: string;
  to: string;
}

export interface ResolvedRange {
  from: number;
  to: number;
}

export const DEFAULT_RANGE: Range = { from: 'now-1h', to: 'now' };

export function resolve(r: Range, now: number): ResolvedRange {
  const to = parseTime(r.to, now) ?? now;
  const from = parseTime(r.from, now) ?? to - UNIT_MS.h!;
  return { from, to };
}

/** The range `shiftMs` earlier, keeping a relative range relative. */
export function shifted(r: Range, shiftMs: number, now: number): Range {
  const from = parseTime(r.from, now);
  const to = parseTime(r.to, now);
  if (from === undefined || to === undefined) return r;
  if (isRelative(r.from) && isRelative(r.to)) {
    return { from: relative(now - from + shiftMs), to: relative(now - to + shiftMs) };
  }
  return { from: absolute(from - shiftMs), to: absolute(to - shiftMs) };
}

/** A span in words: 15 min, 1 h, 24 h, 7 d, 1 h 30 min. */
export function span(ms: number): string {
  const min = Math.round(ms / 60_000);
  if (min < 1) return `${Math.round(ms / 1000)} s`;
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const m = min % 60;
  if (h < 48 || h % 24 !== 0) return m ? `${h} h ${m} min` : `${h} h`;
  return `${h / 24} d`;
}

const two = (n: number): string => String(n).padStart(2, '0');

/** Local date and time, to the minute (to the second when it has seconds). */
export function formatTime(ms: number, withDate = true): string {
  const d = new Date(ms);
  const time = `${two(d.getHours())}:${two(d.getMinutes())}${d.getSeconds() ? `:${two(d.getSeconds())}` : ''}`;
  if (!withDate) return time;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`;
}

export function formatRange(r: ResolvedRange): string {
  const sameDay = new Date(r.from).toDateString() === new Date(r.to).toDateString();
  return `${formatTime(r.from)} – ${formatTime(r.to, !sameDay)}`;
}

/** Value for <input type="datetime-local"> (local time, minutes). */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

export function fromLocalInput(value: string): number | undefined {
  if (!value) return undefined;
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? t : undefined;
}
