/**
 * Kiln's ids: every function, location (function + line), stack (location
 * ids, leaf first) and label set is a 64-bit FNV-1a hash, so any number of
 * Kiln processes (and the bench's bulk loader) agree on them without
 * coordination. Changing any of these changes every id in the store.
 *
 * The ingest hot path (ingest/rows.ts) computes the same hashes straight from pprof
 * bytes; test/ingest-rows.test.ts checks it against these definitions.
 */

import { Fnv64, type Id64 } from './hash.js';

export interface FunctionKey {
  name: string;
  systemName: string;
  filename: string;
  startLine: number;
}

export function functionIdOf(f: FunctionKey): Id64 {
  return new Fnv64().string(f.name).string(f.systemName).string(f.filename).u32(f.startLine).digest();
}

export function locationIdOf(functionId: Id64, line: number): Id64 {
  return new Fnv64().id(functionId).u32(line).digest();
}

/** Over the location ids leaf first, as stored in kiln_stacks.location_ids. */
export function stackIdOf(locations: readonly { lo: number; hi: number }[]): Id64 {
  const h = new Fnv64();
  for (const l of locations) h.id(l);
  return h.digest();
}

/** Series labels win over sample labels of the same name; pairs sorted by name. */
export function mergedLabels(sample: Record<string, string>, series: Record<string, string>): [string, string][] {
  const merged = new Map<string, string>(Object.entries(sample));
  for (const [k, v] of Object.entries(series)) merged.set(k, v);
  return sortedLabels(merged);
}

export function sortedLabels(m: Map<string, string>): [string, string][] {
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function labelsIdOf(service: string, sorted: readonly (readonly [string, string])[]): Id64 {
  const h = new Fnv64().string(service);
  for (const [k, v] of sorted) h.string(k).string(v);
  return h.digest();
}
