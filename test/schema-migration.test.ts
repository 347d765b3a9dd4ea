/**
 * Migration 4 (profile types) on a database written by schema v3, on the
 * real engine (chDB): rows stored before read as CPU, the sort keys and
 * rollups keep types apart, and every migration runs again as a no-op.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CPU_TYPE_ID } from '../profile/profile-type.js';
import { profileTypes, samplingPeriod, stackValues, timeline, type Selection } from '../ingest/query.js';
import { MIGRATIONS } from '../ingest/schema.js';
import { Store } from '../ingest/store.js';
import { tempDir } from '../kit/harness.js';

const V3 = readFileSync(join(import.meta.dirname, 'fixtures', 'schema-v3.sql'), 'utf8')
  .split(/;\n(?:\n|$)/)
  .map((s) => s.replace(/^(--[^\n]*\n|\n)+/, '').trim())
  .filter((s) => s.length > 0);

const HEAP = 'memory:inuse_space:bytes:space:bytes';
// Two whole hours and a bit, so the flame graph reads both rollups and raw rows.
const HOUR = 3600;
const T0 = Math.floor(Date.now() / 1000 / 86400) * 86400 - 86400; // yesterday 00:00 UTC
const times = [T0 + 60, T0 + HOUR + 600, T0 + 2 * HOUR + 30];

describe('schema migration 4 on a v3 database', () => {
  const tmp = tempDir();
  let store: Store;

  beforeAll(async () => {
    const old = await Store.open({ data: tmp.dir, retentionDays: 30 });
    try {
      for (const sql of V3) await old.command(sql);
      // The v3 way: kiln_ingest rows without a type, 32-bit values; views fan them out.
      const rows = times.flatMap((ts, i) => [
        `(0, 'svc', ${ts}, 11, 101, ${5 + i}, {}, 0, 0, 0, 0, '', 0)`,
        `(0, 'svc', ${ts}, 12, 102, 7, {}, 0, 0, 0, 0, '', 0)`,
        `(1, 'svc', ${ts}, 0, 0, 0, {'host':'h1'}, 10000000000, 10000000, ${12 + i}, 2, 'pprof', ${1000 + i})`,
      ]);
      await old.command(
        `INSERT INTO kiln.kiln_ingest (kind, service, ts, labels_hash, stack_hash, value, series, duration_ns, period_ns, samples, rows, source, ingest_key) VALUES ${rows.join(', ')}`,
      );
    } finally {
      await old.close();
    }
    store = await Store.open({ data: tmp.dir, retentionDays: 30 });
    await store.ready();
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    tmp.cleanup();
  });

  const sel = (type?: string): Selection => ({ service: 'svc', range: { from: T0 * 1000, to: (T0 + 3 * HOUR) * 1000 }, filters: [], type });

  it('reads rows stored before as CPU, in the raw table, both rollups and kiln_profiles', async () => {
    for (const t of ['samples', 'samples_1h', 'samples_10m', 'profiles'] as const) {
      const r = await store.rows(`SELECT DISTINCT type FROM ${store.t[t]}`, {});
      expect(r.map((x) => x[0]), t).toEqual([CPU_TYPE_ID]);
    }
    const create = await store.rows(`SELECT sorting_key FROM system.tables WHERE database = 'kiln' AND name = 'kiln_samples'`, {});
    expect(String(create[0]?.[0])).toMatch(/, type$/);
    const cpu = await stackValues(store, sel());
    expect(Object.fromEntries(cpu.map((s) => [s.hash, s.value]))).toEqual({ '101': 5 + 6 + 7, '102': 21 });
    expect(await profileTypes(store, { service: 'svc', range: sel().range })).toEqual([{ type: CPU_TYPE_ID, services: ['svc'] }]);
  });

  it('keeps a new type apart from CPU in every table, with 64-bit values', async () => {
    const big = 6 * 2 ** 32; // bytes held by one stack: more than 32 bits
    const ts = times[1]!;
    await store.command(
      `INSERT INTO kiln.kiln_ingest (kind, service, type, ts, labels_hash, stack_hash, value, series, duration_ns, period_ns, samples, rows, source, ingest_key) VALUES
       (0, 'svc', '${HEAP}', ${ts}, 11, 101, ${big}, {}, 0, 0, 0, 0, '', 0),
       (1, 'svc', '${HEAP}', ${ts}, 0, 0, 0, {'host':'h1'}, 10000000000, 524288, ${big}, 1, 'pprof', 2000)`,
    );
    const heap = await stackValues(store, sel(HEAP));
    expect(heap).toEqual([{ hash: '101', value: big }]);
    const cpu = await stackValues(store, sel(CPU_TYPE_ID));
    expect(Object.fromEntries(cpu.map((s) => [s.hash, s.value]))).toEqual({ '101': 18, '102': 21 });
    // The unfiltered 3-hour timeline at a 1-hour step reads the rollups only.
    const tl = await timeline(store, sel(HEAP), 3600_000);
    expect(tl.total).toBe(big);
    expect((await timeline(store, sel(), 3600_000)).total).toBe(18 + 21);
    // A label filter goes through the hourly rollup and kiln_labelsets (none stored here, so nothing matches).
    expect(await stackValues(store, { ...sel(HEAP), filters: [{ name: 'host', op: '=', values: ['h1'] }] })).toEqual([]);
    expect(await samplingPeriod(store, sel(HEAP))).toBe(524288);
    expect(await samplingPeriod(store, sel())).toBe(10_000_000);
    expect((await profileTypes(store, { range: sel().range })).map((t) => t.type)).toEqual([HEAP, CPU_TYPE_ID].sort());
  });

  it('runs every migration again as a no-op', async () => {
    for (const m of MIGRATIONS) for (const sql of m.statements(store.ctx)) await store.command(sql);
    expect((await stackValues(store, sel(HEAP)))[0]?.value).toBe(6 * 2 ** 32);
    const merged = await store.rows(`SELECT count() FROM ${store.t.samples_10m} FINAL WHERE type = {t:String}`, { t: HEAP });
    expect(Number(merged[0]?.[0])).toBe(1);
  });
});
