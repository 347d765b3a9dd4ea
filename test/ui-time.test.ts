/**
 * ui/src/time.ts: the time grammar as the page reads it (the server's, from
 * ingest/time-grammar.ts), relative and absolute forms, derived ranges, and
 * the local-time strings the page shows. Local-time expectations are built
 * with Date's own local getters, so they hold in any time zone.
 */
import { describe, expect, it } from 'vitest';
import {
  absolute,
  formatRange,
  formatTime,
  fromLocalInput,
  isRelative,
  parseTime,
  relative,
  resolve,
  shifted,
  span,
  toLocalInput,
} from '../ui/src/time.js';

const NOW = Date.UTC(2026, 2, 15, 12, 30, 0); // 2026-03-15T12:30:00Z
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe('parseTime', () => {
  it('reads now and now±N for every unit', () => {
    expect(parseTime('now', NOW)).toBe(NOW);
    const cases: [string, number][] = [
      ['now-500ms', -500],
      ['now-30s', -30_000],
      ['now-15m', -15 * MIN],
      ['now-1h', -HOUR],
      ['now-24h', -DAY],
      ['now-7d', -7 * DAY],
      ['now-2w', -14 * DAY],
      ['now-1M', -30 * DAY],
      ['now-1y', -365 * DAY],
      ['now+1d', DAY],
    ];
    for (const [text, offset] of cases) expect(parseTime(text, NOW), text).toBe(NOW + offset);
  });

  it('takes spaces around and inside a relative time', () => {
    expect(parseTime('  now - 1h  ', NOW)).toBe(NOW - HOUR);
  });

  it('tells m (minutes) from M (months), and refuses units it does not know', () => {
    expect(parseTime('now-1m', NOW)).toBe(NOW - MIN);
    expect(parseTime('now-1M', NOW)).toBe(NOW - 30 * DAY);
    for (const bad of ['now-1H', 'now-1 hour', 'now-h', 'now-1.5h', 'now1h', 'nowish', 'yesterday', '-1h']) expect(parseTime(bad, NOW), bad).toBeUndefined();
  });

  it('reads Unix time in seconds, milliseconds, microseconds and nanoseconds by magnitude', () => {
    const t = Date.UTC(2023, 10, 14, 22, 13, 20); // 1700000000 s
    expect(parseTime('1700000000', NOW)).toBe(t);
    expect(parseTime('1700000000.5', NOW)).toBe(t + 500);
    expect(parseTime('1700000000000', NOW)).toBe(t);
    expect(parseTime('1700000000000000', NOW)).toBe(t);
    expect(parseTime('1700000000000000000', NOW)).toBe(t);
    expect(parseTime('0', NOW)).toBe(0);
  });

  it('reads RFC 3339 with a zone, a fraction or an offset, and a bare date as UTC midnight', () => {
    expect(parseTime('2026-03-15T12:30:00Z', NOW)).toBe(NOW);
    expect(parseTime('2026-03-15t12:30:00z', NOW)).toBe(NOW);
    expect(parseTime('2026-03-15 12:30:00Z', NOW)).toBe(NOW);
    expect(parseTime('2026-03-15T12:30Z', NOW)).toBe(NOW);
    expect(parseTime('2026-03-15T12:30:00.250Z', NOW)).toBe(NOW + 250);
    expect(parseTime('2026-03-15T14:30:00+02:00', NOW)).toBe(NOW);
    expect(parseTime('2026-03-15T07:30:00-0500', NOW)).toBe(NOW);
    expect(parseTime('2026-03-15', NOW)).toBe(Date.UTC(2026, 2, 15));
  });

  it('gives undefined for what it cannot read: empty, absent, no zone, impossible dates, garbage', () => {
    for (const bad of [undefined, '', '   ', '2026-03-15T12:30:00', '2026-13-45T00:00:00Z', '15/03/2026', '1e12', '-1700000000', '0x10', '１２３']) {
      expect(parseTime(bad, NOW), String(bad)).toBeUndefined();
    }
  });
});

describe('relative and absolute forms', () => {
  it('isRelative knows now and now-N, with spaces around', () => {
    for (const r of ['now', 'now-1h', ' now-7d ', 'now+5m']) expect(isRelative(r), r).toBe(true);
    for (const a of ['2026-03-15T12:30:00Z', '1700000000', '', 'now-', 'Now']) expect(isRelative(a), a).toBe(false);
  });

  it('relative() picks the largest unit that divides the offset, and reads back to the same time', () => {
    const cases: [number, string][] = [
      [0, 'now'],
      [-5 * MIN, 'now'],
      [30_000, 'now-30s'],
      [15 * MIN, 'now-15m'],
      [90 * MIN, 'now-90m'],
      [HOUR, 'now-1h'],
      [25 * HOUR, 'now-25h'],
      [DAY, 'now-1d'],
      [7 * DAY, 'now-1w'],
      [8 * DAY, 'now-8d'],
      [1500, 'now-1500ms'],
    ];
    for (const [offset, text] of cases) {
      expect(relative(offset), String(offset)).toBe(text);
      if (offset >= 0) expect(parseTime(text, NOW)).toBe(NOW - offset);
    }
  });

  it('absolute() writes RFC 3339 to the second, which reads back', () => {
    expect(absolute(NOW)).toBe('2026-03-15T12:30:00Z');
    expect(absolute(NOW + 499)).toBe('2026-03-15T12:30:00Z');
    expect(absolute(NOW + 500)).toBe('2026-03-15T12:30:01Z');
    for (const t of [0, NOW, NOW + 1234, Date.UTC(1999, 11, 31, 23, 59, 59)]) expect(parseTime(absolute(t), NOW)).toBe(Math.round(t / 1000) * 1000);
  });
});

describe('ranges', () => {
  it('resolve() reads both ends, defaulting to the hour before the end', () => {
    expect(resolve({ from: 'now-24h', to: 'now' }, NOW)).toEqual({ from: NOW - DAY, to: NOW });
    expect(resolve({ from: 'garbage', to: 'now-1h' }, NOW)).toEqual({ from: NOW - 2 * HOUR, to: NOW - HOUR });
    expect(resolve({ from: 'now-3h', to: 'garbage' }, NOW)).toEqual({ from: NOW - 3 * HOUR, to: NOW });
  });

  it('shifted() keeps a relative range relative and an absolute one absolute', () => {
    expect(shifted({ from: 'now-1h', to: 'now' }, HOUR, NOW)).toEqual({ from: 'now-2h', to: 'now-1h' });
    expect(shifted({ from: 'now-24h', to: 'now' }, 7 * DAY, NOW)).toEqual({ from: 'now-8d', to: 'now-1w' });
    expect(shifted({ from: '2026-03-15T10:00:00Z', to: '2026-03-15T11:00:00Z' }, DAY, NOW)).toEqual({
      from: '2026-03-14T10:00:00Z',
      to: '2026-03-14T11:00:00Z',
    });
    // Mixed: pinned to absolute times, so both ends move together.
    expect(shifted({ from: '2026-03-15T11:30:00Z', to: 'now' }, HOUR, NOW)).toEqual({ from: '2026-03-15T10:30:00Z', to: '2026-03-15T11:30:00Z' });
  });

  it('shifted() leaves a range it cannot read as it is', () => {
    const bad = { from: 'garbage', to: 'now' };
    expect(shifted(bad, HOUR, NOW)).toBe(bad);
  });

  it('span() says a length in words', () => {
    const cases: [number, string][] = [
      [0, '0 s'],
      [29_000, '29 s'],
      [15 * MIN, '15 min'],
      [59 * MIN, '59 min'],
      [HOUR, '1 h'],
      [90 * MIN, '1 h 30 min'],
      [DAY, '24 h'],
      [36 * HOUR, '36 h'],
      [2 * DAY, '2 d'],
      [49 * HOUR, '49 h'],
      [7 * DAY, '7 d'],
    ];
    for (const [ms, text] of cases) expect(span(ms), String(ms)).toBe(text);
  });
});

describe('local time on the page', () => {
  const two = (n: number): string => String(n).padStart(2, '0');
  const local = (ms: number): { date: string; hm: string; s: number } => {
    const d = new Date(ms);
    return { date: `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`, hm: `${two(d.getHours())}:${two(d.getMinutes())}`, s: d.getSeconds() };
  };

  it('formatTime() shows seconds only when there are some, and the date unless told not to', () => {
    const l = local(NOW);
    expect(formatTime(NOW)).toBe(`${l.date} ${l.hm}`);
    expect(formatTime(NOW, false)).toBe(l.hm);
    const withSeconds = local(NOW + 7000);
    expect(formatTime(NOW + 7000)).toBe(`${withSeconds.date} ${withSeconds.hm}:07`);
  });

  it('formatRange() leaves the date off the end when both ends are on one day', () => {
    const from = new Date(2026, 2, 15, 9, 0).getTime();
    expect(formatRange({ from, to: from + HOUR })).toBe(`${formatTime(from)} – ${formatTime(from + HOUR, false)}`);
    expect(formatRange({ from, to: from + DAY })).toBe(`${formatTime(from)} – ${formatTime(from + DAY)}`);
  });

  it('datetime-local values round-trip to the minute, and bad ones read as undefined', () => {
    const t = new Date(2026, 0, 5, 7, 8).getTime();
    expect(toLocalInput(t)).toBe('2026-01-05T07:08');
    expect(fromLocalInput(toLocalInput(t))).toBe(t);
    expect(fromLocalInput(toLocalInput(t + 59_999))).toBe(t);
    expect(fromLocalInput('')).toBeUndefined();
    expect(fromLocalInput('not a date')).toBeUndefined();
  });
});
