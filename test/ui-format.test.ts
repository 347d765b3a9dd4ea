/** ui/src/format.ts: values in their unit (time, bytes, counts), shares and changes in share. */
import { describe, expect, it } from 'vitest';
import { CPU_SAMPLES, amount, amountOf, count, measureOf, measureOfType, percent, pp, typeLabel, value, type Measure } from '../ui/src/format.js';

describe('counts, shares and changes', () => {
  it('counts are whole, with thousands separators', () => {
    expect(count(0)).toBe('0');
    expect(count(999)).toBe('999');
    expect(count(1234567)).toBe('1,234,567');
    expect(count(1234.6)).toBe('1,235');
  });

  it('shares get one decimal, two below 1 %, and zero says 0 %', () => {
    expect(percent(0)).toBe('0 %');
    expect(percent(1)).toBe('100.0 %');
    expect(percent(0.6012)).toBe('60.1 %');
    expect(percent(0.0099)).toBe('0.99 %');
    expect(percent(0.00001)).toBe('0.00 %');
  });

  it('changes in share carry their sign, and a change that rounds to nothing is ±0', () => {
    expect(pp(0.2)).toBe('+20.0 pp');
    expect(pp(-0.2)).toBe('−20.0 pp');
    expect(pp(0.005)).toBe('+0.50 pp');
    expect(pp(-0.00004)).toBe('±0 pp');
    expect(pp(0)).toBe('±0 pp');
  });
});

describe('values in their unit', () => {
  it('time: the largest unit that gives at least 1, three significant digits', () => {
    const cases: [number, string][] = [
      [0, '0 ns'],
      [999, '999 ns'],
      [1500, '1.5 µs'],
      [1e6, '1 ms'],
      [12.345e6, '12.3 ms'],
      [123.4e6, '123 ms'],
      [1.5e9, '1.5 s'],
      [90e9, '1.5 min'],
      [3600e9, '1 h'],
      [36 * 3600e9, '1.5 d'],
      [-2.5e9, '-2.5 s'],
    ];
    for (const [ns, text] of cases) expect(amount(ns, 'nanoseconds'), String(ns)).toBe(text);
  });

  it('time and bytes round up into the next unit rather than print 1000 of one', () => {
    expect(amount(999.7e6, 'nanoseconds')).toBe('1 s');
    expect(amount(59.999e9, 'nanoseconds')).toBe('1 min');
    expect(amount(1023.9 * 1024, 'bytes')).toBe('1 MiB');
  });

  it('bytes: binary units', () => {
    const cases: [number, string][] = [
      [0, '0 B'],
      [512, '512 B'],
      [1024, '1 KiB'],
      [1536, '1.5 KiB'],
      [2 ** 20, '1 MiB'],
      [5.25 * 2 ** 30, '5.25 GiB'],
      [3 * 2 ** 40, '3 TiB'],
    ];
    for (const [b, text] of cases) expect(amount(b, 'bytes'), String(b)).toBe(text);
  });

  it('counts: whole numbers; as a phrase they say what they count', () => {
    expect(amount(1234, 'count')).toBe('1,234');
    expect(value(1234, CPU_SAMPLES)).toBe('1,234 samples');
    expect(value(1, { unit: 'count', noun: 'allocated objects', scale: 1 })).toBe('1 allocated objects');
  });

  it('time and bytes as a phrase are just the amount', () => {
    const cpu: Measure = { unit: 'nanoseconds', noun: 'CPU time', scale: 1 };
    expect(value(1.5e9, cpu)).toBe('1.5 s');
    expect(value(2 ** 20, { unit: 'bytes', noun: 'in-use bytes', scale: 1 })).toBe('1 MiB');
  });

  it('a scaled value is printed as its amount: 150 samples of 10 ms are 1.5 s', () => {
    const sampled: Measure = { unit: 'nanoseconds', noun: 'CPU time', scale: 1e7 };
    expect(value(150, sampled)).toBe('1.5 s');
    expect(amountOf(150, sampled)).toBe('1.5 s');
    expect(amountOf(3, { unit: 'count', noun: 'samples', scale: 1 })).toBe('3');
  });
});

describe('measures of Pyroscope profile types', () => {
  it('take the unit from the sample unit and a noun from the sample type', () => {
    const cases: [string, Omit<Measure, 'scale'>][] = [
      ['process_cpu:cpu:nanoseconds:cpu:nanoseconds', { unit: 'nanoseconds', noun: 'CPU time' }],
      ['process_cpu:samples:count:cpu:nanoseconds', { unit: 'count', noun: 'samples' }],
      ['wall:wall:nanoseconds:wall:nanoseconds', { unit: 'nanoseconds', noun: 'wall time' }],
      ['memory:inuse_space:bytes:space:bytes', { unit: 'bytes', noun: 'in-use bytes' }],
      ['memory:alloc_space:bytes:space:bytes', { unit: 'bytes', noun: 'allocated bytes' }],
      ['memory:alloc_objects:count:space:bytes', { unit: 'count', noun: 'allocated objects' }],
      ['block:delay:nanoseconds:contentions:count', { unit: 'nanoseconds', noun: 'delay' }],
      ['goroutine:goroutine_count:count:goroutine:count', { unit: 'count', noun: 'goroutine count' }],
      ['x:constructor:count::', { unit: 'count', noun: 'constructor' }],
    ];
    for (const [id, m] of cases) expect(measureOfType(id), id).toEqual({ ...m, scale: 1 });
  });

  it('read a malformed or empty ID as a count of samples', () => {
    for (const id of ['', 'cpu', 'x:y:parsecs', 'a:b:c:d:e:f']) expect(measureOfType(id), id).toEqual(CPU_SAMPLES);
  });

  it("take an API answer's unit and scale, and call counts of a sampled time samples", () => {
    const cpu = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
    expect(measureOf({ type: cpu, unit: 'nanoseconds', scale: 1e7 })).toEqual({ unit: 'nanoseconds', noun: 'CPU time', scale: 1e7 });
    expect(measureOf({ type: cpu, unit: 'count', scale: 1 })).toEqual({ unit: 'count', noun: 'samples', scale: 1 });
    expect(measureOf({ type: 'memory:inuse_space:bytes:space:bytes', unit: 'bytes', scale: 1 })).toEqual({ unit: 'bytes', noun: 'in-use bytes', scale: 1 });
  });

  it('name types for the picker', () => {
    expect(typeLabel('process_cpu:cpu:nanoseconds:cpu:nanoseconds')).toBe('CPU time');
    expect(typeLabel('memory:inuse_space:bytes:space:bytes')).toBe('in-use bytes');
    expect(typeLabel('mutex:delay:nanoseconds:contentions:count')).toBe('mutex: delay');
    expect(typeLabel('not a type')).toBe('not a type');
  });
});
