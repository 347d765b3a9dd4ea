/**
 * The query parameters each API endpoint takes, as ingest/api.ts defines
 * them: the page must send nothing else (the server refuses unknown
 * parameters). Each list is typed as exactly its query type's keys, so it
 * cannot drift from the contract. Shared by test/ui-query.test.ts (the query
 * builders) and test/ui.test.ts (every request the page sends).
 */

import type { DiffQuery, FlamegraphQuery, LabelsQuery, PprofQuery, ServicesQuery, TimelineQuery, TopQuery, TypesQuery } from '../ingest/api.js';

/** Every key of T, each exactly once: a missing or extra key is a type error. */
const keysOf = <T>(all: Record<keyof T, true>): string[] => Object.keys(all);

export const ENDPOINT_PARAMS: Record<string, string[]> = {
  services: keysOf<ServicesQuery>({ from: true, to: true }),
  labels: keysOf<LabelsQuery>({ service: true, type: true, from: true, to: true, label: true, query: true }),
  types: keysOf<TypesQuery>({ service: true, from: true, to: true, label: true, query: true }),
  flamegraph: keysOf<FlamegraphQuery>({ service: true, type: true, from: true, to: true, label: true, query: true, maxNodes: true, granularity: true }),
  diff: keysOf<DiffQuery>({
    service: true,
    type: true,
    from: true,
    to: true,
    label: true,
    query: true,
    maxNodes: true,
    granularity: true,
    baseFrom: true,
    baseTo: true,
    baseLabel: true,
    comparisonFrom: true,
    comparisonTo: true,
    comparisonLabel: true,
  }),
  top: keysOf<TopQuery>({ service: true, type: true, from: true, to: true, label: true, query: true, sort: true, order: true, limit: true, granularity: true }),
  timeline: keysOf<TimelineQuery>({ service: true, type: true, from: true, to: true, label: true, query: true, step: true }),
  pprof: keysOf<PprofQuery>({ service: true, type: true, from: true, to: true, label: true, query: true }),
};

/** The parameters of an /api/v1/ URL its endpoint does not take (empty when all is well). */
export function unknownParams(url: string): string[] {
  const u = new URL(url);
  const endpoint = u.pathname.replace(/^.*\/api\/v1\//, '');
  const allowed = ENDPOINT_PARAMS[endpoint];
  if (!allowed) return [`(no such endpoint: ${endpoint})`];
  return [...new Set(u.searchParams.keys())].filter((k) => !allowed.includes(k));
}
