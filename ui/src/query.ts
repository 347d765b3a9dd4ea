/**
 * The API queries a view state asks for. Shared by the page and by the
 * prefetch script inlined in index.html, which must ask for exactly the same
 * URL for the page to pick its answer up.
 */

import type { DiffQuery, FlamegraphQuery } from '../../ingest/api.js';
import { apiUrl } from './api.js';
import type { ViewState } from './state.js';

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

export function flamegraphQuery(s: ViewState): FlamegraphQuery {
  return { service: s.service, from: s.from, to: s.to, label: s.labels, granularity: s.granularity };
}

export function diffQuery(s: ViewState): DiffQuery {
  const b = baseSide(s);
  const c = comparisonSide(s);
  return {
    service: s.service,
    granularity: s.granularity,
    baseFrom: b.from,
    baseTo: b.to,
    baseLabel: b.label,
    comparisonFrom: c.from,
    comparisonTo: c.to,
    comparisonLabel: c.label,
  };
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
