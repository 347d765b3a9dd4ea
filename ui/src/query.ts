/**
 * The API queries a view state asks for, one function per request, each
 * typed by its endpoint's query in ingest/api.ts and carrying only the
 * parameters that endpoint takes (the server refuses unknown ones). Shared by
 * the page and by the prefetch script inlined in index.html, which must ask
 * for exactly the same graph URL for the page to pick its answer up.
 */

import type { DiffQuery, FlamegraphQuery, LabelsQuery, PprofQuery, ServicesQuery, TimelineQuery, TopQuery } from '../../ingest/api.js';
import { apiUrl } from './api.js';
import type { ViewState } from './state.js';
import { CPU_TYPE_ID } from '../../profile/profile-type.js';

/** /api/v1/services over the longest range the server allows (32 days), so every retained service is listed. */
export const SERVICES_RANGE = 'now-30d';
/** Functions fetched for the table; the server sorts by self, the table re-sorts locally. */
export const TOP_LIMIT = '2000';

export interface Side {
  from: string;
  to: string;
  label: string[];
}

export function comparisonSide(s: ViewState): Side {
  return { from: s.comparisonFrom ?? s.from, to: s.comparisonTo ?? s.to, label: [...s.labels, ...s.comparisonLabels] };
}

export function baseSide(s: ViewState): Side {
  return { from: s.baseFrom ?? s.from, to: s.baseTo ?? s.to, label: [...s.labels, ...s.baseLabels] };
}

/** The side on screen: the range and labels of a single graph, the comparison of a diff. */
export function shownSide(s: ViewState): Side {
  return s.mode === 'diff' ? comparisonSide(s) : { from: s.from, to: s.to, label: s.labels };
}

export function servicesQuery(): ServicesQuery {
  return { from: SERVICES_RANGE };
}

/** type= when it is not the default, so the common URL stays short. */
function typeOf(s: ViewState): { type?: string } {
  return s.type !== CPU_TYPE_ID ? { type: s.type } : {};
}

export function flamegraphQuery(s: ViewState): FlamegraphQuery {
  return { service: s.service, ...typeOf(s), from: s.from, to: s.to, label: s.labels, granularity: s.granularity };
}

export function diffQuery(s: ViewState): DiffQuery {
  const b = baseSide(s);
  const c = comparisonSide(s);
  return {
    service: s.service,
    ...typeOf(s),
    granularity: s.granularity,
    baseFrom: b.from,
    baseTo: b.to,
    baseLabel: b.label,
    comparisonFrom: c.from,
    comparisonTo: c.to,
    comparisonLabel: c.label,
  };
}

/** Samples over time of the side on screen. */
export function timelineQuery(s: ViewState): TimelineQuery {
  const side = shownSide(s);
  return { service: s.service, ...typeOf(s), from: side.from, to: side.to, label: side.label };
}

/** Label names and values for the pickers: the main range, no filters (a filter must not hide its own alternatives). */
export function labelsQuery(s: ViewState): LabelsQuery {
  return { service: s.service, ...typeOf(s), from: s.from, to: s.to };
}

/** The table's queries: the side on screen, and in a diff the base first. */
export function topQueries(s: ViewState): { base?: TopQuery; shown: TopQuery } {
  const q = (side: Side): TopQuery => ({ service: s.service, ...typeOf(s), from: side.from, to: side.to, label: side.label, granularity: s.granularity, limit: TOP_LIMIT });
  return s.mode === 'diff' ? { base: q(baseSide(s)), shown: q(comparisonSide(s)) } : { shown: q(shownSide(s)) };
}

/** Downloads: the merged profile on screen (the comparison in a diff), and the base in a diff. */
export function pprofQueries(s: ViewState): { base?: PprofQuery; shown: PprofQuery } {
  const q = (side: Side): PprofQuery => ({ service: s.service, ...typeOf(s), from: side.from, to: side.to, label: side.label });
  return s.mode === 'diff' ? { base: q(baseSide(s)), shown: q(comparisonSide(s)) } : { shown: q(shownSide(s)) };
}

/** The URL of the graph request for a state (undefined when no service is chosen yet). */
export function graphUrl(s: ViewState): string | undefined {
  if (!s.service) return undefined;
  return s.mode === 'diff' ? apiUrl('diff', { ...diffQuery(s) }) : apiUrl('flamegraph', { ...flamegraphQuery(s) });
}

/** What the prefetch script leaves on window for the page. */
export interface Prefetch {
  url: string;
  response: Promise<Response>;
}

declare global {
  interface Window {
    kilnPrefetch?: Prefetch;
  }
}
