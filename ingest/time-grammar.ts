/**
 * The time grammar Kiln reads, as Pyroscope and Grafana send it: "now",
 * "now-1h", "now-7d", Unix epoch numbers and RFC 3339. Shared by the server
 * (ingest/time.ts) and the web page (ui/src/time.ts), so what the page shows
 * is what the server queries; it imports nothing, so the page can bundle it.
 */

export const UNIT_MS: Record<string, number> = {
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

export const RELATIVE = /^now(?:\s*([+-])\s*(\d+)\s*(ms|s|m|h|d|w|M|y))?$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})$/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Unix milliseconds for one time argument; undefined when it is absent or
 * empty, NaN when it cannot be read. Bare integers are epoch time whose unit
 * is told by magnitude (seconds below 1e11, i.e. before year 5138;
 * milliseconds below 1e14; then microseconds; then nanoseconds), so
 * Pyroscope clients sending seconds and browsers sending milliseconds both work.
 */
export function readTime(value: string | undefined, now: number): number | undefined {
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
    if (!Number.isFinite(n)) return NaN;
    if (n < 1e11) return Math.round(n * 1000);
    if (n < 1e14) return Math.round(n);
    if (n < 1e17) return Math.round(n / 1000);
    return Math.round(n / 1e6);
  }
  if (RFC3339.test(s) || DATE_ONLY.test(s)) return Date.parse(DATE_ONLY.test(s) ? `${s}T00:00:00Z` : s);
  return NaN;
}
