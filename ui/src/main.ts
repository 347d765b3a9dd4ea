/**
 * Kiln's web UI: per-service flame graphs, diffs, top functions and a
 * timeline over the query API (ingest/api.ts). The entry point: it finds the
 * page's elements and starts the state flow (app.ts).
 */

import { App } from './app.js';
import { pageElements } from './dom.js';
// Last, so it overrides d3-flame-graph's stylesheet (imported by the library itself).
import './styles.css';

new App(pageElements()).start();
