/**
 * The Connect endpoints: Pyroscope's Push API (what pyroscope-io 1.x, Alloy
 * and the OTel collector's Pyroscope exporter send) and the querier calls of
 * Grafana's Pyroscope data source. Each is a unary call (connect/protocol.ts)
 * with the same bounds as the rest of the edge: auth before the body is read,
 * the body held to the size limit as it arrives and when inflated, every
 * failure a Connect error that is counted in /metrics.
 */

import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import express, { type Request } from 'express';
import type { Committer } from '../commit.js';
import type { Resolver } from '../dict.js';
import { HttpError, type Limits } from '../limits.js';
import { StorageError, type Store } from '../store.js';
import type { Built } from '../worker.js';
import type { WorkerPool } from '../workers.js';
import { PushRequestSchema, PushResponseSchema } from '../connect/gen/push/v1/push_pb.js';
import {
  ProfileTypesRequestSchema,
  ProfileTypesResponseSchema,
  SelectMergeStacktracesRequestSchema,
  SelectMergeStacktracesResponseSchema,
  SelectSeriesRequestSchema,
  SelectSeriesResponseSchema,
} from '../connect/gen/querier/v1/querier_pb.js';
import { LabelNamesRequestSchema, LabelNamesResponseSchema, LabelValuesRequestSchema, LabelValuesResponseSchema } from '../connect/gen/types/v1/types_pb.js';
import {
  ConnectError,
  asHttpError,
  checkProtocolVersion,
  codecOf,
  decode,
  encodingOf,
  fromHttpError,
  inflateBody,
  sendConnectError,
  sendMessage,
} from '../connect/protocol.js';
import { pushItems } from '../connect/push.js';
import * as querier from '../connect/querier.js';
import type { Auth } from './auth.js';
import { readBody } from './body.js';
import { flameTree, unitOf } from './query-routes.js';

export interface ConnectDeps {
  limits: Limits;
  auth: Auth;
  pool: WorkerPool;
  committer: Committer;
  store: Store;
  resolver: Resolver;
  /** Read-your-writes, as for the JSON query API. */
  caughtUp: () => Promise<unknown>;
  /** Counts an error answer (/metrics). */
  refused: (e: HttpError, path: string) => void;
  log: (m: string) => void;
}

const SERVICES = ['push.v1.PusherService', 'querier.v1.QuerierService'];

export function connectRoutes(deps: ConnectDeps): express.Router {
  const { limits } = deps;
  const r = express.Router();

  const unary = <I extends DescMessage, O extends DescMessage>(
    path: string,
    input: I,
    output: O,
    access: 'read' | 'write',
    handle: (msg: MessageShape<I>, req: Request) => Promise<MessageShape<O>>,
  ): void => {
    r.post(path, async (req, res) => {
      try {
        checkProtocolVersion(req);
        const codec = codecOf(req);
        if (!deps.auth.allows(req, access)) {
          req.resume();
          throw new ConnectError('unauthenticated', `${access}s need a token: Authorization: Bearer <token>, or Basic auth with the token as the password`);
        }
        const encoding = encodingOf(req);
        const raw = await readBody(req, limits.maxBodyBytes, { allowEmpty: true });
        const msg = decode(input, codec, await inflateBody(raw, encoding, limits.maxBodyBytes));
        if (access === 'read') await deps.caughtUp();
        await sendMessage(req, res, output, codec, await handle(msg, req));
      } catch (err) {
        const e = toConnectError(err);
        deps.refused(asHttpError(e), req.path);
        if (e.status >= 500 && e.code !== 'unavailable' && e.code !== 'unimplemented') {
          deps.log(`kiln: ${e.status} ${req.method} ${req.path}: ${e.message}`);
        }
        if (!res.headersSent) sendConnectError(res, e);
        else res.destroy();
      }
    });
  };

  unary('/push.v1.PusherService/Push', PushRequestSchema, PushResponseSchema, 'write', async (msg) => {
    await push(deps, pushItems(msg, limits));
    return create(PushResponseSchema);
  });

  const qd: querier.QuerierDeps = {
    limits,
    store: deps.store,
    flame: async (sel, maxNodes) => (await flameTree(deps.store, deps.resolver, sel, 'function', maxNodes)).root,
    scale: async (sel) => (await unitOf(deps.store, sel)).scale,
  };
  const Q = '/querier.v1.QuerierService';
  unary(`${Q}/ProfileTypes`, ProfileTypesRequestSchema, ProfileTypesResponseSchema, 'read', (m) => querier.profileTypes(qd, m));
  unary(`${Q}/LabelNames`, LabelNamesRequestSchema, LabelNamesResponseSchema, 'read', (m) => querier.labelNames(qd, m));
  unary(`${Q}/LabelValues`, LabelValuesRequestSchema, LabelValuesResponseSchema, 'read', (m) => querier.labelValues(qd, m));
  unary(`${Q}/SelectMergeStacktraces`, SelectMergeStacktracesRequestSchema, SelectMergeStacktracesResponseSchema, 'read', (m) =>
    querier.selectMergeStacktraces(qd, m),
  );
  unary(`${Q}/SelectSeries`, SelectSeriesRequestSchema, SelectSeriesResponseSchema, 'read', (m) => querier.selectSeries(qd, m));

  // Other methods of these services (Series, Diff, SelectMergeProfile, ...): a
  // Connect error a client can read, not the JSON API's 404.
  r.post(/^\/[A-Za-z0-9_.]+\/[A-Za-z0-9_]+$/, (req, res, next) => {
    const service = req.path.slice(1, req.path.indexOf('/', 1));
    if (!SERVICES.includes(service) && !service.includes('.v1')) return next();
    req.resume();
    const e = new ConnectError('unimplemented', `${req.path.slice(1, 200)} is not served by Kiln (it serves Push, ProfileTypes, LabelNames, LabelValues, SelectMergeStacktraces, SelectSeries)`);
    deps.refused(asHttpError(e), req.path);
    sendConnectError(res, e);
  });
  return r;
}

/**
 * The raw profiles of one PushRequest go through the same path as single
 * pushes: built by the workers, then submitted to the committer (exactly
 * once per idempotency key). If any profile fails to build, none is
 * submitted and the request is refused as a whole.
 */
async function push(deps: ConnectDeps, items: ReturnType<typeof pushItems>): Promise<void> {
  const results = await Promise.allSettled(
    items.map((it) =>
      deps.pool.run(
        {
          body: it.body,
          contentEncoding: 'identity',
          format: 'pprof',
          input: { service: it.service, series: it.series, source: 'pyroscope-push', ...(it.profileName !== undefined ? { name: it.profileName } : {}) },
          ...(it.keyHeader !== undefined ? { keyHeader: it.keyHeader } : {}),
        },
        it.service,
      ),
    ),
  );
  const built: Built[] = [];
  let failure: { i: number; e: unknown } | undefined;
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') built.push(r.value);
    else failure ??= { i, e: r.reason };
  });
  if (failure) {
    for (const b of built) deps.committer.discard(b);
    const e = toConnectError(failure.e);
    throw new ConnectError(e.code, items.length > 1 ? `profile ${failure.i} of ${items.length}: ${e.message}` : e.message, e.retryAfterS);
  }
  // Each settles once its profile is logged (or found already stored); a
  // failure leaves the others logged, and a retry stores only what is missing.
  const outcomes = await Promise.allSettled(built.map((b) => deps.committer.submit(b)));
  const refused = outcomes.find((o) => o.status === 'rejected');
  if (refused) throw refused.reason;
}

function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof HttpError) return fromHttpError(err);
  if (err instanceof StorageError) return new ConnectError(err.kind === 'unavailable' ? 'unavailable' : 'internal', `storage: ${err.message}`);
  return new ConnectError('internal', err instanceof Error ? err.message : String(err));
}
