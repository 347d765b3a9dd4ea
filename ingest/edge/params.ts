/**
 * Query-string parameters: reading them (each at most once unless it repeats
 * by design), refusing ones an endpoint does not take, and the shared
 * selection (service, range, label filters) of the query endpoints.
 */

import type { Request } from 'express';
import type { Granularity } from '../api.js';
import { HttpError, checkService, type Limits } from '../limits.js';
import { parseFilters, type Selection } from '../query.js';
import { parseRange } from '../time.js';

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
export const RANGE_PARAMS = ['service', 'from', 'to', 'label', 'query'] as const;

/** service, range and filters of a query; with a prefix (base, comparison), side parameters override the shared ones. */
export function selection(query: Query, limits: Limits, prefix = ''): Selection {
  const side = (name: string): string | undefined =>
    (prefix ? one(query, `${prefix}${name[0]!.toUpperCase()}${name.slice(1)}`) : undefined) ?? one(query, name);
  const labels = [...many(query, 'label'), ...(prefix ? many(query, `${prefix}Label`) : [])];
  const { filters, service: fromSelector } = parseFilters(labels, one(query, 'query'), limits);
  const given = one(query, 'service');
  if (given !== undefined && fromSelector !== undefined && given !== fromSelector) {
    throw new HttpError(400, 'bad service', `service=${given} and query=${fromSelector}{...} disagree`);
  }
  const service = checkService(given ?? fromSelector);
  const range = parseRange(side('from'), side('to'), {
    now: Date.now(),
    maxRangeMs: limits.maxQueryRangeMs,
    prefix: prefix ? `${prefix} ` : '',
  });
  return { service, range, filters };
}
