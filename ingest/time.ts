/**
 * Time arguments as Pyroscope and Grafana send them: "now", "now-1h", "now-7d",
 * Unix epoch numbers, and RFC 3339. Everything resolves to Unix milliseconds.
 */

import { HttpError } from './limits.js';
import { readTime, UNIT_MS } from './time-grammar.js';

/**
 * Parses one time argument (see readTime for the grammar). Returns undefined
 * for an absent argument; throws a 400 HttpError for one it cannot read.
 */
export function parseTime(value: string | undefined, now: number, what = 'time'): number | undefined {
  const t = readTime(value, now);
  if (t !== undefined && !Number.isFinite(t)) throw badTime(what, value ?? '');
  return t;
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
