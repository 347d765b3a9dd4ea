/** ui/src/search.ts: literal search by default, patterns only when asked, and never an exception. */
import { describe, expect, it } from 'vitest';
import { compileSearch, focusMatcher, highlightOf } from '../ui/src/search.js';

const NAMES = ['<module>', 'main', 'Runner.run', 'Runner.__init__', 'a', 'b', 'c', 'foo(bar)', 'x.*y', '[unknown code]', 'École.dîner', '処理する', 'fire🔥', 'back\\slash'];

function matches(text: string, regex: boolean): string[] {
  const c = compileSearch(text, regex);
  expect(c.error, `${text} should compile`).toBeUndefined();
  return NAMES.filter((n) => c.matcher!(n, undefined));
}

describe('literal search', () => {
  it('finds the text anywhere in the name, ignoring case', () => {
    expect(matches('runner', false)).toEqual(['Runner.run', 'Runner.__init__']);
    expect(matches('RUN', false)).toEqual(['Runner.run', 'Runner.__init__']);
    expect(matches('c', false)).toEqual(['c', '[unknown code]', 'École.dîner', 'back\\slash']);
  });

  it('takes pattern characters as themselves', () => {
    expect(matches('Runner.run', false)).toEqual(['Runner.run']);
    expect(matches('Runner.ru.', false)).toEqual([]);
    expect(matches('foo(', false)).toEqual(['foo(bar)']);
    expect(matches('.*', false)).toEqual(['x.*y']);
    expect(matches('[unknown', false)).toEqual(['[unknown code]']);
    expect(matches('k\\s', false)).toEqual(['back\\slash']);
  });

  it('matches unicode names, ignoring case beyond ASCII', () => {
    expect(matches('école', false)).toEqual(['École.dîner']);
    expect(matches('DÎNER', false)).toEqual(['École.dîner']);
    expect(matches('処理', false)).toEqual(['処理する']);
    expect(matches('🔥', false)).toEqual(['fire🔥']);
  });

  it('an empty search highlights nothing and is no error', () => {
    expect(compileSearch('', false)).toEqual({});
    expect(compileSearch('', true)).toEqual({});
  });
});

describe('pattern search', () => {
  it('is a JavaScript regular expression, case-sensitive', () => {
    expect(matches('^c$', true)).toEqual(['c']);
    expect(matches('^[ab]$', true)).toEqual(['a', 'b']);
    expect(matches('Runner\\.', true)).toEqual(['Runner.run', 'Runner.__init__']);
    expect(matches('^runner', true)).toEqual([]);
    expect(matches('処理|🔥', true)).toEqual(['処理する', 'fire🔥']);
  });

  it('gives the same answer when asked twice (no state kept between names)', () => {
    const m = compileSearch('a', true).matcher!;
    expect([m('a', undefined), m('a', undefined), m('main', undefined)]).toEqual([true, true, true]);
  });

  it('turns a pattern that does not compile into a message, not an exception', () => {
    for (const bad of ['foo(', '[', '(?<', '*a', 'a{2,1}', '\\']) {
      const c = compileSearch(bad, true);
      expect(c.matcher, bad).toBeUndefined();
      expect(c.error, bad).toMatch(/^not a valid pattern: /);
      expect(c.error, bad).not.toMatch(/Invalid regular expression/);
    }
  });
});

describe('the function picked in the table', () => {
  it('matches by name and file, so two functions of one name in two files stay apart', () => {
    const m = focusMatcher({ name: 'handle', file: '/srv/a.py' });
    expect(m('handle', '/srv/a.py')).toBe(true);
    expect(m('handle', '/srv/b.py')).toBe(false);
    expect(m('handle', undefined)).toBe(false);
    expect(m('handler', '/srv/a.py')).toBe(false);
  });

  it('matches any file when it has none (a synthetic frame, or a link without fnFile)', () => {
    const m = focusMatcher({ name: '[truncated]', file: '' });
    expect(m('[truncated]', undefined)).toBe(true);
    expect(m('[truncated]', '/x.py')).toBe(true);
    expect(m('[TRUNCATED]', undefined)).toBe(false);
  });
});

describe('what a view highlights', () => {
  it('the picked function wins over search text', () => {
    const h = highlightOf({ focus: { name: 'b', file: '' }, search: 'a', regex: false });
    expect(h.label).toBe('b');
    expect(h.matcher!('b', undefined)).toBe(true);
    expect(h.matcher!('a', undefined)).toBe(false);
  });

  it('names literal text in quotes and patterns in slashes', () => {
    expect(highlightOf({ search: 'run', regex: false }).label).toBe('“run”');
    expect(highlightOf({ search: '^c$', regex: true }).label).toBe('/^c$/');
  });

  it('carries a bad pattern as an error and highlights nothing', () => {
    const h = highlightOf({ search: 'foo(', regex: true });
    expect(h.matcher).toBeUndefined();
    expect(h.error).toMatch(/^not a valid pattern/);
    expect(highlightOf({ search: 'foo(', regex: false }).error).toBeUndefined();
  });

  it('highlights nothing without a search or a pick', () => {
    expect(highlightOf({ search: '', regex: true })).toEqual({ label: '' });
  });
});
