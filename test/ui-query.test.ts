/**
 * ui/src/query.ts and the client's query strings: each request carries only
 * the parameters its endpoint takes (ingest/api.ts), and the right sides of a
 * diff; view-only state (search, zoom, table sort) never reaches the server.
 */
import { describe, expect, it } from 'vitest';
import { queryString } from '../ui/src/api.js';
import {
  baseSide,
  comparisonSide,
  diffQuery,
  flamegraphQuery,
  labelsQuery,
  pprofQueries,
  servicesQuery,
  shownSide,
  timelineQuery,
  topQueries,
} from '../ui/src/query.js';
import { defaultState, type ViewState } from '../ui/src/state.js';
import { unknownParams } from './ui-endpoints.js';

const single: ViewState = {
  ...defaultState(),
  service: 'shop',
  from: 'now-24h',
  to: 'now',
  labels: ['host=web-1', 'region!=eu'],
  granularity: 'line',
  search: 'Runner',
  regex: true,
  zoom: ['<module>', 'main'],
  focus: { name: 'a', file: '/x.py' },
  sort: 'total',
  order: 'asc',
  filter: 'shares',
};
const diff: ViewState = {
  ...single,
  mode: 'diff',
  baseFrom: 'now-48h',
  baseTo: 'now-24h',
  baseLabels: ['version=1'],
  comparisonLabels: ['version=2'],
  sort: 'dself',
};

/** The requests a view makes, as endpoint and query string. */
function requests(s: ViewState): [string, string][] {
  const top = topQueries(s);
  const pprof = pprofQueries(s);
  const out: [string, string][] = [
    ['services', queryString({ ...servicesQuery() })],
    ['labels', queryString({ ...labelsQuery(s) })],
    s.mode === 'diff' ? ['diff', queryString({ ...diffQuery(s) })] : ['flamegraph', queryString({ ...flamegraphQuery(s) })],
    ['timeline', queryString({ ...timelineQuery(s) })],
    ['top', queryString({ ...top.shown })],
    ['pprof', queryString({ ...pprof.shown })],
  ];
  if (top.base) out.push(['top', queryString({ ...top.base })]);
  if (pprof.base) out.push(['pprof', queryString({ ...pprof.base })]);
  return out;
}

describe('API queries of a view', () => {
  it('carry only the parameters each endpoint takes, in both modes', () => {
    for (const s of [single, diff, { ...defaultState(), service: 'x' }]) {
      for (const [endpoint, qs] of requests(s)) expect(unknownParams(`http://kiln.test/api/v1/${endpoint}?${qs}`), `${s.mode} ${endpoint}?${qs}`).toEqual([]);
    }
  });

  it('never send how the page looks at the data', () => {
    for (const s of [single, diff]) {
      for (const [endpoint, qs] of requests(s)) {
        const q = new URLSearchParams(qs);
        for (const k of ['search', 'regex', 'zoom', 'fn', 'fnFile', 'filter', 'mode']) expect(q.has(k), `${endpoint}: ${k}`).toBe(false);
        // The table sorts locally: the server's sort stays at its default.
        expect(q.has('sort') || q.has('order'), endpoint).toBe(false);
      }
    }
  });

  it('a single graph asks for its range, labels and granularity', () => {
    expect(new URLSearchParams(queryString({ ...flamegraphQuery(single) })).toString()).toBe(
      'service=shop&from=now-24h&to=now&label=host%3Dweb-1&label=region%21%3Deu&granularity=line',
    );
    expect(topQueries(single)).toEqual({ shown: { service: 'shop', from: 'now-24h', to: 'now', label: single.labels, granularity: 'line', limit: '2000' } });
    expect(timelineQuery(single)).toEqual({ service: 'shop', from: 'now-24h', to: 'now', label: single.labels });
    expect(pprofQueries(single)).toEqual({ shown: { service: 'shop', from: 'now-24h', to: 'now', label: single.labels } });
  });

  it('every query of a view of another profile type names it; CPU (the default) is left out', () => {
    const heap: ViewState = { ...diff, type: 'memory:inuse_space:bytes:space:bytes' };
    for (const s of [heap, { ...heap, mode: 'single' as const }]) {
      for (const [endpoint, qs] of requests(s)) {
        expect(new URLSearchParams(qs).get('type'), endpoint).toBe(endpoint === 'services' ? null : heap.type);
      }
    }
    for (const [endpoint, qs] of requests(single)) expect(new URLSearchParams(qs).has('type'), endpoint).toBe(false);
  });

  it('a diff puts the shared labels on both sides, each side’s own on its side', () => {
    expect(baseSide(diff)).toEqual({ from: 'now-48h', to: 'now-24h', label: ['host=web-1', 'region!=eu', 'version=1'] });
    expect(comparisonSide(diff)).toEqual({ from: 'now-24h', to: 'now', label: ['host=web-1', 'region!=eu', 'version=2'] });
    expect(diffQuery(diff)).toEqual({
      service: 'shop',
      granularity: 'line',
      baseFrom: 'now-48h',
      baseTo: 'now-24h',
      baseLabel: ['host=web-1', 'region!=eu', 'version=1'],
      comparisonFrom: 'now-24h',
      comparisonTo: 'now',
      comparisonLabel: ['host=web-1', 'region!=eu', 'version=2'],
    });
  });

  it('what is on screen in a diff is the comparison: timeline, table, download', () => {
    expect(shownSide(diff)).toEqual(comparisonSide(diff));
    expect(timelineQuery(diff)).toEqual({ service: 'shop', ...comparisonSide(diff) });
    const top = topQueries(diff);
    expect(top.shown).toMatchObject(comparisonSide(diff));
    expect(top.base).toMatchObject(baseSide(diff));
    expect(pprofQueries(diff)).toEqual({ shown: { service: 'shop', ...comparisonSide(diff) }, base: { service: 'shop', ...baseSide(diff) } });
  });

  it('a comparison range of its own overrides the main range on that side only', () => {
    const s: ViewState = { ...diff, comparisonFrom: '1700000000', comparisonTo: '1700003600' };
    expect(comparisonSide(s)).toMatchObject({ from: '1700000000', to: '1700003600' });
    expect(baseSide(s)).toMatchObject({ from: 'now-48h', to: 'now-24h' });
    // Without base times the base is the main range: a label-set comparison.
    expect(baseSide({ ...s, baseFrom: undefined, baseTo: undefined })).toMatchObject({ from: 'now-24h', to: 'now' });
  });

  it('labels for the pickers come unfiltered, so a filter does not hide its own alternatives', () => {
    expect(labelsQuery(diff)).toEqual({ service: 'shop', from: 'now-24h', to: 'now' });
  });

  it('services are listed over the longest range the server allows', () => {
    expect(servicesQuery()).toEqual({ from: 'now-30d' });
  });
});

describe('query strings', () => {
  it('leave out absent and empty values, repeat lists, and escape what needs it', () => {
    expect(queryString({ service: 'a b&c', from: '', to: undefined, label: [], x: ['1', '2'] })).toBe('service=a+b%26c&x=1&x=2');
    expect(new URLSearchParams(queryString({ label: ['名前=値', 'a!=b;c'] })).getAll('label')).toEqual(['名前=値', 'a!=b;c']);
  });
});

describe('the endpoint lists themselves', () => {
  it('catch a parameter an endpoint does not take', () => {
    expect(unknownParams('http://kiln.test/api/v1/labels?service=a&granularity=line')).toEqual(['granularity']);
    expect(unknownParams('http://kiln.test/api/v1/services?service=a')).toEqual(['service']);
    expect(unknownParams('http://kiln.test/prefix/api/v1/top?service=a&limit=5&sort=self')).toEqual([]);
  });
});
