/** ui/src/state.ts: the view state and its query string, without a browser. */
import { describe, expect, it } from 'vitest';
import { dataKey, decodePath, defaultState, encodePath, labelText, parseState, serializeState, type ViewState } from '../ui/src/state.js';

/** A state with every field away from its default, in diff mode so the diff fields are written too. */
function everything(): ViewState {
  return {
    service: 'checkout-api ünï 服务',
    type: 'memory:inuse_space:bytes:space:bytes',
    from: '2026-03-01T10:00:00Z',
    to: 'now-5m',
    labels: ['host=web-1', 'region!=eu-west', 'path=/a=b&c', 'emoji=🔥'],
    granularity: 'line',
    mode: 'diff',
    baseFrom: 'now-2h',
    baseTo: 'now-1h',
    baseLabels: ['version=1.2'],
    comparisonFrom: '1700000000',
    comparisonTo: '1700003600',
    comparisonLabels: ['version=1.3', 'canary!=true'],
    search: 'a+b & c=d #x % ?',
    regex: true,
    zoom: ['<module>', 'main', 'odd;name', 'back\\slash', 'Ünïcode.函数'],
    focus: { name: 'Runner.run', file: '/srv/app/shares.py' },
    sort: 'dtotal',
    order: 'asc',
    filter: 'shares 🔥',
  };
}

describe('view state in the query string', () => {
  it('the default state is the empty query string, and reads back as the default', () => {
    expect(serializeState(defaultState())).toBe('');
    expect(parseState('')).toEqual(defaultState());
    expect(parseState('?')).toEqual(defaultState());
  });

  it('round-trips a state with every field set, unicode and URL-special characters included', () => {
    const s = everything();
    const text = serializeState(s);
    expect(text.startsWith('?')).toBe(true);
    expect(parseState(text)).toEqual(s);
    // And through a real URL, as the browser hands location.search back.
    expect(parseState(new URL(`http://kiln.test/${text}`).search)).toEqual(s);
  });

  it('round-trips each field alone, leaving the rest at their defaults', () => {
    const full = everything();
    for (const key of Object.keys(full) as (keyof ViewState)[]) {
      const s: ViewState = { ...defaultState(), [key]: full[key] };
      // Diff fields only exist in diff mode.
      if (key.startsWith('base') || key.startsWith('comparison')) s.mode = 'diff';
      expect(parseState(serializeState(s)), key).toEqual(s);
    }
  });

  it('writes the type only when it is not CPU, reads an ID only, and reloads data for a new type', () => {
    expect(serializeState({ ...defaultState(), service: 'a' })).toBe('?service=a');
    const heap = { ...defaultState(), service: 'a', type: 'memory:inuse_space:bytes:space:bytes' };
    expect(new URLSearchParams(serializeState(heap)).get('type')).toBe(heap.type);
    expect(parseState('?service=a&type=heap').type).toBe(defaultState().type);
    expect(dataKey(heap)).not.toBe(dataKey({ ...heap, type: defaultState().type }));
  });

  it('writes the diff sides only in diff mode', () => {
    const s: ViewState = { ...everything(), mode: 'single' };
    const q = new URLSearchParams(serializeState(s));
    for (const k of ['mode', 'baseFrom', 'baseTo', 'baseLabel', 'comparisonFrom', 'comparisonTo', 'comparisonLabel']) expect(q.has(k), k).toBe(false);
    expect(q.getAll('label')).toEqual(s.labels);
  });

  it('writes both ends of a range when either differs from the default', () => {
    expect(serializeState({ ...defaultState(), from: 'now-24h' })).toBe('?from=now-24h&to=now');
    expect(serializeState({ ...defaultState(), to: 'now-5m' })).toBe('?from=now-1h&to=now-5m');
  });

  it('reads what is not valid as the default, and drops malformed labels', () => {
    const s = parseState('?granularity=bogus&mode=flat&sort=fastest&order=up&regex=true&from=&to=&label=host&label==x&label=a!=b&label=a=b&fnFile=/x.py');
    expect(s.granularity).toBe('function');
    expect(s.mode).toBe('single');
    expect(s.sort).toBeUndefined();
    expect(s.order).toBeUndefined();
    expect(s.regex).toBe(false);
    expect(s.from).toBe(defaultState().from);
    expect(s.to).toBe(defaultState().to);
    expect(s.labels).toEqual(['a!=b', 'a=b']);
    // A file without a function names nothing.
    expect(s.focus).toBeUndefined();
  });

  it('reads a function picked without a file as matching any file', () => {
    expect(parseState('?fn=a').focus).toEqual({ name: 'a', file: '' });
    expect(serializeState({ ...defaultState(), focus: { name: 'a', file: '' } })).toBe('?fn=a');
  });
});

describe('zoom paths', () => {
  it('escape ";" and "\\" inside names, and round-trip', () => {
    const paths = [[], ['a'], ['<module>', 'main', 'Runner.run'], ['a;b', 'c'], ['x\\'], ['\\;\\\\;'], ['ünï', '函数', '🔥'], ['a', '', 'b']];
    for (const p of paths) expect(decodePath(encodePath(p)), JSON.stringify(p)).toEqual(p);
    expect(encodePath(['a;b', 'c\\d'])).toBe('a\\;b;c\\\\d');
  });

  it('read a hand-written path: a trailing backslash is kept, an empty path is no zoom', () => {
    expect(decodePath('')).toEqual([]);
    expect(decodePath('a;b\\')).toEqual(['a', 'b\\']);
    expect(decodePath('a;;b')).toEqual(['a', '', 'b']);
  });
});

describe('dataKey', () => {
  const base = everything();

  it('changes with what the data depends on', () => {
    const changes: Partial<ViewState>[] = [
      { service: 'other' },
      { from: 'now-2h' },
      { to: 'now' },
      { labels: ['host=web-2'] },
      { granularity: 'function' },
      { mode: 'single' },
      { baseFrom: 'now-3h' },
      { baseTo: undefined },
      { baseLabels: [] },
      { comparisonFrom: undefined },
      { comparisonTo: '1700007200' },
      { comparisonLabels: ['version=1.4'] },
    ];
    for (const c of changes) expect(dataKey({ ...base, ...c }), JSON.stringify(c)).not.toBe(dataKey(base));
  });

  it('stays the same when only the way of looking changes, so nothing is fetched again', () => {
    const changes: Partial<ViewState>[] = [
      { search: 'x' },
      { regex: false },
      { zoom: [] },
      { focus: undefined },
      { sort: 'self' },
      { order: 'desc' },
      { filter: '' },
    ];
    for (const c of changes) expect(dataKey({ ...base, ...c }), JSON.stringify(c)).toBe(dataKey(base));
  });

  it('ignores the diff sides outside diff mode', () => {
    const single: ViewState = { ...base, mode: 'single' };
    expect(dataKey({ ...single, baseFrom: 'now-9h', comparisonLabels: [] })).toBe(dataKey(single));
  });
});

describe('labelText', () => {
  it('splits at the first operator, so values may hold "=" and "!="', () => {
    expect(labelText('host=web-1')).toEqual({ name: 'host', op: '=', value: 'web-1' });
    expect(labelText('region!=eu-west')).toEqual({ name: 'region', op: '!=', value: 'eu-west' });
    expect(labelText('q=a=b!=c')).toEqual({ name: 'q', op: '=', value: 'a=b!=c' });
    expect(labelText('thread_name=')).toEqual({ name: 'thread_name', op: '=', value: '' });
    expect(labelText('名前=値🔥')).toEqual({ name: '名前', op: '=', value: '値🔥' });
    expect(labelText('multi=line\nvalue')).toEqual({ name: 'multi', op: '=', value: 'line\nvalue' });
  });

  it('shows a string without an operator as a name', () => {
    expect(labelText('host')).toEqual({ name: 'host', op: '=', value: '' });
  });
});
