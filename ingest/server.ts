/**
 * `kiln serve`'s parts put together: the store, the ingest workers and
 * committer, and the express app (edge/: parameters, auth, ingest routes,
 * query routes, errors). The process keeps no state but caches and the
 * ingest log of the batch it is writing, so any number of them can run
 * behind a load balancer against one ClickHouse.
 */

import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import express from 'express';
import type { HealthResponse } from './api.js';
import { Committer } from './commit.js';
import { limitsFrom, loadTokens, resolveUiDir, DEFAULTS, type ServeOptions } from './config.js';
import { Resolver } from './dict.js';
import { authFor } from './edge/auth.js';
import { connectRoutes } from './edge/connect-routes.js';
import { errorHandler, notFound } from './edge/errors.js';
import { ingestRoutes } from './edge/ingest-routes.js';
import { queryRoutes } from './edge/query-routes.js';
import { KnownStacks } from './known.js';
import { IngestMetrics } from './metrics.js';
import { Store } from './store.js';
import { WorkerPool } from './workers.js';

export interface KilnServer {
  app: express.Express;
  store: Store;
  committer: Committer;
  pool: WorkerPool;
  metrics: IngestMetrics;
  /** Waits until every push received so far is stored (tests, benches, shutdown). */
  flush(): Promise<void>;
  /** Writes pending rows and closes the store (not the HTTP listener: serve() owns that). */
  close(): Promise<void>;
}

export async function createServer(opts: ServeOptions = {}): Promise<KilnServer> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const limits = limitsFrom(opts.limits);
  const tokens = loadTokens(opts);
  const retentionDays = opts.retentionDays ?? DEFAULTS.retentionDays;
  const data = resolve(opts.data ?? DEFAULTS.data);
  const store = await Store.open({
    data,
    url: opts.clickhouseUrl,
    user: opts.clickhouseUser,
    password: opts.clickhousePassword,
    database: opts.clickhouseDatabase,
    cluster: opts.cluster,
    retentionDays,
    insertLanes: opts.insertLanes,
    log,
  });
  // Try the schema now so a misconfiguration shows at start-up; if the store
  // is down, keep going: requests answer 503 and retry until it is back.
  let ready = false;
  try {
    await store.ready();
    ready = true;
  } catch (e) {
    log(`kiln: store not ready yet (${e instanceof Error ? e.message : String(e)}); will retry on demand`);
  }
  const known = new KnownStacks();
  const pool = new WorkerPool(opts.ingestWorkers ?? Math.max(1, availableParallelism()), {
    limits,
    retentionDays,
    faults: opts.faults,
    known,
    log,
  });
  const committer = new Committer(store, {
    maxPendingRows: limits.maxPendingRows,
    maxDelayMs: opts.batchDelayMs,
    minRows: opts.batchMinRows,
    // The embedded store's log lives with its data; a server's beside the process.
    walDir: opts.walDir ?? (opts.clickhouseUrl ? resolve('kiln-ingest-log') : join(data, 'ingest-log')),
    log,
    onDictDropped: () => pool.bumpGeneration(),
    generation: () => pool.currentGeneration,
    known,
  });
  try {
    await committer.open();
  } catch (e) {
    await pool.close();
    await store.close();
    throw e;
  }
  let closed = false;
  const recover = async (): Promise<void> => {
    const n = await committer.recover();
    if (n > 0) log(`kiln: completed ${n} batch(es) an earlier run left in the ingest log`);
  };
  if (ready) await recover();
  else {
    // The store was down at start-up: store what the last run left once it is back.
    void (async () => {
      for (let attempt = 0; !closed; attempt++) {
        await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))).unref());
        if (closed) return;
        try {
          await store.ready();
          await recover();
          return;
        } catch {
          // still down
        }
      }
    })();
  }
  const metrics = new IngestMetrics(committer, pool);

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const auth = authFor(tokens);

  app.get('/healthz', async (req, res) => {
    const body: HealthResponse = { ok: true, mode: store.mode };
    try {
      await store.ready();
      await store.rows('SELECT 1', {});
      res.json(body);
    } catch (e) {
      // What the store said may name paths and hosts: only for callers with a token.
      const detail = auth.holdsToken(req) ? { detail: e instanceof Error ? e.message : String(e) } : {};
      res.status(503).json({ ...body, ok: false, ...detail });
    }
  });

  app.get('/metrics', auth.read, async (req, res) => {
    res.setHeader('Content-Type', 'text/plain; version=0.0.4');
    res.send(await metrics.render());
  });

  app.use(ingestRoutes({ limits, auth, pool, committer }));
  const resolver = new Resolver();
  const queryWaitMs = opts.queryWaitMs ?? 5_000;
  app.use('/api/v1', queryRoutes({ limits, auth, store, resolver, caughtUp: () => committer.visible(queryWaitMs) }));
  app.use(
    connectRoutes({
      limits,
      auth,
      pool,
      committer,
      store,
      resolver,
      caughtUp: () => committer.visible(queryWaitMs),
      refused: (e, path) => metrics.refused(e, path),
      log,
    }),
  );
  app.use('/api', notFound);

  const uiDir = resolveUiDir(opts.uiDir);
  if (uiDir) app.use(express.static(uiDir, { index: 'index.html', fallthrough: true }));
  app.use(notFound);
  app.use(errorHandler(log, (e, req) => metrics.refused(e, req.path)));

  return {
    app,
    store,
    committer,
    pool,
    metrics,
    flush: () => committer.flush(),
    async close() {
      closed = true;
      await committer.close();
      await pool.close();
      await store.close();
    },
  };
}
