/**
 * The query side's cache over the dictionary tables (stacks, locations,
 * functions): id -> content for building flame graphs, filled from
 * ClickHouse in batches. Only a cache: the process stays stateless, and a
 * cold one just asks ClickHouse. (What ingest remembers writing today lives
 * in each ingest worker: rows.ts.)
 */

import type { Store } from './store.js';

export interface FunctionInfo {
  name: string;
  systemName: string;
  filename: string;
  startLine: number;
}

/**
 * A bounded cache with O(1) reads: two generations of Maps. Hits in the old
 * generation are promoted; when the young one fills, the old one is dropped.
 * Cheaper than a strict LRU on hot paths that touch 100k+ entries per query.
 */
export class TwoGen<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  constructor(readonly capacity: number) {}
  get(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) this.set(key, o);
    return o;
  }
  has(key: K): boolean {
    return this.young.has(key) || this.old.has(key);
  }
  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }
  set(key: K, value: V): void {
    if (this.young.size >= this.capacity / 2) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
}

/** Chunk size for `id IN {ids:Array(UInt64)}` lookups: keeps the HTTP query string well under ClickHouse's 1 MiB URI limit. */
const LOOKUP_CHUNK = 5_000;

/** Function index of the frame shown for a stack the store does not know. */
export const UNKNOWN_STACK_FN = 0;
/** Function index of the frame shown for a location the store does not know. */
export const UNKNOWN_LOCATION_FN = 1;

/**
 * id -> content for flame graphs. Functions and locations are interned as
 * small integers and each stack is cached as an Int32Array of location
 * indices, root first, so building a tree of 100k nodes is integer work.
 * Queries fill it from ClickHouse.
 */
export class Resolver {
  private readonly stacks: TwoGen<string, Int32Array>;
  private funcIndex = new Map<string, number>();
  private locIndex = new Map<string, number>();
  /** Per function index. */
  functions: FunctionInfo[] = [];
  /** Per location index: function index and line. */
  locFn: number[] = [];
  locLine: number[] = [];
  /** Bumped whenever the interned tables start over; indices from an older epoch are void. */
  epoch = 0;

  constructor(
    stackCapacity = 300_000,
    private readonly maxLocations = 2_000_000,
  ) {
    this.stacks = new TwoGen(stackCapacity);
    this.reset();
  }

  private reset(): void {
    this.epoch++;
    this.stacks.clear();
    this.funcIndex = new Map();
    this.locIndex = new Map();
    this.functions = [
      { name: '[unknown stack]', systemName: '[unknown stack]', filename: '', startLine: 0 },
      { name: '[unknown location]', systemName: '[unknown location]', filename: '', startLine: 0 },
    ];
    this.locFn = [];
    this.locLine = [];
  }

  internFunction(id: string, info: FunctionInfo): number {
    let i = this.funcIndex.get(id);
    if (i === undefined) {
      i = this.functions.length;
      this.functions.push(info);
      this.funcIndex.set(id, i);
    }
    return i;
  }

  internLocation(id: string, fn: number, line: number): number {
    let i = this.locIndex.get(id);
    if (i === undefined) {
      i = this.locFn.length;
      this.locFn.push(fn);
      this.locLine.push(line);
      this.locIndex.set(id, i);
    }
    return i;
  }

  /** Caches a stack given its location indices leaf first (pprof's and kiln_stacks' order). */
  setStack(hash: string, leafFirst: number[]): void {
    const a = new Int32Array(leafFirst.length);
    for (let i = 0; i < leafFirst.length; i++) a[i] = leafFirst[leafFirst.length - 1 - i]!;
    this.stacks.set(hash, a);
  }

  hasStack(hash: string): boolean {
    return this.stacks.has(hash);
  }

  /** Location indices root first, or undefined when the stack is not known. */
  stack(hash: string): Int32Array | undefined {
    return this.stacks.get(hash);
  }

  /**
   * Makes sure every given stack is cached, with its locations and functions,
   * as far as the store knows them. Stacks the store does not know stay out;
   * callers show them as "[unknown stack]".
   */
  async load(store: Store, stackHashes: readonly string[]): Promise<void> {
    if (this.locFn.length > this.maxLocations) {
      // Interned tables only grow; start over rather than hold a fleet's history.
      this.reset();
    }
    const missing: string[] = [];
    for (const h of stackHashes) if (!this.stacks.has(h)) missing.push(h);
    if (missing.length === 0) return;
    const stackLocs = new Map<string, string[]>();
    for (const chunk of chunks(missing, LOOKUP_CHUNK)) {
      const rows = await store.rows(
        `SELECT toString(stack_hash), arrayMap(x -> toString(x), any(location_ids))
         FROM ${store.t.stacks} WHERE stack_hash IN {ids:Array(UInt64)} GROUP BY stack_hash`,
        { ids: chunk.map((h) => BigInt(h)) },
      );
      for (const r of rows) stackLocs.set(String(r[0]), (r[1] as unknown[]).map(String));
    }
    const newLocs = new Set<string>();
    for (const locs of stackLocs.values()) for (const l of locs) if (!this.locIndex.has(l)) newLocs.add(l);
    const locRows = new Map<string, { fn: string; line: number }>();
    for (const chunk of chunks([...newLocs], LOOKUP_CHUNK)) {
      const rows = await store.rows(
        `SELECT toString(location_id), toString(any(function_id)), any(line)
         FROM ${store.t.locations} WHERE location_id IN {ids:Array(UInt64)} GROUP BY location_id`,
        { ids: chunk.map((h) => BigInt(h)) },
      );
      for (const r of rows) locRows.set(String(r[0]), { fn: String(r[1]), line: Number(r[2]) });
    }
    const newFns = new Set<string>();
    for (const l of locRows.values()) if (!this.funcIndex.has(l.fn)) newFns.add(l.fn);
    for (const chunk of chunks([...newFns], LOOKUP_CHUNK)) {
      const rows = await store.rows(
        `SELECT toString(function_id), any(name), any(system_name), any(filename), any(start_line)
         FROM ${store.t.functions} WHERE function_id IN {ids:Array(UInt64)} GROUP BY function_id`,
        { ids: chunk.map((h) => BigInt(h)) },
      );
      for (const r of rows) {
        this.internFunction(String(r[0]), { name: String(r[1]), systemName: String(r[2]), filename: String(r[3]), startLine: Number(r[4]) });
      }
    }
    for (const [l, row] of locRows) this.internLocation(l, this.funcIndex.get(row.fn) ?? UNKNOWN_LOCATION_FN, row.line);
    for (const [h, locs] of stackLocs) {
      this.setStack(
        h,
        locs.map((l) => this.locIndex.get(l) ?? this.internLocation(l, UNKNOWN_LOCATION_FN, 0)),
      );
    }
  }
}

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
