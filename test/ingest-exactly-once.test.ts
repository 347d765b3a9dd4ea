/**
 * Exactly-once storage, on the embedded engine: a push whose rows do not
 * check out is refused before it is logged, and one the store refuses after
 * its acknowledgement is counted and kept aside, while the good profiles
 * beside either are stored once; a retried key is stored once
 * (sequentially, concurrently, across a restart); and `kill -9` of `kiln
 * serve` during a burst of pushes loses no acknowledged profile (those only
 * in the write-ahead log are stored at the restart), stores none twice, and
 * leaves every unacknowledged one absent or whole.
 */

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiError, FlamegraphResponse, IngestResponse } from '../ingest/api.js';
import { serve, type ServeHandle } from '../ingest/serve.js';
import { Store } from '../ingest/store.js';
import { keyOf } from '../ingest/worker.js';
import { agentPushes, type AgentPush } from '../kit/fleet.js';
import { bodyBytes, startServe } from '../kit/harness.js';
import { runLoad } from '../kit/loadgen.js';

const quiet = (): void => {};

async function post(url: string, push: AgentPush, extra: { key?: string; host?: string; time?: number; service?: string } = {}): Promise<{ status: number; body: IngestResponse & ApiError }> {
  const labels = { ...push.labels, ...(extra.host ? { host: extra.host } : {}) };
  const qs = new URLSearchParams({ service: extra.service ?? push.service, ...labels, ...(extra.time ? { time: String(extra.time) } : {}) });
  const r = await fetch(`${url}/api/v1/profiles?${qs}`, {
    method: 'POST',
    body: bodyBytes(push.body),
    headers: extra.key ? { 'idempotency-key': extra.key } : {},
  });
  return { status: r.status, body: (await r.json()) as IngestResponse & ApiError };
}

describe('exactly once', () => {
  let pushes: AgentPush[];
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'kiln-once-'));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    pushes = await agentPushes(8, { startNs: BigInt(Date.now()) * 1_000_000n });
  });

  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Six good pushes (service "good") and one of service `bad`, all at once. */
  const sixGoodAndOne = async (url: string, bad: string) => {
    const t = Date.now() - 60_000;
    const good = pushes.slice(0, 6);
    const results = await Promise.all([
      ...good.map((p, i) => post(url, p, { key: `good-${i}`, host: `good-${i}`, time: t, service: 'good' })),
      post(url, pushes[6]!, { key: `${bad}-0`, host: `${bad}-0`, time: t, service: bad }),
    ]);
    return { good, results, t };
  };

  it('refuses a push whose rows do not check out before logging it, and stores the good ones beside it once', async () => {
    // Rows of service "malformed" are built one byte short (rows.ts, faults): RowBinary has no row
    // delimiters, so such rows in a batch would shift every row after them.
    const h = await serve({ port: 0, data: tmp(), log: quiet, faults: { malformedService: 'malformed' } });
    try {
      const { good, results } = await sixGoodAndOne(h.url, 'malformed');
      for (const r of results.slice(0, 6)) expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(results[6]!.status).toBe(500);
      expect(results[6]!.body.error).toBe('rows refused');
      expect(h.kiln.committer.stats.malformed).toBe(1);
      const expected = good.reduce((a, p) => a + p.samples, 0);
      // A query sees what was acknowledged before it (read-your-writes), with no flush.
      const f = (await (await fetch(`${h.url}/api/v1/flamegraph?service=good&from=now-2h`)).json()) as FlamegraphResponse;
      expect(f.total).toBe(expected);
      const store = h.kiln.store;
      const [[raw, profiles, keys, hourly, tenMin, bad] = []] = await store.rows(
        `SELECT (SELECT sum(value) FROM ${store.t.samples}), (SELECT count() FROM ${store.t.profiles}),
                (SELECT count() FROM ${store.t.keys}), (SELECT sum(value) FROM ${store.t.samples_1h}), (SELECT sum(value) FROM ${store.t.samples_10m}),
                (SELECT count() FROM ${store.t.samples} WHERE service = 'malformed')`,
        {},
      );
      expect([Number(raw), Number(profiles), Number(keys), Number(hourly), Number(tenMin), Number(bad)]).toEqual([expected, 6, 6, expected, expected, 0]);
    } finally {
      await h.close();
    }
  });

  it('stores the good profiles of a batch once when the store refuses one acknowledged profile, which is counted and kept', async () => {
    // Dictionary rows of service "poison" carry a date the engine refuses (rows.ts, faults). They pass
    // every check before the log, so the push is acknowledged; the store refuses it in its batch.
    const data = tmp();
    const h = await serve({ port: 0, data, log: quiet, batchDelayMs: 60_000, batchMinRows: 1e9, faults: { poisonService: 'poison' } });
    try {
      const { good, results, t } = await sixGoodAndOne(h.url, 'poison');
      for (const r of results) expect(r.status, JSON.stringify(r.body)).toBe(200);
      // Nothing is stored yet (a minute's batch window): the seven wait in the log, as one batch.
      expect(h.kiln.committer.stats.batches).toBe(0);
      await h.kiln.flush();
      expect(h.kiln.committer.stats.batches).toBe(1);
      expect(h.kiln.committer.stats.rejectedByStore).toBe(1);
      expect(readdirSync(join(data, 'ingest-log', 'rejected'))).toHaveLength(1);
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      expect(metrics).toMatch(/^kiln_ingest_store_rejected_total 1$/m);
      const store = h.kiln.store;
      const expected = good.reduce((a, p) => a + p.samples, 0);
      const [[raw, profiles, keys, hourly, tenMin, poison] = []] = await store.rows(
        `SELECT (SELECT sum(value) FROM ${store.t.samples}), (SELECT count() FROM ${store.t.profiles}),
                (SELECT count() FROM ${store.t.keys}), (SELECT sum(value) FROM ${store.t.samples_1h}), (SELECT sum(value) FROM ${store.t.samples_10m}),
                (SELECT count() FROM ${store.t.samples} WHERE service = 'poison')`,
        {},
      );
      expect([Number(raw), Number(profiles), Number(keys), Number(hourly), Number(tenMin), Number(poison)]).toEqual([expected, 6, 6, expected, expected, 0]);
      // The service stays up and takes the next push.
      const next = await post(h.url, pushes[7]!, { key: 'after', host: 'after', time: t, service: 'good' });
      expect(next.status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it('stores a retried key once: one after the other, at the same time, and after a restart', async () => {
    const data = tmp();
    const t = Date.now() - 120_000;
    let h: ServeHandle = await serve({ port: 0, data, log: quiet, batchDelayMs: 5 });
    try {
      const p = pushes[0]!;
      const first = await post(h.url, p, { key: 'k-1', time: t });
      expect(first.status).toBe(200);
      expect(first.body.duplicate).toBeUndefined();
      const again = await post(h.url, p, { key: 'k-1', time: t });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ duplicate: true, samples: p.samples });
      // Two at once with one key: one stores it, the other waits for it and is a duplicate.
      const both = await Promise.all([post(h.url, pushes[1]!, { key: 'k-2', time: t }), post(h.url, pushes[1]!, { key: 'k-2', time: t })]);
      expect(both.map((r) => r.status)).toEqual([200, 200]);
      expect(both.filter((r) => r.body.duplicate).length).toBe(1);
      // Without a key, the same push (service, labels, time, body) is its own key.
      const plain = await post(h.url, pushes[2]!, { time: t });
      const plainAgain = await post(h.url, pushes[2]!, { time: t });
      expect([plain.body.duplicate, plainAgain.body.duplicate]).toEqual([undefined, true]);
      // A different time is a different push.
      const later = await post(h.url, pushes[2]!, { time: t + 10_000 });
      expect(later.body.duplicate).toBeUndefined();
      // Keys are per service: the same key for another service is another profile.
      const other = await post(h.url, p, { key: 'k-1', time: t, service: 'elsewhere' });
      expect(other.body.duplicate).toBeUndefined();
      await h.close();
      // A new process finds the keys in the store.
      h = await serve({ port: 0, data, log: quiet, batchDelayMs: 5 });
      const afterRestart = await post(h.url, p, { key: 'k-1', time: t });
      expect(afterRestart.body.duplicate).toBe(true);
      const store = h.kiln.store;
      const [[total, profiles] = []] = await store.rows(`SELECT sum(value), (SELECT count() FROM ${store.t.profiles}) FROM ${store.t.samples}`, {});
      expect(Number(profiles)).toBe(5);
      expect(Number(total)).toBe(2 * p.samples + pushes[1]!.samples + 2 * pushes[2]!.samples);
    } finally {
      await h.close();
    }
  });

  it('after kill -9 during a burst: every acknowledged profile is stored once, every other one absent or whole', async () => {
    const data = tmp();
    const bodies = await agentPushes(40, { startNs: BigInt(Date.now()) * 1_000_000n });
    // Batches of ~60 profiles, so at the kill some are stored, one may be half-way into the
    // store, and the latest pushes are acknowledged but only in the log.
    let server = await startServe(data, 0, ['--batch-min-rows', '20000', '--batch-delay-ms', '60000']);
    let killed = false;
    let acknowledged = 0;
    const load = runLoad(
      { url: server.url, concurrency: 24, seconds: 120, pool: bodies.length, hosts: 0, keyPrefix: 'burst', recordKeys: true },
      bodies,
      undefined,
      () => killed,
      (n) => (acknowledged = n),
    );
    try {
      // Kill it once batches are flowing (150 pushes acknowledged: two batches' worth, however long
      // the workers took to start on a busy machine), at a moment no test chooses.
      while (acknowledged < 150) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, Math.random() * 1_500));
    } finally {
      killed = true;
      await server.stop('SIGKILL');
    }
    const result = await load;
    expect(result.acknowledged).toBeGreaterThanOrEqual(150);
    const acked = new Set(result.keys);
    const sent = result.pushes;

    // What the tables held at the kill: fewer profiles than were acknowledged, the rest only in the log.
    const before = await Store.open({ data, retentionDays: 30 });
    let storedAtKill: number;
    try {
      await before.ready();
      const [[n] = []] = await before.rows(`SELECT count() FROM ${before.t.profiles}`, {});
      storedAtKill = Number(n);
    } finally {
      await before.close();
    }
    expect(storedAtKill).toBeLessThan(acked.size);

    // A restart stores what the ingest log holds, before taking pushes.
    server = await startServe(data);
    const completed = /completed (\d+) batch/.exec(server.log());
    console.log(
      `kill -9 after ${result.acknowledged} acknowledged of ${result.pushes} sent (${JSON.stringify(result.failures)} in flight), ` +
        `${storedAtKill} stored at the kill; ${completed ? completed[1] : 0} batch(es) stored from the ingest log at restart`,
    );
    try {
      expect(Number(completed?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
      // The agents retry what was not acknowledged, and (their answer lost) some of what was.
      const retried = await runLoad(
        { url: server.url, concurrency: 8, seconds: 120, maxPushes: sent, pool: bodies.length, hosts: 0, keyPrefix: 'burst' },
        bodies,
      );
      expect(retried.failures).toEqual({});
      expect(retried.acknowledged).toBe(sent);
      // Acknowledged before the kill: now duplicates. (Unacknowledged ones are duplicates when the log completed them.)
      expect(retried.duplicates).toBeGreaterThanOrEqual(acked.size);
      await server.stop();
      const store = await Store.open({ data, retentionDays: 30 });
      try {
        const stored = new Map<string, number>();
        for (const [k, n] of await store.rows(`SELECT toString(ingest_key), count() FROM ${store.t.profiles} GROUP BY ingest_key`, {})) {
          stored.set(String(k), Number(n));
        }
        // Every push sent is stored exactly once (the retries made sure of the unacknowledged ones).
        for (let n = 0; n < sent; n++) {
          const b = bodies[n % bodies.length]!;
          expect(stored.get(keyOf(['key', b.service, `burst-${n}`])), `burst-${n}`).toBe(1);
        }
        expect(stored.size).toBe(sent);
        // And whole: each profile's samples, in the raw table and in both rollups, are its own total.
        const perHost = await store.rows(
          `SELECT p.host, p.samples, s.v FROM
             (SELECT series['host'] AS host, samples FROM ${store.t.profiles}) AS p
           LEFT JOIN
             (SELECT l.labels['host'] AS host, sum(x.value) AS v FROM ${store.t.samples} AS x
              INNER JOIN (SELECT DISTINCT labels_hash, labels FROM ${store.t.labelsets}) AS l USING labels_hash GROUP BY host) AS s
           ON p.host = s.host`,
          {},
        );
        expect(perHost.length).toBe(sent);
        for (const [host, samples, v] of perHost) expect(Number(v), String(host)).toBe(Number(samples));
        const [[raw, profiles, hourly, tenMin] = []] = await store.rows(
          `SELECT (SELECT sum(value) FROM ${store.t.samples}), (SELECT sum(samples) FROM ${store.t.profiles}),
                  (SELECT sum(value) FROM ${store.t.samples_1h}), (SELECT sum(value) FROM ${store.t.samples_10m})`,
          {},
        );
        const expected = Array.from({ length: sent }, (_, n) => bodies[n % bodies.length]!.samples).reduce((a, b) => a + b, 0);
        expect([Number(raw), Number(profiles), Number(hourly), Number(tenMin)]).toEqual([expected, expected, expected, expected]);
      } finally {
        await store.close();
      }
    } finally {
      await server.stop();
    }
  });
});
