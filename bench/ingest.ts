/**
 * Ingest and query bench for `kiln serve` on the embedded engine.
 *
 * A synthetic fleet: 100 hosts running 5 Python services (20 hosts each), one
 * profile per host every 10 s for 24 h (864,000 profiles). Each service has
 * 3,000 distinct stacks 20 to 80 frames deep that share root prefixes like a
 * real call tree, drawn with Zipf(1.1) weights; a profile is 500 samples
 * (the agent's 99 Hz for 10 s on a process half busy) over two threads.
 *
 * - The dictionaries (functions, locations, stacks, label sets) go in through
 *   the HTTP endpoint, so the ids are ingest's own.
 * - The 24 h of samples are bulk-loaded with INSERT ... SELECT from numbers(),
 *   each profile a copy of one of 200 pre-drawn profiles per service.
 * - Query latency over HTTP: flame graph of 1 h and 24 h of one service, with
 *   and without a host filter; diff of the range's two halves; top functions of 24 h.
 * - Ingest throughput over HTTP (bench/ingest-http.ts): a separate `kiln
 *   serve` and a load generator in its own process, 32 and 256 clients.
 * - Bytes on disk per stored row and per sample.
 *
 * Knobs (environment): KILN_BENCH_HOURS (24), KILN_BENCH_HOSTS (100),
 * KILN_BENCH_SERVICES (5), KILN_BENCH_SAMPLES (500 per profile),
 * KILN_BENCH_HTTP_SECONDS (20), KILN_BENCH_DIR
 * (a temp dir, removed afterwards unless KILN_BENCH_KEEP=1).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FlamegraphResponse } from '../ingest/api.js';
import { serve } from '../ingest/serve.js';
import { plan, stackValues } from '../ingest/query.js';
import { encodePprof } from '../profile/pprof.js';
import {
  INTERVAL_S,
  PERIOD_NS,
  SAMPLES_PER_PROFILE,
  STACKS_PER_SERVICE,
  TEMPLATES,
  THREADS,
  makeService,
  profileFromRows,
  seriesLabels,
} from '../kit/fleet.js';
import { envNumber, percentile, round1 } from '../kit/stats.js';
import { benchIngestHttp } from './ingest-http.js';

const env = envNumber;

const HOURS = env('KILN_BENCH_HOURS', 24);
const HOSTS = env('KILN_BENCH_HOSTS', 100);
const SERVICES = env('KILN_BENCH_SERVICES', 5);
const HTTP_SECONDS = env('KILN_BENCH_HTTP_SECONDS', 20);

function log(msg: string): void {
  process.stderr.write(`[bench ingest] ${msg}\n`);
}

export async function benchIngest(): Promise<Record<string, number | string>> {
  const dir = process.env.KILN_BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'kiln-bench-'));
  const results: Record<string, number | string> = {};
  const h = await serve({ port: 0, data: dir, log: () => {} });
  const store = h.kiln.store;
  try {
    const nowS = Math.floor(Date.now() / 1000 / INTERVAL_S) * INTERVAL_S;
    const t0S = nowS - HOURS * 3600;
    const slots = (HOURS * 3600) / INTERVAL_S;
    const hostNames = Array.from({ length: HOSTS }, (_, i) => `host-${String(i).padStart(3, '0')}`);
    const services = Array.from({ length: SERVICES }, (_, s) =>
      makeService(
        s,
        hostNames.filter((_, i) => i % SERVICES === s),
      ),
    );
    const rowsPerProfile =
      services.reduce((a, s) => a + s.templates.reduce((b, t) => b + t.length, 0), 0) / (SERVICES * TEMPLATES);
    log(`fleet: ${HOSTS} hosts, ${SERVICES} services, ${HOURS} h, ${STACKS_PER_SERVICE} stacks/service, ~${Math.round(rowsPerProfile)} rows/profile`);

    // 1. Dictionaries through the real endpoint: per service, one host pushes a
    //    profile holding every stack once; every other host pushes one sample per
    //    thread, which registers its label sets.
    let t = performance.now();
    for (const svc of services) {
      const all = svc.stacks.map((_, i) => ({ stack: i, count: 1 }));
      const perThread = THREADS.map((_, th) => ({ stack: svc.thread.indexOf(th), count: 1 }));
      for (const [i, host] of svc.hosts.entries()) {
        const rows = i === 0 ? all : perThread;
        const body = new Uint8Array(await encodePprof(profileFromRows(svc, host, rows, BigInt(t0S) * 1_000_000_000n)));
        const r = await fetch(`${h.url}/api/v1/profiles?service=${svc.name}&host=${host}&region=${seriesLabels(host).region}`, {
          method: 'POST',
          body,
        });
        if (r.status !== 200) throw new Error(`registering ${svc.name}/${host}: ${r.status} ${await r.text()}`);
      }
    }
    log(`dictionaries pushed over HTTP in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    // 2. 24 h of samples, bulk-loaded; the rollups fill through their materialized views.
    t = performance.now();
    for (const svc of services) {
      const n = svc.hosts.length * slots;
      const params = {
        svc: svc.name,
        t0: t0S,
        hosts: svc.hosts.length,
        threads: THREADS.length,
        labels: svc.labelIds.map((x) => BigInt(x.dec)),
        stacks: svc.stackIds.map((x) => BigInt(x.dec)),
        templates: svc.templates,
        nt: TEMPLATES,
        n,
      };
      await store.command(
        `INSERT INTO ${store.t.samples} (service, ts, labels_hash, stack_hash, value)
         SELECT {svc:String}, toDateTime({t0:UInt32} + intDiv(number, {hosts:UInt32}) * ${INTERVAL_S}, 'UTC'),
           {labels:Array(UInt64)}[(number % {hosts:UInt32}) * {threads:UInt32} + bitAnd(bitShiftRight(x, 32), 255) + 1],
           {stacks:Array(UInt64)}[bitShiftRight(x, 40) + 1],
           bitAnd(x, 4294967295)
         FROM numbers({n:UInt64})
         ARRAY JOIN {templates:Array(Array(UInt64))}[cityHash64(number, {svc:String}) % {nt:UInt32} + 1] AS x`,
        params,
        // Without it an INSERT ... SELECT writes on one thread.
        { max_insert_threads: '2' },
      );
      await store.command(
        `INSERT INTO ${store.t.profiles} (service, ts, series, duration_ns, period_ns, samples, rows, source)
         SELECT {svc:String}, toDateTime({t0:UInt32} + intDiv(number, {hosts:UInt32}) * ${INTERVAL_S}, 'UTC'),
           map('host', concat('host-', leftPad(toString((number % {hosts:UInt32}) * ${SERVICES} + ${services.indexOf(svc)}), 3, '0'))),
           ${INTERVAL_S * 1e9}, ${PERIOD_NS}, ${SAMPLES_PER_PROFILE}, 0, 'bench'
         FROM numbers({n:UInt64})`,
        { svc: svc.name, t0: t0S, hosts: svc.hosts.length, n },
      );
      log(`  ${svc.name}: ${n} profiles loaded (${((performance.now() - t) / 1000).toFixed(0)} s so far)`);
    }
    const loadS = (performance.now() - t) / 1000;
    const [[rowsText, samplesText] = []] = await store.rows(`SELECT toString(count()), toString(sum(value)) FROM ${store.t.samples}`, {});
    const totalRows = Number(rowsText);
    const totalSamples = Number(samplesText);
    results.profiles_loaded = HOSTS * slots;
    results.rows_loaded = totalRows;
    results.samples_loaded = totalSamples;
    results.rows_per_profile = round1(totalRows / (HOSTS * slots));
    results.bulk_load_s = round1(loadS);
    results.bulk_load_rows_per_s = Math.round(totalRows / loadS);
    log(`bulk load: ${totalRows} rows, ${totalSamples} samples in ${loadS.toFixed(0)} s`);

    // Let background merges settle so the queries see a steady-state table:
    // three quiet polls in a row (a bulk load leaves parts that start merging late).
    t = performance.now();
    let quiet = 0;
    while (quiet < 3 && performance.now() - t < 300_000) {
      const [[merges] = []] = await store.rows(`SELECT count() FROM system.merges WHERE database = {db:String}`, { db: store.ctx.database });
      quiet = Number(merges) === 0 ? quiet + 1 : 0;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    const [[activeParts] = []] = await store.rows(
      `SELECT count() FROM system.parts WHERE active AND database = {db:String} AND table = 'kiln_samples'`,
      { db: store.ctx.database },
    );
    results.merge_settle_s = round1((performance.now() - t) / 1000);
    log(`merges settled after ${results.merge_settle_s} s (${activeParts} parts in kiln_samples)`);

    // 3. Flame-graph latency over HTTP.
    const svc = services[0]!;
    const host = svc.hosts[0]!;
    const RUNS = 20;
    const queries: [string, string][] = [
      ['flamegraph_1h', `service=${svc.name}&from=now-1h`],
      ['flamegraph_24h', `service=${svc.name}&from=now-${HOURS}h`],
      ['flamegraph_1h_host', `service=${svc.name}&from=now-1h&label=host=${host}`],
      ['flamegraph_24h_host', `service=${svc.name}&from=now-${HOURS}h&label=host=${host}`],
      // The first half of the range against the second, and the top functions of all of it.
      ['diff_24h', `service=${svc.name}&baseFrom=now-${HOURS}h&baseTo=now-${HOURS / 2}h&comparisonFrom=now-${HOURS / 2}h`],
      ['top_24h', `service=${svc.name}&from=now-${HOURS}h`],
    ];
    // Round-robin, so whatever else the machine does lands on every query alike.
    const times = new Map<string, number[]>(queries.map(([name]) => [name, []]));
    const last = new Map<string, FlamegraphResponse>();
    for (let i = 0; i <= RUNS; i++) {
      for (const [name, qs] of queries) {
        const q0 = performance.now();
        const r = await fetch(`${h.url}/api/v1/${name.slice(0, name.indexOf('_'))}?${qs}`);
        const body = (await r.json()) as FlamegraphResponse;
        if (r.status !== 200) throw new Error(`${name}: ${r.status} ${JSON.stringify(body)}`);
        const ms = performance.now() - q0;
        if (i === 0) results[`${name}_first_ms`] = round1(ms);
        else times.get(name)!.push(ms);
        last.set(name, body);
      }
    }
    for (const [name] of queries) {
      const body = last.get(name)!;
      results[`${name}_p50_ms`] = round1(percentile(times.get(name)!, 50));
      results[`${name}_p95_ms`] = round1(percentile(times.get(name)!, 95));
      if (name.startsWith('flamegraph')) {
        results[`${name}_samples`] = body.total;
        results[`${name}_nodes`] = body.fullNodes;
      }
      log(`${name}: p50 ${results[`${name}_p50_ms`]} ms, p95 ${results[`${name}_p95_ms`]} ms${name.startsWith('flamegraph') ? ` (${body.total} samples, ${body.fullNodes} nodes)` : ''}`);
    }

    // 3b. What the profile type costs the 24 h query: the store's query with its
    // type condition against the same query without it (what Kiln ran before
    // types), round-robin in one run, on this all-CPU fleet.
    {
      const range = { from: Date.now() - HOURS * 3_600_000, to: Date.now() };
      const pieces = plan(range);
      const params: Record<string, unknown> = { service: svc.name };
      const untyped = pieces
        .map((pc, i) => {
          params[`a${i}`] = pc.fromS;
          params[`b${i}`] = pc.toS;
          return (
            `SELECT stack_hash, value AS v FROM ${store.t[pc.table]} WHERE service = {service:String}` +
            ` AND ${pc.col} >= toDateTime({a${i}:UInt32}, 'UTC') AND ${pc.col} < toDateTime({b${i}:UInt32}, 'UTC')`
          );
        })
        .join(' UNION ALL ');
      const sql = `SELECT toString(stack_hash), toString(sum(v)) FROM (${untyped}) GROUP BY stack_hash`;
      const typed: number[] = [];
      const plain: number[] = [];
      let stacksTyped = 0;
      let stacksPlain = 0;
      for (let i = 0; i <= RUNS; i++) {
        let q0 = performance.now();
        stacksTyped = (await stackValues(store, { service: svc.name, range, filters: [] })).length;
        if (i > 0) typed.push(performance.now() - q0);
        q0 = performance.now();
        stacksPlain = (await store.rows(sql, params)).length;
        if (i > 0) plain.push(performance.now() - q0);
      }
      if (stacksTyped !== stacksPlain) throw new Error(`typed query found ${stacksTyped} stacks, untyped ${stacksPlain}`);
      results.stacks_24h_typed_p50_ms = round1(percentile(typed, 50));
      results.stacks_24h_untyped_p50_ms = round1(percentile(plain, 50));
      results.stacks_24h_type_cost_ratio = Math.round((percentile(typed, 50) / percentile(plain, 50)) * 1000) / 1000;
      log(
        `24 h stack query with the type condition: p50 ${results.stacks_24h_typed_p50_ms} ms, without: ${results.stacks_24h_untyped_p50_ms} ms ` +
          `(ratio ${results.stacks_24h_type_cost_ratio}, ${stacksTyped} stacks)`,
      );
    }

    // 4. Bytes on disk.
    await h.kiln.flush();
    const parts = await store.rows(
      `SELECT table, toString(sum(bytes_on_disk)), toString(sum(rows)) FROM system.parts
       WHERE active AND database = {db:String} GROUP BY table ORDER BY table`,
      { db: store.ctx.database },
    );
    const bytes = new Map(parts.map((r) => [String(r[0]), { bytes: Number(r[1]), rows: Number(r[2]) }]));
    const [[allRows, allSamples] = []] = await store.rows(`SELECT toString(count()), toString(sum(value)) FROM ${store.t.samples}`, {});
    const raw = bytes.get('kiln_samples')!;
    const sum = [...bytes.values()].reduce((a, b) => a + b.bytes, 0);
    results.bytes_per_row_raw = Math.round((raw.bytes / Number(allRows)) * 100) / 100;
    results.bytes_per_sample_raw = Math.round((raw.bytes / Number(allSamples)) * 1000) / 1000;
    results.bytes_per_sample_all_tables = Math.round((sum / Number(allSamples)) * 1000) / 1000;
    for (const [table, b] of bytes) results[`disk_mib_${table.replace(/^kiln_/, '')}`] = round1(b.bytes / 2 ** 20);
    const cols = await store.rows(
      `SELECT name, toString(data_compressed_bytes) FROM system.columns WHERE database = {db:String} AND table = 'kiln_samples'`,
      { db: store.ctx.database },
    );
    for (const [name, b] of cols) results[`bytes_per_row_col_${String(name)}`] = Math.round((Number(b) / Number(allRows)) * 1000) / 1000;
    log(`disk: ${results.bytes_per_row_raw} B/row, ${results.bytes_per_sample_raw} B/sample raw; ${results.bytes_per_sample_all_tables} B/sample with rollups and dictionaries`);
  } finally {
    await h.close();
    if (!process.env.KILN_BENCH_DIR && !process.env.KILN_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }
  // 5. Ingest throughput over HTTP: `kiln serve` and the load generator each in a process of their own.
  Object.assign(results, await benchIngestHttp());
  results.load_average = os.loadavg()[0]!.toFixed(1);
  console.log(`kiln serve bench (embedded chDB, ${os.cpus().length} CPUs, load average ${results.load_average}):`);
  for (const [k, v] of Object.entries(results)) console.log(`  ${k.padEnd(36)} ${v}`);
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await benchIngest();
}
