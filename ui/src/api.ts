/**
 * The query API client. Every shape comes from ingest/api.ts, the contract
 * shared with the server, so a change there fails this build instead of the
 * page at run time.
 */

import type {
  ApiError,
  DiffQuery,
  DiffResponse,
  FlamegraphQuery,
  FlamegraphResponse,
  LabelsQuery,
  LabelsResponse,
  PprofQuery,
  ServicesQuery,
  ServicesResponse,
  TimelineQuery,
  TimelineResponse,
  TopQuery,
  TopResponse,
} from '../../ingest/api.js';

/** Why a request failed: the API could not be reached at all, or it answered with an error. */
export class ApiFailure extends Error {
  constructor(
    readonly kind: 'unreachable' | 'http',
    readonly url: string,
    message: string,
    readonly status = 0,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

type Params = { [k: string]: string | string[] | undefined };

export function queryString(params: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === '') continue;
    if (Array.isArray(v)) for (const x of v) q.append(k, x);
    else q.set(k, v);
  }
  return q.toString();
}

/**
 * Relative to the page, so the UI also works behind a proxy that mounts Kiln
 * under a path prefix.
 */
export function apiUrl(endpoint: string, params: Params): string {
  const qs = queryString(params);
  return new URL(`api/v1/${endpoint}${qs ? `?${qs}` : ''}`, document.baseURI).toString();
}

function isApiError(x: unknown): x is ApiError {
  return typeof x === 'object' && x !== null && typeof (x as { error?: unknown }).error === 'string';
}

function getJson<T>(endpoint: string, params: Params, signal?: AbortSignal): Promise<T> {
  const url = apiUrl(endpoint, params);
  return readJson<T>(url, fetch(url, { signal, headers: { Accept: 'application/json' } }), signal);
}

async function readJson<T>(url: string, response: Promise<Response>, signal?: AbortSignal): Promise<T> {
  const endpoint = new URL(url).pathname.replace(/^.*\/api\/v1\//, '');
  let res: Response;
  try {
    res = await response;
  } catch (e) {
    if (signal?.aborted) throw e;
    // fetch rejects only when no HTTP answer came back: server down, DNS, CORS, offline.
    throw new ApiFailure('unreachable', url, e instanceof Error ? e.message : String(e));
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    // A proxy's HTML error page, or a server that is not Kiln.
    if (res.ok) throw new ApiFailure('http', url, `the answer from ${endpoint} is not JSON`, res.status);
    body = undefined;
  }
  if (!res.ok) {
    if (isApiError(body)) throw new ApiFailure('http', url, body.error, res.status, body.detail);
    throw new ApiFailure('http', url, `${res.status} ${res.statusText}`, res.status);
  }
  return body as T;
}

// Each call takes the query type ingest/api.ts defines for its endpoint.
export const api = {
  services: (q: ServicesQuery, signal?: AbortSignal) => getJson<ServicesResponse>('services', { ...q }, signal),
  labels: (q: LabelsQuery, signal?: AbortSignal) => getJson<LabelsResponse>('labels', { ...q }, signal),
  flamegraph: (q: FlamegraphQuery, signal?: AbortSignal) => getJson<FlamegraphResponse>('flamegraph', { ...q }, signal),
  diff: (q: DiffQuery, signal?: AbortSignal) => getJson<DiffResponse>('diff', { ...q }, signal),
  top: (q: TopQuery, signal?: AbortSignal) => getJson<TopResponse>('top', { ...q }, signal),
  timeline: (q: TimelineQuery, signal?: AbortSignal) => getJson<TimelineResponse>('timeline', { ...q }, signal),
  pprofUrl: (q: PprofQuery) => apiUrl('pprof', { ...q }),
  /** Reads a response the prefetch script (prefetch.ts) already asked for. */
  adopt: <T>(url: string, response: Promise<Response>) => readJson<T>(url, response),
};
