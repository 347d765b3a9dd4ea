/**
 * The page's state, all in one object: the view (what the URL holds) and
 * what the page has loaded and opened for it. The modules that load, draw and
 * handle controls read and write this object; nothing else holds state.
 */

import type { LabelInfo, ServiceInfo } from '../../ingest/api.js';
import type { FlameData } from './flame.js';
import { CPU_SAMPLES, type Measure } from './format.js';
import type { ViewState } from './state.js';
import type { TableData } from './top.js';

export interface PageState {
  /** What is on screen, as the query string holds it. */
  view: ViewState;
  /** /api/v1/services; undefined until loaded, and after Retry (asked again). */
  services: ServiceInfo[] | undefined;
  /** The service's label names and values in range, for the filter pickers. */
  labels: LabelInfo[];
  /** dataKey() of the view whose data is on screen or on its way. */
  loadedKey: string | undefined;
  /** The graph on screen; undefined while loading and when a message shows instead. */
  graph: FlameData | undefined;
  table: TableData | undefined;
  /** What the values on screen measure: the graph answer's type, unit and scale (format.ts measureOf). */
  measure: Measure;
  /** The custom time range form is open. */
  customOpen: boolean;
}

export function pageState(view: ViewState): PageState {
  return { view, services: undefined, labels: [], loadedKey: undefined, graph: undefined, table: undefined, measure: CPU_SAMPLES, customOpen: false };
}
