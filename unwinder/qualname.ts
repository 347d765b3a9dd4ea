/**
 * Qualified names for CPython builds without co_qualname (3.9, 3.10), worked
 * out from the source the way the compiler builds __qualname__: each
 * enclosing class adds "Class.", each enclosing function "func.<locals>.".
 * The enclosing scopes are the def/class lines above the code object's first
 * line with less indentation. Sources are read through the process's root, so
 * this works for containers too, and never outside it; when the source is
 * unreadable, the plain co_name is kept.
 */
import { readProcessFile, TargetFileError, type FileRefusal } from './target-files.js';

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

/** Sources larger than this are not read (the stdlib's largest is ~0.2 MB). */
export const MAX_SOURCE_BYTES = 4 << 20;
/** Source bytes, and files named, one process's cache holds before it starts over. */
const MAX_CACHED_SOURCE_BYTES = 32 << 20;
const MAX_CACHED_FILES = 10_000;

/**
 * Reads and caches the sources of one process, as it sees them: names
 * resolved inside its root (or working directory), regular files it may read
 * itself, of at most MAX_SOURCE_BYTES (unwinder/target-files.ts). A file
 * refused or unreadable leaves the plain co_name, and is counted.
 */
export class SourceQualnames {
  private readonly files = new Map<string, string[] | null>();
  private cachedBytes = 0;
  /** bytes of source read */
  bytesRead = 0;
  /** files not read, by reason, and in all */
  readonly refused = new Map<FileRefusal, number>();
  unread = 0;

  constructor(private readonly pid: number) {}

  qualname(filename: string, firstLineNo: number, name: string): string {
    return qualnameFromSource(this.lines(filename) ?? [], firstLineNo, name) ?? name;
  }

  private lines(filename: string): string[] | undefined {
    let lines = this.files.get(filename);
    if (lines === undefined) {
      lines = null;
      try {
        if (filename.includes('\0')) throw new TargetFileError('missing', 'a name with a NUL in it');
        const text = readProcessFile(this.pid, filename, MAX_SOURCE_BYTES);
        this.bytesRead += text.length;
        if (this.cachedBytes + text.length > MAX_CACHED_SOURCE_BYTES || this.files.size >= MAX_CACHED_FILES) {
          this.files.clear();
          this.cachedBytes = 0;
        }
        this.cachedBytes += text.length;
        lines = text.toString('utf8').split('\n');
      } catch (err) {
        // <string>, frozen modules, deleted files, and names Kiln will not follow: keep co_name
        const reason = err instanceof TargetFileError ? err.reason : 'missing';
        this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
        this.unread++;
        if (this.files.size >= MAX_CACHED_FILES) this.files.clear();
      }
      this.files.set(filename, lines);
    }
    return lines ?? undefined;
  }
}
