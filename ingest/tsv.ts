/** TabSeparated text as ClickHouse reads it: how Kiln writes every row it inserts. */

/** Escaping for a top-level String field. */
export function tsvEscape(s: string): string {
  return s.replace(/[\\\t\n\r\0]/g, (c) => TSV_ESCAPES[c] ?? c);
}
const TSV_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };

/**
 * A string inside a TabSeparated Array or Map field: ClickHouse reads those as
 * quoted literals straight from the stream, so quote and backslash-escape, and
 * escape tab/newline so the row stays one line.
 */
export function tsvQuoted(s: string): string {
  return `'${s.replace(/[\\'\t\n\r\0]/g, (c) => QUOTED_ESCAPES[c] ?? c)}'`;
}
const QUOTED_ESCAPES: Record<string, string> = { ...TSV_ESCAPES, "'": "\\'" };

export function tsvMap(entries: readonly (readonly [string, string])[]): string {
  return `{${entries.map(([k, v]) => `${tsvQuoted(k)}:${tsvQuoted(v)}`).join(',')}}`;
}
