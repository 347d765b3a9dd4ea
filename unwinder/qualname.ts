/**
 * Qualified names for CPython builds without co_qualname (3.9, 3.10), worked
 * out from the source the way the compiler builds __qualname__: each
 * enclosing class adds "Class.", each enclosing function "func.<locals>.".
 * The enclosing scopes are the def/class lines above the code object's first
 * line with less indentation. Sources are read through the process's root, so
 * this works for containers too; when the source is unreadable, the plain
 * co_name is kept.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

const SCOPE = /^(\s*)(?:async\s+def|def|class)\s+([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)/u;

function indentOf(line: string): number {
  let n = 0;
  for (const ch of line) {
    if (ch === ' ') n++;
    else if (ch === '\t') n += 8 - (n % 8);
    else break;
  }
  return n;
}

function scopePrefix(m: RegExpExecArray): string {
  return m[0].trimStart().startsWith('class') ? `${m[2]}.` : `${m[2]}.<locals>.`;
}

function isCode(line: string): boolean {
  const t = line.trim();
  return t !== '' && !t.startsWith('#');
}

/**
 * The qualname of the code object named `name` whose first line is
 * `firstLineNo` (1-based) in `lines`; undefined when the source does not
 * show it (edited since, or generated code).
 */
export function qualnameFromSource(lines: string[], firstLineNo: number, name: string): string | undefined {
  if (name === '<module>') return name;
  let at = firstLineNo - 1;
  if (at < 0 || at >= lines.length) return undefined;
  const named = !name.startsWith('<');
  if (named) {
    // co_firstlineno of a decorated def is its first decorator: find the def itself
    const end = Math.min(lines.length, at + 50);
    while (at < end && SCOPE.exec(lines[at]!)?.[2] !== name) at++;
    if (at === end) return undefined;
  }
  let indent = indentOf(lines[at]!);
  const parts: string[] = [];
  if (!named) {
    // a lambda or comprehension on a one-line def belongs to that def
    const own = SCOPE.exec(lines[at]!);
    if (own) parts.push(scopePrefix(own));
  }
  for (let i = at - 1; i >= 0 && indent > 0; i--) {
    const line = lines[i]!;
    if (!isCode(line)) continue;
    const ind = indentOf(line);
    if (ind >= indent) continue;
    const m = SCOPE.exec(line);
    if (m) parts.push(scopePrefix(m));
    indent = ind;
  }
  return parts.reverse().join('') + name;
}

/** Reads and caches the sources of one process, as it sees them. */
export class SourceQualnames {
  private readonly files = new Map<string, string[] | null>();

  constructor(private readonly pid: number) {}

  qualname(filename: string, firstLineNo: number, name: string): string {
    return qualnameFromSource(this.lines(filename) ?? [], firstLineNo, name) ?? name;
  }

  private lines(filename: string): string[] | undefined {
    let lines = this.files.get(filename);
    if (lines === undefined) {
      lines = null;
      // the process's own root and working directory, so chroots and containers resolve
      const path = isAbsolute(filename) ? join(`/proc/${this.pid}/root`, filename) : join(`/proc/${this.pid}/cwd`, filename);
      try {
        lines = readFileSync(path, 'utf8').split('\n');
      } catch {
        /* <string>, frozen modules, deleted files: keep co_name */
      }
      this.files.set(filename, lines);
    }
    return lines ?? undefined;
  }
}
