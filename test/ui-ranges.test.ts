/** ui/src/ranges.ts: presets, the diff base choices, mode and service switches, pinned links. */
import { describe, expect, it } from 'vitest';
import { baseChoice, basePatch, baseRange, modePatch, pinned, presetOf, presetPatch, servicePatch, type BaseChoice } from '../ui/src/ranges.js';
import { defaultState, parseState, serializeState, type ViewState } from '../ui/src/state.js';

const NOW = Date.UTC(2026, 2, 15, 12, 30, 0);
const HOUR = 3_600_000;

const view = (patch: Partial<ViewState>): ViewState => ({ ...defaultState(), service: 'shop', ...patch });

describe('presets', () => {
  it('a range ending now on a preset is that preset; anything else is custom', () => {
    expect(presetOf(view({}))).toBe('now-1h');
    expect(presetOf(view({ from: 'now-7d' }))).toBe('now-7d');
    expect(presetOf(view({ from: 'now-2h' }))).toBe('custom');
    expect(presetOf(view({ from: 'now-24h', to: 'now-1h' }))).toBe('custom');
    expect(presetOf(view({ from: '2026-03-15T11:30:00Z', to: '2026-03-15T12:30:00Z' }))).toBe('custom');
  });

  it('a preset sets the range to end now', () => {
    expect(presetPatch(view({ from: '2026-03-15T10:00:00Z', to: '2026-03-15T11:00:00Z' }), 'now-24h', NOW)).toEqual({ from: 'now-24h', to: 'now' });
  });

  it('in a diff, a base derived from the range follows it; a custom or label-set base stays', () => {
    const prev = view({ mode: 'diff', baseFrom: 'now-2h', baseTo: 'now-1h' });
    expect(presetPatch(prev, 'now-24h', NOW)).toEqual({ from: 'now-24h', to: 'now', baseFrom: 'now-2d', baseTo: 'now-1d' });
    const week = view({ mode: 'diff', baseFrom: 'now-169h', baseTo: 'now-1w' });
    expect(presetPatch(week, 'now-15m', NOW)).toEqual({ from: 'now-15m', to: 'now', baseFrom: 'now-10095m', baseTo: 'now-1w' });
    const custom = view({ mode: 'diff', baseFrom: '2026-01-01T00:00:00Z', baseTo: '2026-01-01T01:00:00Z' });
    expect(presetPatch(custom, 'now-24h', NOW)).toEqual({ from: 'now-24h', to: 'now' });
    expect(presetPatch(view({ mode: 'diff' }), 'now-24h', NOW)).toEqual({ from: 'now-24h', to: 'now' });
  });
});

describe('diff base', () => {
  it('is the range moved back by its length, a day or a week, staying relative', () => {
    const s = view({ from: 'now-1h', to: 'now' });
    expect(baseRange('prev', s, NOW)).toEqual({ from: 'now-2h', to: 'now-1h' });
    expect(baseRange('day', s, NOW)).toEqual({ from: 'now-25h', to: 'now-1d' });
    expect(baseRange('week', s, NOW)).toEqual({ from: 'now-169h', to: 'now-1w' });
  });

  it('moves an absolute range to absolute times', () => {
    const s = view({ from: '2026-03-15T10:00:00Z', to: '2026-03-15T10:30:00Z' });
    expect(baseRange('prev', s, NOW)).toEqual({ from: '2026-03-15T09:30:00Z', to: '2026-03-15T10:00:00Z' });
    expect(baseRange('day', s, NOW)).toEqual({ from: '2026-03-14T10:00:00Z', to: '2026-03-14T10:30:00Z' });
  });

  it('each choice reads back as itself, for relative and absolute ranges', () => {
    for (const range of [{ from: 'now-1h', to: 'now' }, { from: 'now-15m', to: 'now-5m' }, { from: '2026-03-15T10:00:00Z', to: '2026-03-15T10:30:00Z' }]) {
      for (const c of ['prev', 'day', 'week', 'same'] as BaseChoice[]) {
        const s = view({ mode: 'diff', ...range });
        expect(baseChoice({ ...s, ...basePatch(c, s, NOW) }, NOW), `${c} of ${JSON.stringify(range)}`).toBe(c);
      }
    }
  });

  it('a 24 h range one day back is also its previous period, and reads as that', () => {
    const s = view({ mode: 'diff', from: 'now-24h' });
    expect(basePatch('day', s, NOW)).toEqual(basePatch('prev', s, NOW));
    expect(baseChoice({ ...s, ...basePatch('day', s, NOW) }, NOW)).toBe('prev');
  });

  it('a base no choice gives is custom; none is the same range', () => {
    expect(baseChoice(view({ mode: 'diff', baseFrom: 'now-3h', baseTo: 'now-2h' }), NOW)).toBe('custom');
    expect(baseChoice(view({ mode: 'diff', baseFrom: 'now-2h' }), NOW)).toBe('custom');
    expect(baseChoice(view({ mode: 'diff' }), NOW)).toBe('same');
  });

  it('"same" clears the base times and "custom" changes nothing until its form is applied', () => {
    const s = view({ mode: 'diff', baseFrom: 'now-2h', baseTo: 'now-1h' });
    expect(basePatch('same', s, NOW)).toEqual({ baseFrom: undefined, baseTo: undefined });
    expect(basePatch('custom', s, NOW)).toEqual({});
  });
});

describe('mode and service', () => {
  it('diff mode the first time compares with the previous period and resets the table sort', () => {
    const s = view({ sort: 'total', order: 'asc' });
    expect(modePatch(s, 'diff', NOW)).toEqual({ mode: 'diff', sort: undefined, order: undefined, baseFrom: 'now-2h', baseTo: 'now-1h' });
  });

  it('diff mode keeps a base or label sets already chosen', () => {
    expect(modePatch(view({ baseFrom: 'now-9h', baseTo: 'now-8h' }), 'diff', NOW)).toEqual({ mode: 'diff', sort: undefined, order: undefined });
    expect(modePatch(view({ baseLabels: ['host=a'] }), 'diff', NOW)).toEqual({ mode: 'diff', sort: undefined, order: undefined });
  });

  it('back to a single graph, and the mode already on, change what they should', () => {
    expect(modePatch(view({ mode: 'diff', sort: 'dself' }), 'single', NOW)).toEqual({ mode: 'single', sort: undefined, order: undefined });
    expect(modePatch(view({ mode: 'diff' }), 'diff', NOW)).toEqual({});
  });

  it('another service drops what belonged to the old one and keeps the range', () => {
    const s = view({ from: 'now-24h', labels: ['host=a'], baseLabels: ['v=1'], comparisonLabels: ['v=2'], zoom: ['a'], focus: { name: 'f', file: '' }, filter: 'x', search: 'keep' });
    const next = { ...s, ...servicePatch('other') };
    expect(next).toEqual({ ...defaultState(), service: 'other', from: 'now-24h', search: 'keep' });
  });
});

describe('pinned links', () => {
  it('pin relative times to absolute ones at now, and leave absolute ones', () => {
    const p = pinned(view({ from: 'now-1h', to: 'now' }), NOW);
    expect(p.from).toBe('2026-03-15T11:30:00Z');
    expect(p.to).toBe('2026-03-15T12:30:00Z');
    const abs = view({ from: '1700000000', to: '2026-03-15T12:00:00Z' });
    expect(pinned(abs, NOW)).toEqual(abs);
  });

  it('pin both diff sides, and keep everything else of the view', () => {
    const s = view({ mode: 'diff', baseFrom: 'now-2h', baseTo: 'now-1h', comparisonTo: 'now-5m', search: 'a', zoom: ['x'], labels: ['host=a'] });
    const p = pinned(s, NOW);
    expect(p).toEqual({
      ...s,
      from: '2026-03-15T11:30:00Z',
      to: '2026-03-15T12:30:00Z',
      baseFrom: '2026-03-15T10:30:00Z',
      baseTo: '2026-03-15T11:30:00Z',
      comparisonTo: '2026-03-15T12:25:00Z',
    });
    // The link has no relative time left, and reads back as the pinned view.
    const text = serializeState(p);
    expect(text).not.toMatch(/now/);
    expect(parseState(text)).toEqual(p);
  });

  it('the pinned range is the one on screen at that moment', () => {
    const p = pinned(view({ from: 'now-24h', to: 'now-1h' }), NOW);
    expect(Date.parse(p.to) - Date.parse(p.from)).toBe(23 * HOUR);
    expect(Date.parse(p.to)).toBe(NOW - HOUR);
  });
});
