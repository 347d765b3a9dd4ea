/**
 * The search box. d3-flame-graph's own matcher does new RegExp(text), which
 * throws on "foo(" and treats "." as any character; here the text is literal
 * (case-insensitive, anywhere in the name) unless the user ticks "regex", and
 * a pattern that does not compile comes back as a message, not an exception.
 */

import type { Focus, ViewState } from './state.js';
import type { Matcher } from './flame.js';

export interface CompiledSearch {
  matcher?: Matcher;
  error?: string;
}

export function compileSearch(text: string, regex: boolean): CompiledSearch {
  if (text === '') return {};
  if (!regex) {
    const needle = text.toLowerCase();
    return { matcher: (name) => name.toLowerCase().includes(needle) };
  }
  let re: RegExp;
  try {
    re = new RegExp(text);
  } catch (e) {
    return { error: `not a valid pattern: ${e instanceof Error ? e.message.replace(/^Invalid regular expression: /, '') : String(e)}` };
  }
  return { matcher: (name) => re.test(name) };
}

/** The function picked in the table: same name and file (two functions may share a name). */
export function focusMatcher(f: Focus): Matcher {
  return (name, file) => name === f.name && (f.file === '' || (file ?? '') === f.file);
}

export interface Highlight {
  /** Frames to highlight; none when undefined. */
  matcher?: Matcher;
  /** How the search status names it: the function, “text”, or /pattern/. */
  label: string;
  /** The pattern does not compile: what to tell the user instead. */
  error?: string;
}

/** What a view highlights: the function picked in the table wins over the search text. */
export function highlightOf(v: Pick<ViewState, 'focus' | 'search' | 'regex'>): Highlight {
  if (v.focus) return { matcher: focusMatcher(v.focus), label: v.focus.name };
  if (!v.search) return { label: '' };
  const label = v.regex ? `/${v.search}/` : `“${v.search}”`;
  const c = compileSearch(v.search, v.regex);
  return c.error ? { label, error: c.error } : { matcher: c.matcher, label };
}
