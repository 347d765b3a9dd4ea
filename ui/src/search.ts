/**
 * The search box. d3-flame-graph's own matcher does new RegExp(text), which
 * throws on "foo(" and treats "." as any character; here the text is literal
 * (case-insensitive, anywhere in the name) unless the user ticks "regex", and
 * a pattern that does not compile comes back as a message, not an exception.
 */

import type { Focus } from './state.js';
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
