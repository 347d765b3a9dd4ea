/**
 * ui/src/messages.ts, summary.ts and the pure parts of loading and the table:
 * what the page says instead of a graph (and what its buttons do to the
 * view), the lines around the graph, which service opens first, and the
 * per-function join of a diff's two sides.
 */
import { describe, expect, it } from 'vitest';
import type { DiffResponse, FlamegraphResponse, ServiceInfo, TopEntry, TopResponse } from '../ingest/api.js';
import { ApiFailure } from '../ui/src/api.js';
import type { FlameData } from '../ui/src/flame.js';
import { CPU_SAMPLES, type Measure } from '../ui/src/format.js';
import { CPU_TYPE_ID } from '../profile/profile-type.js';
import { busiest } from '../ui/src/loader.js';
import { emptyReason, emptySideMessage, failureMessage, isAbort, noDataMessage, noServicesMessage } from '../ui/src/messages.js';
import { basePatch } from '../ui/src/ranges.js';
import { defaultState, type ViewState } from '../ui/src/state.js';
import { matchText, summaryParts } from '../ui/src/summary.js';
import { formatRange, formatTime } from '../ui/src/time.js';
import { diffRows } from '../ui/src/top.js';

const NOW = Date.UTC(2026, 2, 15, 12, 30, 0);
const MIN = 60_000;
const view = (patch: Partial<ViewState> = {}): ViewState => ({ ...defaultState(), service: 'shop', ...patch });
const service = (name: string, samples: number, lastSeen = NOW - 5 * 3_600_000): ServiceInfo => ({ name, profiles: 1, samples, firstSeen: lastSeen - 1000, lastSeen, types: [CPU_TYPE_ID] });

function single(total: number, patch: Partial<FlamegraphResponse> = {}): FlameData {
  return {
    kind: 'single',
    resp: { service: 'shop', type: CPU_TYPE_ID, unit: 'count', scale: 1, from: NOW - 3_600_000, to: NOW, filters: [], granularity: 'function', total, nodes: 3, fullNodes: 3, maxNodes: 8192, root: { name: 'root', value: total, self: 0, children: [] }, ...patch },
  };
}

function diff(base: number, comparison: number, patch: Partial<DiffResponse> = {}): FlameData {
  const side = (total: number, from: number) => ({ from, to: from + 3_600_000, filters: [], total });
  return {
    kind: 'diff',
    resp: {
      service: 'shop',
      type: CPU_TYPE_ID,
      unit: 'count',
      scale: 1,
      granularity: 'function',
      base: side(base, NOW - 7_200_000),
      comparison: side(comparison, NOW - 3_600_000),
      baseScale: base ? comparison / base : 0,
      nodes: 3,
      fullNodes: 3,
      maxNodes: 8192,
      root: { name: 'root', value: 0, delta: 0, base, comparison, baseShare: 1, comparisonShare: 1, children: [] },
      ...patch,
    },
  };
}

describe('empty graphs', () => {
  it('say which side is empty', () => {
    expect(emptyReason(single(10))).toBeUndefined();
    expect(emptyReason(single(0))).toBe('no-data');
    expect(emptyReason(diff(5, 7))).toBeUndefined();
    expect(emptyReason(diff(0, 0))).toBe('no-data');
    expect(emptyReason(diff(0, 7))).toBe('no-base');
    expect(emptyReason(diff(5, 0))).toBe('no-comparison');
  });

  it('no services: how to send some, with this Kiln’s address, and Refresh', () => {
    const m = noServicesMessage('https://kiln.example/prefix');
    expect(m.kind).toBe('no-services');
    expect(m.blocks).toContainEqual({ code: 'kiln agent --server https://kiln.example/prefix' });
    expect(m.blocks).toContainEqual({ code: "curl --data-binary @profile.pb.gz 'https://kiln.example/prefix/api/v1/profiles?service=NAME'" });
    expect(m.actions).toEqual([{ label: 'Refresh', run: 'retry' }]);
  });

  it('no data in range: where the latest profile is, and buttons that go there', () => {
    const last = NOW - 5 * 3_600_000;
    const m = noDataMessage(view(), [service('shop', 10, last)], NOW);
    expect(m.kind).toBe('no-data');
    expect(m.blocks[0]).toBe(
      `No samples for shop between ${formatRange({ from: NOW - 3_600_000, to: NOW })}. Pick a wider range (24 h or 7 d); its latest profile is from ${formatTime(last)}.`,
    );
    expect(m.actions).toEqual([
      { label: 'Show the hour around the latest profile', run: { from: new Date(last - 45 * MIN).toISOString().replace('.000Z', 'Z'), to: new Date(last + 15 * MIN).toISOString().replace('.000Z', 'Z'), zoom: [] } },
      { label: 'Last 7 days', run: { from: 'now-7d', to: 'now' } },
    ]);
    // Already on the last 7 days: not offered again.
    expect(noDataMessage(view({ from: 'now-7d' }), [service('shop', 10, last)], NOW).actions.map((a) => a.label)).toEqual(['Show the hour around the latest profile']);
  });

  it('no data with label filters: says so and offers to remove them, on every side of a diff', () => {
    const m = noDataMessage(view({ mode: 'diff', baseLabels: ['v=1'] }), [service('shop', 10)], NOW);
    expect(m.blocks[0]).toMatch(/with these label filters\. Pick a wider range \(24 h or 7 d\) or remove the label filters;/);
    expect(m.actions.at(-1)).toEqual({ label: 'Remove label filters', run: { labels: [], baseLabels: [], comparisonLabels: [] } });
    // Base labels do not filter a single graph.
    expect(noDataMessage(view({ baseLabels: ['v=1'] }), [service('shop', 10)], NOW).blocks[0]).not.toMatch(/label filters/);
  });

  it('no data for a service the list does not know: pick another, nothing to jump to', () => {
    const m = noDataMessage(view({ service: 'gone' }), [service('shop', 10)], NOW);
    expect(m.blocks[0]).toMatch(/^No samples for gone between .*This service has no profiles in the last 30 days; pick another service above\.$/);
    expect(m.actions).toEqual([]);
    expect(noDataMessage(view({ service: 'gone' }), undefined, NOW).actions).toEqual([]);
  });

  it('an empty base offers the previous period; an empty comparison offers nothing', () => {
    const s = view({ mode: 'diff', baseFrom: '2020-01-01T00:00:00Z', baseTo: '2020-01-01T01:00:00Z' });
    const d = diff(0, 7);
    const m = emptySideMessage('no-base', d, s, NOW);
    expect(m.kind).toBe('no-base');
    expect(m.blocks[0]).toContain(`The base (${formatRange(d.kind === 'diff' ? d.resp.base : { from: 0, to: 0 })}) has no samples`);
    expect(m.actions).toEqual([{ label: 'Use the previous period as base', run: basePatch('prev', s, NOW) }]);
    expect(m.actions[0]!.run).toEqual({ baseFrom: 'now-2h', baseTo: 'now-1h' });
    const c = emptySideMessage('no-comparison', diff(5, 0), s, NOW);
    expect(c.blocks[0]).toMatch(/^The comparison \(.+\) has no samples.*Choose a comparison range that has data/);
    expect(c.actions).toEqual([]);
  });
});

describe('failures', () => {
  const api = 'http://kiln.test/api/v1/';

  it('unreachable: where the API was looked for, why, and Retry', () => {
    const m = failureMessage(new ApiFailure('unreachable', `${api}flamegraph`, 'Failed to fetch'), api);
    expect(m.kind).toBe('unreachable');
    expect(m.blocks[0]).toBe(`Cannot reach the Kiln API at ${api} (Failed to fetch). Check that kiln serve is running and that this browser can reach it, then press Retry.`);
    expect(m.actions).toEqual([{ label: 'Retry', run: 'retry' }]);
  });

  it('an HTTP error: the server’s words and what to do about that status', () => {
    const hint = (status: number): string => failureMessage(new ApiFailure('http', api, 'bad range', status, 'from after to'), api).blocks[0] as string;
    expect(hint(400)).toBe('The query failed: 400 bad range (from after to). Check the time range and the label filters.');
    expect(hint(401)).toMatch(/^The query failed: 401 .*needs a read token/);
    expect(hint(503)).toMatch(/store is not answering/);
    expect(hint(500)).toMatch(/server error: the kiln serve log has the details/);
    expect(failureMessage(new ApiFailure('http', api, 'the answer from top is not JSON'), api).blocks[0]).toMatch(/^The query failed: the answer from top is not JSON\. /);
  });

  it('anything else thrown: said as it is, with Retry', () => {
    expect(failureMessage(new TypeError('x is undefined'), api)).toEqual({
      kind: 'error',
      blocks: ['Something went wrong drawing this view: x is undefined. Press Retry, or reload the page.'],
      actions: [{ label: 'Retry', run: 'retry' }],
    });
    expect(failureMessage('a string', api).blocks[0]).toMatch(/went wrong drawing this view: a string\./);
  });

  it('a cancelled load is not a failure', () => {
    const ctl = new AbortController();
    expect(isAbort(new Error('x'), ctl.signal)).toBe(false);
    expect(isAbort(new DOMException('aborted', 'AbortError'), ctl.signal)).toBe(true);
    ctl.abort();
    expect(isAbort(new Error('x'), ctl.signal)).toBe(true);
  });
});

describe('the lines around the graph', () => {
  const seconds: Measure = { unit: 'nanoseconds', noun: 'CPU time', scale: 1 };
  // CPU time as the API gives it: sample counts worth a 10 ms period each.
  const counted: Measure = { unit: 'nanoseconds', noun: 'CPU time', scale: 1e7 };

  it('summary of a single graph: total in its unit, service and range, filters, pruning', () => {
    const g = single(1234, { filters: [{ name: 'host', op: '=', values: ['web-1', 'web-2'] }, { name: 'region', op: '!=', values: ['eu'] }], nodes: 100, fullNodes: 250 });
    expect(summaryParts(g, 'shop', CPU_SAMPLES)).toEqual([
      { cls: 'total', text: '1,234 samples' },
      { cls: 'muted', text: `shop, ${formatRange({ from: NOW - 3_600_000, to: NOW })}` },
      { cls: 'muted', text: 'host=web-1|web-2, region≠eu' },
      { cls: 'muted', text: '100 of 250 frames (the smallest merged into [other])' },
    ]);
    expect(summaryParts(single(1.5e9), 'shop', seconds)[0]).toEqual({ cls: 'total', text: '1.5 s' });
    expect(summaryParts(single(150), 'shop', counted)[0]).toEqual({ cls: 'total', text: '1.5 s' });
    expect(summaryParts(single(5), 'shop', CPU_SAMPLES)).toHaveLength(2);
  });

  it('summary of a diff: both totals in their unit', () => {
    expect(summaryParts(diff(1000, 2500), 'shop', CPU_SAMPLES)[0]).toEqual({ cls: 'total', text: 'base 1,000 → comparison 2,500 samples' });
    expect(summaryParts(diff(1e9, 2.5e9), 'shop', seconds)[0]).toEqual({ cls: 'total', text: 'base 1 s → comparison 2.5 s' });
    expect(summaryParts(diff(100, 250), 'shop', counted)[0]).toEqual({ cls: 'total', text: 'base 1 s → comparison 2.5 s' });
    expect(summaryParts(diff(1, 2, { nodes: 10, fullNodes: 11 }), 'shop', CPU_SAMPLES).at(-1)).toEqual({ cls: 'muted', text: '10 of 11 frames' });
  });

  it('search status: frames, share of the total and the value in its unit', () => {
    expect(matchText('“run”', { frames: 1, value: 600, share: 0.6 }, CPU_SAMPLES)).toBe('“run”: 1 frame, 60.0 % of samples (600)');
    expect(matchText('/^c$/', { frames: 3, value: 2.5e9, share: 0.1 }, seconds)).toBe('/^c$/: 3 frames, 10.0 % of CPU time (2.5 s)');
    expect(matchText('/^c$/', { frames: 3, value: 250, share: 0.1 }, counted)).toBe('/^c$/: 3 frames, 10.0 % of CPU time (2.5 s)');
    expect(matchText('b', { frames: 2, value: 30, share: 0.3, baseValue: 10, baseShare: 0.1 }, CPU_SAMPLES)).toBe('b: 2 frames, base 10.0 % → comparison 30.0 % of samples');
    expect(matchText('“zzz”', { frames: 0, value: 0, share: 0 }, CPU_SAMPLES)).toBe('“zzz”: no frame matches.');
  });
});

describe('loading and the diff table', () => {
  it('the page opens on the busiest service (the first of equals), or none when there is none', () => {
    expect(busiest([service('a', 5), service('b', 9), service('c', 9)])?.name).toBe('b');
    expect(busiest([])).toBeUndefined();
  });

  it('a diff’s table joins both sides by function (name and file), a missing side counting as 0', () => {
    const entry = (name: string, file: string, self: number, total: number): TopEntry => ({ name, file, line: 1, self, total, selfShare: self / 100, totalShare: total / 100 });
    const top = (functions: TopEntry[]): TopResponse => ({ service: 'shop', type: CPU_TYPE_ID, unit: 'count', scale: 1, from: 0, to: 1, filters: [], granularity: 'function', total: 100, sort: 'self', order: 'desc', count: functions.length, functions });
    const rows = diffRows(
      top([entry('a', '/x.py', 60, 60), entry('c', '/x.py', 10, 10), entry('gone', '/x.py', 5, 5), entry('a', '/other.py', 1, 1)]),
      top([entry('a', '/x.py', 40, 40), entry('c', '/x.py', 30, 30), entry('new', '/x.py', 2, 2)]),
    );
    const byKey = new Map(rows.map((r) => [`${r.name}@${r.file}`, r]));
    expect(rows).toHaveLength(5);
    expect(byKey.get('a@/x.py')).toMatchObject({ baseSelfShare: 0.6, compSelfShare: 0.4 });
    expect(byKey.get('a@/x.py')!.dself).toBeCloseTo(-0.2, 12);
    expect(byKey.get('c@/x.py')!.dtotal).toBeCloseTo(0.2, 12);
    expect(byKey.get('gone@/x.py')).toMatchObject({ compSelfShare: 0, compTotalShare: 0, dself: -0.05 });
    expect(byKey.get('new@/x.py')).toMatchObject({ baseSelfShare: 0, baseTotalShare: 0, dself: 0.02 });
    expect(byKey.get('a@/other.py')).toMatchObject({ baseSelfShare: 0.01, compSelfShare: 0, dself: -0.01 });
  });
});
