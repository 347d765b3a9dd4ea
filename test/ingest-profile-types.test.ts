/** Which series a pushed pprof becomes (ingest/profile-types.ts), for the shapes real clients send. */

import { describe, expect, it } from 'vitest';
import { parseSampleTypeConfig, seriesOf, type PprofTypes } from '../ingest/profile-types.js';
import { CPU_TYPE_ID } from '../profile/profile-type.js';
import { DEFAULT_LIMITS, HttpError } from '../ingest/limits.js';
import { readPprof } from '../ingest/pprof-read.js';
import { readIngestRows } from '../ingest/rowbinary.js';
import { RowBuilder } from '../ingest/rows.js';
import { goHeapPprof } from '../kit/pprof-shapes.js';

const vt = (s: string): { type: string; unit: string } => {
  const [type = '', unit = ''] = s.split('/');
  return { type, unit };
};
const pprof = (types: string[], period: string, n: number): PprofTypes => ({ sampleTypes: types.map(vt), periodType: vt(period), period: n });
const GO_HEAP = pprof(['alloc_objects/count', 'alloc_space/bytes', 'inuse_objects/count', 'inuse_space/bytes'], 'space/bytes', 524288);
const GO_HEAP_CONFIG = parseSampleTypeConfig(
  JSON.stringify({
    alloc_objects: { units: 'objects' },
    alloc_space: { units: 'bytes' },
    inuse_space: { units: 'bytes', aggregation: 'average' },
    inuse_objects: { units: 'objects', aggregation: 'average' },
  }),
);

describe('profile types of a pprof', () => {
  it("Kiln's own, Go's and Node's CPU-like profiles: one series of counts at the pprof's period", () => {
    const kiln = seriesOf(pprof(['samples/count', 'cpu/nanoseconds'], 'cpu/nanoseconds', 10_000_000));
    expect(kiln).toEqual([{ type: CPU_TYPE_ID, index: 0, mode: 'count', scale: 1, periodNs: 10_000_000 }]);
    // The SDK's sampleRate (17 Hz from @pyroscope/nodejs) does not override the pprof's own period.
    const nodeWall = seriesOf(pprof(['samples/count', 'wall/nanoseconds'], 'wall/nanoseconds', 10_353_000), { fallbackPeriodNs: 1e9 / 17 });
    expect(nodeWall).toEqual([{ type: 'wall:wall:nanoseconds:wall:nanoseconds', index: 0, mode: 'count', scale: 1, periodNs: 10_353_000 }]);
    // A time alone, in microseconds: divided by the period into counts.
    const micros = seriesOf(pprof(['cpu/microseconds'], 'cpu/microseconds', 10_000));
    expect(micros).toEqual([{ type: CPU_TYPE_ID, index: 0, mode: 'timed', scale: 1000, periodNs: 10_000_000 }]);
    // Folded text has no period: the client's rate is the fallback.
    expect(seriesOf(pprof(['samples/count', 'cpu/nanoseconds'], 'cpu/nanoseconds', 0), { fallbackPeriodNs: 1e7 })[0]?.periodNs).toBe(1e7);
  });

  it("Go's heap: four series of values with their units, whether or not sample_type_config lists them", () => {
    const expected = ['memory:alloc_objects:count:space:bytes', 'memory:alloc_space:bytes:space:bytes', 'memory:inuse_objects:count:space:bytes', 'memory:inuse_space:bytes:space:bytes'];
    for (const config of [undefined, GO_HEAP_CONFIG]) {
      const s = seriesOf(GO_HEAP, config ? { config } : {});
      expect(s.map((x) => x.type)).toEqual(expected);
      expect(s.map((x) => [x.index, x.mode, x.scale, x.periodNs])).toEqual([0, 1, 2, 3].map((i) => [i, 'value', 1, 0]));
    }
    // A config that lists two of them stores two.
    const two = parseSampleTypeConfig('{"inuse_space":{"units":"bytes"},"alloc_space":{"units":"bytes"}}');
    expect(seriesOf(GO_HEAP, { config: two }).map((x) => x.type)).toEqual([expected[1], expected[3]]);
  });

  it("Go's mutex and block profiles are told apart by their display names; __name__ wins over everything", () => {
    const contention = pprof(['contentions/count', 'delay/nanoseconds'], 'contentions/count', 1);
    const mutex = parseSampleTypeConfig('{"contentions":{"display-name":"mutex_count","units":"lock_samples"},"delay":{"display-name":"mutex_duration","units":"lock_nanoseconds"}}');
    const block = parseSampleTypeConfig('{"contentions":{"display-name":"block_count"},"delay":{"display-name":"block_duration"}}');
    expect(seriesOf(contention, { config: mutex }).map((x) => x.type)).toEqual(['mutex:contentions:count:contentions:count', 'mutex:delay:nanoseconds:contentions:count']);
    expect(seriesOf(contention, { config: block }).map((x) => x.type)).toEqual(['block:contentions:count:contentions:count', 'block:delay:nanoseconds:contentions:count']);
    expect(seriesOf(GO_HEAP, { name: 'heap' })[0]?.type).toBe('heap:alloc_objects:count:space:bytes');
  });

  it("Node's heap: objects and bytes; a samples/count without a period stays a CPU sample count", () => {
    const node = seriesOf(pprof(['inuse_objects/count', 'inuse_space/bytes'], 'inuse_space/bytes', 524288));
    expect(node.map((x) => x.type)).toEqual(['memory:inuse_objects:count:inuse_space:bytes', 'memory:inuse_space:bytes:inuse_space:bytes']);
    expect(seriesOf(pprof(['samples/count'], '/', 0))).toEqual([{ type: CPU_TYPE_ID, index: 0, mode: 'count', scale: 1, periodNs: 0 }]);
    expect(seriesOf(pprof([], 'cpu/nanoseconds', 1e7))).toEqual([{ type: CPU_TYPE_ID, index: -1, mode: 'count', scale: 1, periodNs: 1e7 }]);
  });

  it('odd names are made safe for an ID, and a config naming nothing gives no series', () => {
    const odd = seriesOf(pprof(['we:ird type/count'], 'x/y', 0));
    expect(odd.map((x) => x.type)).toEqual(['we_ird_type:we_ird_type:count:x:y']);
    expect(seriesOf(GO_HEAP, { config: parseSampleTypeConfig('{"nothing":{}}') })).toEqual([]);
  });

  it('refuses a malformed sample_type_config', () => {
    for (const bad of ['[]', 'null', '{"a":1}', '{"a":{"units":5}}', '{"a":{"sampled":"yes"}}', 'nope', `{"${'x'.repeat(300)}":{}}`]) {
      expect(() => parseSampleTypeConfig(bad), bad).toThrow(HttpError);
    }
    expect(parseSampleTypeConfig('{"__proto__":{"units":"bytes"}}')['__proto__']).toEqual({ units: 'bytes' });
  });
});

describe('rows of a multi-type pprof', () => {
  it('one group per type: its own sample rows (values as given, zeros left out) and profile row', () => {
    const bytes = goHeapPprof([
      { stack: ['main', 'alloc'], values: [3, 3 * 2 ** 33, 0, 0] },
      { stack: ['main', 'cache'], values: [1, 4096, 1, 4096] },
    ]);
    const r = new RowBuilder(DEFAULT_LIMITS, 30).build(readPprof(bytes, DEFAULT_LIMITS), {
      service: 'go',
      series: { host: 'h' },
      source: 'pyroscope-pprof',
      format: 'pprof',
      key: '7',
      now: Date.now(),
    });
    const rows = readIngestRows(r.data, r.dataRows, 'go');
    const byType = new Map<string, number[]>();
    for (const x of rows) if (x.kind === 0) byType.set(x.type, [...(byType.get(x.type) ?? []), x.value]);
    expect(Object.fromEntries(byType)).toEqual({
      'memory:alloc_objects:count:space:bytes': [3, 1],
      'memory:alloc_space:bytes:space:bytes': [3 * 2 ** 33, 4096],
      'memory:inuse_objects:count:space:bytes': [1],
      'memory:inuse_space:bytes:space:bytes': [4096],
    });
    const profiles = rows.filter((x) => x.kind === 1);
    expect(profiles.map((x) => [x.type, x.samples, x.rows, x.periodNs, x.key])).toEqual([
      ['memory:alloc_objects:count:space:bytes', 4n, 2, 0n, '7'],
      ['memory:alloc_space:bytes:space:bytes', BigInt(3 * 2 ** 33 + 4096), 2, 0n, '7'],
      ['memory:inuse_objects:count:space:bytes', 1n, 1, 0n, '7'],
      ['memory:inuse_space:bytes:space:bytes', 4096n, 1, 0n, '7'],
    ]);
    expect(r.response.types.map((t) => t.type)).toEqual(profiles.map((x) => x.type));
    expect(r.dataRows).toBe(rows.length);
  });
});
