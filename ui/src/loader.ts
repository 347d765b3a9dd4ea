/**
 * Loading: the API calls a view needs, in the order the page needs them.
 * The graph is asked first (or taken from the prefetch script, which asked
 * before the bundle loaded), the service list once per page, and the rest
 * (timeline, label values, table) only once the graph is in, since the store
 * runs few statements at once. A new load cancels the one before it; answers
 * of a cancelled load are dropped.
 */

import type { DiffResponse, FlamegraphResponse, LabelInfo, ServiceInfo, TimelineResponse } from '../../ingest/api.js';
import { api } from './api.js';
import type { FlameData } from './flame.js';
import type { PageState } from './page.js';
import { diffQuery, flamegraphQuery, graphUrl, labelsQuery, servicesQuery, timelineQuery, topQueries } from './query.js';
import type { ViewState } from './state.js';
import { diffRows, type TableData } from './top.js';

/** The service to open when the URL names none: the busiest is the likeliest reason someone opened the page. */
export function busiest(list: readonly ServiceInfo[]): ServiceInfo | undefined {
  let best: ServiceInfo | undefined;
  for (const s of list) if (!best || s.samples > best.samples) best = s;
  return best;
}

export interface Secondary {
  timeline(t: TimelineResponse): void;
  labels(l: LabelInfo[]): void;
  table(t: TableData): void;
}

export class Loader {
  private inflight: AbortController | undefined;

  constructor(private readonly page: PageState) {}

  /** Cancels the load in progress and returns the signal of the next one. */
  start(): AbortSignal {
    this.inflight?.abort();
    this.inflight = new AbortController();
    return this.inflight.signal;
  }

  /** The graph of `s`: the prefetched answer when it is for the same URL (once), else a request. */
  graph(s: ViewState, signal: AbortSignal): Promise<FlameData> {
    const pre = window.kilnPrefetch;
    window.kilnPrefetch = undefined;
    if (pre && pre.url === graphUrl(s)) {
      const kind = s.mode;
      return api
        .adopt<FlamegraphResponse | DiffResponse>(pre.url, pre.response)
        .then((resp): FlameData => (kind === 'diff' ? { kind, resp: resp as DiffResponse } : { kind, resp: resp as FlamegraphResponse }));
    }
    if (s.mode === 'diff') return api.diff(diffQuery(s), signal).then((resp): FlameData => ({ kind: 'diff', resp }));
    return api.flamegraph(flamegraphQuery(s), signal).then((resp): FlameData => ({ kind: 'single', resp }));
  }

  /** The service list, kept in the page state once it came (Retry clears it to ask again). */
  services(signal: AbortSignal): Promise<ServiceInfo[]> {
    const have = this.page.services;
    if (have) return Promise.resolve(have);
    return api.services(servicesQuery(), signal).then((r) => (this.page.services = r.services));
  }

  /** Timeline, label values and the table of `s`; each is handed to `on` when it arrives, unless the load was cancelled. */
  secondary(s: ViewState, signal: AbortSignal, on: Secondary): void {
    // A failure here leaves that part empty; the graph already told the user whether the API works.
    const deliver = <T>(p: Promise<T>, to: (v: T) => void): void => {
      p.then(
        (v) => {
          if (!signal.aborted) to(v);
        },
        () => {},
      );
    };
    deliver(api.timeline(timelineQuery(s), signal), (t) => on.timeline(t));
    deliver(
      api.labels(labelsQuery(s), signal).then((r) => r.labels),
      (l) => on.labels(l),
    );
    const tq = topQueries(s);
    const table: Promise<TableData> = tq.base
      ? Promise.all([api.top(tq.base, signal), api.top(tq.shown, signal)]).then(
          ([b, c]): TableData => ({ kind: 'diff', baseTotal: b.total, compTotal: c.total, rows: diffRows(b, c) }),
        )
      : api.top(tq.shown, signal).then((t): TableData => ({ kind: 'single', total: t.total, count: t.count, rows: t.functions }));
    deliver(table, (t) => on.table(t));
  }
}
