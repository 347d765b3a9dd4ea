/**
 * Query-string parameters: reading them (each at most once unless it repeats
 * by design), refusing ones an endpoint does not take, and the shared
 * selection (service, range, label filters) of the query endpoints.
 */

import type { Request } from 'express';
import type { Granularity, LabelFilter } from '../api.js';
import { HttpError, checkService, type Limits } from '../limits.js';
import { parseFilters, type Selection } from '../query.js';
import { parseRange } from '../time.js';
import { CPU_TYPE_ID, requestedType } from '../../profile/profile-type.js';

export type Query = Record<string, string | string[]>;

export function queryOf(req: Request): Query {
  const out: Query = {};
  for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.map(String);
  }
  return out;
}

/**
 * An unknown parameter is a 400 naming the ones the endpoint takes: a typo'd
 * filter (`&host=h2`) silently ignored would return the unfiltered graph and
 * look like a filter that worked.
 */
export function onlyParams(query: Query, allowed: readonly string[]): void {
  const unknown = Object.keys(query).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 50)));
    throw new HttpError(
      400,
      'unknown parameter',
      `${shown.join(', ')}${unknown.length > 5 ? ', ...' : ''} ${unknown.length === 1 ? 'is' : 'are'} not taken here; ` +
        `parameters: ${allowed.join(', ')} (label filters are label=NAME=VALUE)`,
    );
  }
}

export function one(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw new HttpError(400, `repeated parameter`, `${name} is given ${v.length} times`);
  return v;
}

export function many(query: Query, name: string): string[] {
  const v = query[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export function intParam(query: Query, name: string, dflt: number, min: number, max: number): number {
  const text = one(query, name);
  if (text === undefined || text === '') return dflt;
  const n = /^-?\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `bad ${name}`, `${name} is a whole number from ${min} to ${max}`);
  return n;
}

export function maxNodesOf(query: Query, limits: Limits): number {
  return intParam(query, 'maxNodes', limits.defaultMaxNodes, 2, limits.maxMaxNodes);
}

export function granularityOf(query: Query): Granularity {
  const g = one(query, 'granularity') ?? 'function';
  if (g !== 'function' && g !== 'line') throw new HttpError(400, 'bad granularity', 'granularity is function or line');
  return g;
}

/** What every range query takes. */
export const RANGE_PARAMS = ['service', 'from', 'to', 'label', 'query', 'type'] as const;

/** service, range and filters of a query; with a prefix (base, comparison), side parameters override the shared ones. */
export function selection(query: Query, limits: Limits, prefix = ''): Selection {
  const side = (name: string): string | undefined =>
    (prefix ? one(query, `${prefix}${name[0]!.toUpperCase()}${name.slice(1)}`) : undefined) ?? one(query, name);
  const { service: named, filters } = serviceAndFilters(query, limits, prefix);
  const service = checkService(named);
  const range = parseRange(side('from'), side('to'), {
    now: Date.now(),
    maxRangeMs: limits.maxQueryRangeMs,
    prefix: prefix ? `${prefix} ` : '',
  });
  return { service, range, filters, type: typeOf(query) };
}

/** service= and the label filters (label=, query=), with query='s name as the service when service= is absent; the service may be missing. */
export function serviceAndFilters(query: Query, limits: Limits, prefix = ''): { service: string | undefined; filters: LabelFilter[] } {
  const labels = [...many(query, 'label'), ...(prefix ? many(query, `${prefix}Label`) : [])];
  const { filters, service: fromSelector } = parseFilters(labels, one(query, 'query'), limits);
  const given = one(query, 'service');
  if (given !== undefined && fromSelector !== undefined && given !== fromSelector) {
    throw new HttpError(400, 'bad service', `service=${given} and query=${fromSelector}{...} disagree`);
  }
  return { service: given ?? fromSelector, filters };
}

/** The type= parameter: a profile type ID, CPU when absent. */
export function typeOf(query: Query): string {
  const t = one(query, 'type');
  const type = requestedType(t);
  if (type === undefined) {
    throw new HttpError(
      400,
      'unknown profile type',
      `${JSON.stringify((t ?? '').slice(0, 200))} is not a profile type ID (name:sample_type:sample_unit:period_type:period_unit, e.g. ${CPU_TYPE_ID}; GET /api/v1/types lists them)`,
    );
  }
  return type;
}
