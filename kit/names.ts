/**
 * A frame name checked against the source: the line where a code object
 * starts (co_firstlineno) defines its name, so a frame whose file says
 * otherwise at that line was misnamed. True of any correct profile, whatever
 * it recorded: tests apply it to every frame they get.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { SYNTHETIC, type Frame } from '../profile/profile.js';

const SYNTHETIC_NAMES = new Set<string>(Object.values(SYNTHETIC));
const COMPREHENSIONS = new Set(['<listcomp>', '<setcomp>', '<dictcomp>', '<genexpr>']);
const DEF = /^\s*(?:async\s+def|def|class)\s+([^\s(:]+)/u;
/** decorators may span lines; the def follows within this many */
const MAX_DECORATOR_LINES = 40;

/** Reads sources as the profiled process saw them, cached per file. */
export class SourceFiles {
  private readonly files = new Map<string, string[] | null>();

  /** `root`: the process's root as this process sees it ("/" for the host, a chroot's directory otherwise). */
  constructor(private readonly root: string) {}

  lines(filename: string): string[] | undefined {
    if (!isAbsolute(filename)) return undefined;
    let lines = this.files.get(filename);
    if (lines === undefined) {
      try {
        lines = readFileSync(join(this.root, filename), 'utf8').split('\n');
      } catch {
        lines = null;
      }
      this.files.set(filename, lines);
    }
    return lines ?? undefined;
  }
}

/**
 * Why `frame` is not what its source file says, or undefined when it is (or
 * when there is nothing to check it against: synthetic frames, code without a
 * file such as `<string>` or frozen modules, files gone since).
 */
export function misnamed(frame: Frame, sources: SourceFiles): string | undefined {
  if (SYNTHETIC_NAMES.has(frame.name)) return undefined;
  const where = `${frame.name} (${frame.systemName}) at ${frame.filename}:${frame.startLine}`;
  if (frame.name !== frame.systemName && !frame.name.endsWith(`.${frame.systemName}`))
    return `${where}: the qualname does not end in the name`;
  if (frame.line !== 0 && frame.line < frame.startLine) return `${where}: line ${frame.line} is before the code's first line`;
  const lines = sources.lines(frame.filename);
  if (!lines) return undefined;
  const L = frame.startLine;
  const at = (n: number) => lines[n - 1] ?? '';
  const name = frame.systemName;
  // A module's code starts at line 1 (3.10 on) or at its first statement (3.9: a module opening
  // with a blank line, as Debian's opcode.py does, starts at 2): only blank and comment lines before it.
  if (name === '<module>') {
    return lines.slice(0, Math.max(0, L - 1)).every((l) => /^\s*(#.*)?$/.test(l)) ? undefined : `${where}: a module starts at line 1`;
  }
  if (L < 1 || L > lines.length) return `${where}: the file has ${lines.length} lines`;
  if (name === '<lambda>') return /\blambda\b/.test(at(L)) ? undefined : `${where}: no lambda on line ${L}: ${at(L).trim()}`;
  if (COMPREHENSIONS.has(name)) {
    for (let n = L; n < L + MAX_DECORATOR_LINES && n <= lines.length; n++) if (/\bfor\b/.test(at(n))) return undefined;
    return `${where}: no comprehension from line ${L}`;
  }
  // a def or class, or the first of its decorators
  if (!DEF.test(at(L)) && !/^\s*@/.test(at(L))) return `${where}: line ${L} is no def, class or decorator: ${at(L).trim()}`;
  for (let n = L; n < L + MAX_DECORATOR_LINES && n <= lines.length; n++) {
    const m = DEF.exec(at(n));
    if (m) return m[1] === name ? undefined : `${where}: line ${n} defines ${m[1]}`;
  }
  return `${where}: no def or class named ${name} from line ${L}: ${at(L).trim()}`;
}

/** Every distinct problem `misnamed` finds in these samples (empty: every frame is named as its source says). */
export function misnamedFrames(samples: { frames: Frame[] }[], root: string): string[] {
  const sources = new SourceFiles(root);
  const problems = new Set<string>();
  for (const s of samples) {
    for (const f of s.frames) {
      const p = misnamed(f, sources);
      if (p) problems.add(p);
    }
  }
  return [...problems];
}
