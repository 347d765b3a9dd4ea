/**
 * Time arguments as Pyroscope and Grafana send them: "now", "now-1h", "now-7d",
 * Unix epoch numbers, and RFC 3339. Everything resolves to Unix milliseconds.
 */

import { HttpError } from './limits.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  // Calendar months and years are approximated, as Pyroscope does.
  M: 30 * 86_400_000,
  y: 365 * 86_400_000,
};

const RELATIVE = /^now(?:\s*([+-])\s*(\d+)\s*(ms|s|m|h|d|w|M|y))?$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})$/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Parses one time argument. Bare integers are epoch time whose unit is told
 * by magnitude (seconds below 1e11, i.e. before year 5138; milliseconds below
 * 1e14; then microseconds; then nanoseconds), so Pyroscope clients sending
 * seconds and browsers sending milliseconds both work. Returns undefined for
 * an absent argument; throws a 400 HttpError for one it cannot read.
 */
export function parseTime(value: string | undefined, now: number, what = 'time'): number | undefined {
  if (value === undefined) return undefined;
  const s = value.trim();
  if (s === '') return undefined;
  const rel = RELATIVE.exec(s);
  if (rel) {
    if (!rel[1]) return now;
    const n = Number(rel[2]) * UNIT_MS[rel[3]!]!;
    return rel[1] === '-' ? now - n : now + n;
  }
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    if (!Number.isFinite(n)) throw badTime(what, value);
    if (n < 1e11) return Math.round(n * 1000);
    if (n < 1e14) return Math.round(n);
    if (n < 1e17) return Math.round(n / 1000);
    return Math.round(n / 1e6);
  }
  if (RFC3339.test(s) || DATE_ONLY.test(s)) {
    const t = Date.parse(DATE_ONLY.test(s) ? `${s}T00:00:00Z` : s);
    if (Number.isFinite(t)) return t;
  }
  throw badTime(what, value);
}

function badTime(what: string, value: string): HttpError {
  return new HttpError(
    400,
    `bad ${what}`,
    `${JSON.stringify(value.slice(0, 100))} is not Unix time, RFC 3339, or now[-N(s|m|h|d|w)]`,
  );
}

export interface TimeRange {
  from: number;
  to: number;
}

/**
 * A query range: by default the last hour. from must precede to, and the span
 * is capped so one request cannot ask the store to scan months of data.
 */
export function parseRange(
  from: string | undefined,
  to: string | undefined,
  opts: { now: number; maxRangeMs: number; defaultSpanMs?: number; prefix?: string },
): TimeRange {
  const p = opts.prefix ?? '';
  const end = parseTime(to, opts.now, `${p}to`) ?? opts.now;
  const start = parseTime(from, opts.now, `${p}from`) ?? end - (opts.defaultSpanMs ?? UNIT_MS.h!);
  if (!(start < end)) {
    throw new HttpError(400, 'bad time range', `${p}from (${iso(start)}) must be before ${p}to (${iso(end)})`);
  }
  if (end - start > opts.maxRangeMs) {
    throw new HttpError(
      400,
      'bad time range',
      `the range spans ${Math.round((end - start) / 3_600_000)} h, more than the ${Math.round(opts.maxRangeMs / 3_600_000)} h limit`,
    );
  }
  return { from: start, to: end };
}

export function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : String(ms);
}
