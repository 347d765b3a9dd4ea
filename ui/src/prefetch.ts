/**
 * Inlined into index.html's <head> by ui/build.ts: starts the flame-graph
 * request while the browser is still fetching and parsing the main bundle
 * (a couple of hundred milliseconds on a cold load), since that request is
 * what the first render waits for. main.ts takes the response if it wants
 * the same URL; otherwise it is simply not used.
 */

import { graphUrl } from './query.js';
import { parseState } from './state.js';

const url = graphUrl(parseState(location.search));
if (url) window.kilnPrefetch = { url, response: fetch(url, { headers: { Accept: 'application/json' } }) };
