/**
 * Flame trees from aggregated stacks. ClickHouse sums samples per stack hash;
 * here each stack (cached by the Resolver as interned location indices) is
 * folded into a call tree keyed by integers, which the maxNodes bound then
 * shrinks by merging the smallest subtrees into one "[other]" node per parent,
 * so the widths still add up to the total.
 */

import type { DiffNode, FlameNode, Granularity, TopEntry, TopSort } from './api.js';
import { UNKNOWN_STACK_FN, type Resolver } from './dict.js';

export interface StackValue {
  hash: string;
  value: number;
}

export const OTHER = '[other]';

/**
 * What the tree needs to know about frames: for each location index, the key
 * it merges on (function, or location for granularity=line), and how to show
 * a key.
 */
export interface FrameView {
  /** Stack hash -> merge keys, root first; undefined for an unknown stack. */
  keys(hash: string): Int32Array | undefined;
  name(key: number): string;
  file(key: number): string;
  line(key: number): number;
}

/** Key space: function indices (granularity=function) or location indices offset past the function range (line). */
export function frameView(resolver: Resolver, granularity: Granularity): FrameView {
  const fns = resolver.functions;
  if (granularity === 'function') {
    const locFn = resolver.locFn;
    const memo = new Map<string, Int32Array>();
    return {
      keys(hash) {
        let k = memo.get(hash);
        if (k) return k;
        const locs = resolver.stack(hash);
        if (!locs) return undefined;
        k = new Int32Array(locs.length);
        for (let i = 0; i < locs.length; i++) k[i] = locFn[locs[i]!]!;
        memo.set(hash, k);
        return k;
      },
      name: (k) => fns[k]?.name ?? '',
      file: (k) => fns[k]?.filename ?? '',
      line: (k) => fns[k]?.startLine ?? 0,
    };
  }
  // Line granularity: location index + offset, so synthetic function keys (unknown stack) stay distinct.
  const off = fns.length + 1;
  return {
    keys(hash) {
      const locs = resolver.stack(hash);
      if (!locs) return undefined;
      const k = new Int32Array(locs.length);
      for (let i = 0; i < locs.length; i++) k[i] = locs[i]! + off;
      return k;
    },
    name: (k) => (k < off ? (fns[k]?.name ?? '') : (fns[resolver.locFn[k - off]!]?.name ?? '')),
    file: (k) => (k < off ? (fns[k]?.filename ?? '') : (fns[resolver.locFn[k - off]!]?.filename ?? '')),
    line: (k) => (k < off ? 0 : (resolver.locLine[k - off] ?? 0)),
  };
}

const UNKNOWN_KEYS = Int32Array.of(UNKNOWN_STACK_FN);

/**
 * A call-tree node with two sides of values: a (flame graph, or diff
 * comparison) and b (diff base). Most nodes of a call tree have one child, so
 * the first child is a field and a Map exists only from the second on: that
 * saves ~85k Map allocations on a 100k-node tree.
 */
export interface CallNode {
  key: number;
  depth: number;
  parent: CallNode | undefined;
  first: CallNode | undefined;
  more: Map<number, CallNode> | undefined;
  a: number;
  b: number;
  selfA: number;
  selfB: number;
  /** Nodes in this subtree, itself included (set by annotateSizes). */
  size: number;
}

function newNode(key: number, parent: CallNode | undefined): CallNode {
  return {
    key,
    depth: parent ? parent.depth + 1 : 0,
    parent,
    first: undefined,
    more: undefined,
    a: 0,
    b: 0,
    selfA: 0,
    selfB: 0,
    size: 1,
  };
}

export function childCount(n: CallNode): number {
  return n.first ? 1 + (n.more?.size ?? 0) : 0;
}

export function childrenOf(n: CallNode): CallNode[] {
  if (!n.first) return [];
  if (!n.more) return [n.first];
  return [n.first, ...n.more.values()];
}

function child(n: CallNode, key: number): CallNode {
  const f = n.first;
  if (!f) return (n.first = newNode(key, n));
  if (f.key === key) return f;
  let c = n.more?.get(key);
  if (!c) {
    c = newNode(key, n);
    (n.more ??= new Map()).set(key, c);
  }
  return c;
}

export function buildCallTree(view: FrameView, sideA: StackValue[], sideB: StackValue[] = []): CallNode {
  const root = newNode(-1, undefined);
  // Two plain loops rather than one indexed by side: keyed property access (node[side]) is several times slower here.
  for (const s of sideA) {
    const keys = view.keys(s.hash) ?? UNKNOWN_KEYS;
    let node = root;
    node.a += s.value;
    for (let i = 0; i < keys.length; i++) {
      node = child(node, keys[i]!);
      node.a += s.value;
    }
    node.selfA += s.value;
  }
  for (const s of sideB) {
    const keys = view.keys(s.hash) ?? UNKNOWN_KEYS;
    let node = root;
    node.b += s.value;
    for (let i = 0; i < keys.length; i++) {
      node = child(node, keys[i]!);
      node.b += s.value;
    }
    node.selfB += s.value;
  }
  annotateSizes(root);
  return root;
}

/** Sets size on every node, children before parents, without recursion (stacks can be 1,000 deep). */
function annotateSizes(root: CallNode): void {
  const order: CallNode[] = [];
  const todo = [root];
  while (todo.length) {
    const n = todo.pop()!;
    order.push(n);
    if (n.first) {
      todo.push(n.first);
      if (n.more) for (const c of n.more.values()) todo.push(c);
    }
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i]!;
    let size = 1;
    if (n.first) {
      size += n.first.size;
      if (n.more) for (const c of n.more.values()) size += c.size;
    }
    n.size = size;
  }
}

export function countNodes(root: CallNode): number {
  return root.size;
}

/** Max-heap of call nodes by weight, ties to the shallower node then the smaller key. */
class Heap {
  private readonly xs: CallNode[] = [];
  constructor(private readonly w: (n: CallNode) => number) {}
  get size(): number {
    return this.xs.length;
  }
  private before(x: CallNode, y: CallNode): boolean {
    const d = this.w(x) - this.w(y);
    if (d !== 0) return d > 0;
    if (x.depth !== y.depth) return x.depth < y.depth;
    return x.key < y.key;
  }
  push(n: CallNode): void {
    const xs = this.xs;
    xs.push(n);
    let i = xs.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(xs[i]!, xs[p]!)) break;
      [xs[i], xs[p]] = [xs[p]!, xs[i]!];
      i = p;
    }
  }
  pop(): CallNode | undefined {
    const xs = this.xs;
    const top = xs[0];
    const last = xs.pop();
    if (xs.length > 0 && last) {
      xs[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < xs.length && this.before(xs[l]!, xs[m]!)) m = l;
        if (r < xs.length && this.before(xs[r]!, xs[m]!)) m = r;
        if (m === i) break;
        [xs[i], xs[m]] = [xs[m]!, xs[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Chooses the nodes to keep under a maxNodes bound: grows the tree from the
 * root, always taking the heaviest node whose parent is already in (ties
 * toward the root), while the nodes taken plus one "[other]" per parent that
 * loses children still fit. A child never outweighs its parent, so this is
 * the heaviest-first order over the whole tree; the count only grows as nodes
 * are taken, so the first node that does not fit ends it.
 * Returns undefined when the whole tree fits.
 */
export function chooseKept(root: CallNode, weight: (n: CallNode) => number, maxNodes: number): Set<CallNode> | undefined {
  // Root plus one "[other]" is the smallest tree that still adds up.
  maxNodes = Math.max(2, maxNodes);
  if (root.size <= maxNodes) return undefined;
  const kept = new Set<CallNode>([root]);
  const keptChildren = new Map<CallNode, number>();
  let others = root.first ? 1 : 0;
  const heap = new Heap(weight);
  for (const c of childrenOf(root)) heap.push(c);
  while (heap.size > 0) {
    const n = heap.pop()!;
    const p = n.parent!;
    const pk = (keptChildren.get(p) ?? 0) + 1;
    const last = pk === childCount(p);
    // Taking n: +1 node, +1 "[other]" if n has children, -1 if it was p's last outside child.
    const next = kept.size + 1 + others + (n.first ? 1 : 0) - (last ? 1 : 0);
    if (next > maxNodes) break;
    kept.add(n);
    keptChildren.set(p, pk);
    if (n.first) others++;
    if (last) others--;
    for (const c of childrenOf(n)) heap.push(c);
  }
  return kept;
}

interface Dropped {
  a: number;
  b: number;
  nodes: number;
}

function dropped(n: CallNode, kept: Set<CallNode> | undefined): Dropped | undefined {
  if (!kept) return undefined;
  let out: Dropped | undefined;
  for (const c of childrenOf(n)) {
    if (kept.has(c)) continue;
    out ??= { a: 0, b: 0, nodes: 0 };
    out.a += c.a;
    out.b += c.b;
    out.nodes += c.size;
  }
  return out;
}

function sortedChildren(n: CallNode, kept: Set<CallNode> | undefined, view: FrameView): CallNode[] {
  const xs = kept ? childrenOf(n).filter((c) => kept.has(c)) : childrenOf(n);
  if (xs.length < 2) return xs;
  // Alphabetical, as flamegraph.pl and Pyroscope lay out siblings, then by
  // line and file (one function's lines at granularity=line): the same order
  // whatever order the store returned the stacks in.
  return xs
    .map((c) => ({ c, name: view.name(c.key), line: view.line(c.key), file: view.file(c.key) }))
    .sort((x, y) =>
      x.name < y.name ? -1 : x.name > y.name ? 1 : x.line - y.line || (x.file < y.file ? -1 : x.file > y.file ? 1 : x.c.key - y.c.key),
    )
    .map((x) => x.c);
}

function frameFields(n: CallNode, view: FrameView): { name: string; file?: string; line?: number } {
  if (n.key < 0) return { name: 'root' };
  const name = view.name(n.key);
  const file = view.file(n.key);
  const line = view.line(n.key);
  if (!file) return line ? { name, line } : { name };
  return { name, file, line };
}

export interface FlameResult {
  root: FlameNode;
  nodes: number;
  fullNodes: number;
}

export function toFlame(root: CallNode, view: FrameView, maxNodes: number): FlameResult {
  const fullNodes = countNodes(root);
  const kept = chooseKept(root, (n) => n.a, maxNodes);
  let nodes = 0;
  const convert = (n: CallNode): FlameNode => {
    nodes++;
    const children = sortedChildren(n, kept, view).map(convert);
    const d = dropped(n, kept);
    if (d) {
      nodes++;
      children.push({ name: OTHER, value: d.a, self: d.a, merged: d.nodes, children: [] });
    }
    const { name, ...where } = frameFields(n, view);
    return { name, value: n.a, self: n.selfA, ...where, children };
  };
  return { root: convert(root), nodes, fullNodes };
}

export interface DiffResult {
  root: DiffNode;
  nodes: number;
  fullNodes: number;
  baseScale: number;
}

/** a = comparison, b = base. Base is scaled to the comparison's total so shares, not counts, are compared. */
export function toDiff(root: CallNode, view: FrameView, maxNodes: number): DiffResult {
  const totalA = root.a;
  const totalB = root.b;
  const scale = totalB > 0 ? (totalA > 0 ? totalA / totalB : 1) : 0;
  const fullNodes = countNodes(root);
  const kept = chooseKept(root, (n) => n.a + n.b * scale, maxNodes);
  let nodes = 0;
  const node = (name: string, a: number, b: number, rest: Partial<DiffNode>, children: DiffNode[]): DiffNode => {
    const baseScaled = b * scale;
    return {
      name,
      value: round(a + baseScaled),
      delta: round(a - baseScaled),
      base: b,
      comparison: a,
      baseShare: totalB > 0 ? b / totalB : 0,
      comparisonShare: totalA > 0 ? a / totalA : 0,
      ...rest,
      children,
    };
  };
  const convert = (n: CallNode): DiffNode => {
    nodes++;
    const children = sortedChildren(n, kept, view).map(convert);
    const d = dropped(n, kept);
    if (d) {
      nodes++;
      children.push(node(OTHER, d.a, d.b, { merged: d.nodes }, []));
    }
    const { name, ...where } = frameFields(n, view);
    return node(name, n.a, n.b, where, children);
  };
  return { root: convert(root), nodes, fullNodes, baseScale: scale };
}

/** Six significant decimals: keeps JSON small and exact integers exact. */
function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

export function topFunctions(view: FrameView, stacks: StackValue[], sort: TopSort, order: 'asc' | 'desc'): { total: number; entries: TopEntry[] } {
  const self = new Map<number, number>();
  const tot = new Map<number, number>();
  let total = 0;
  const seen = new Set<number>();
  for (const s of stacks) {
    const keys = view.keys(s.hash) ?? UNKNOWN_KEYS;
    if (keys.length === 0) continue;
    total += s.value;
    seen.clear();
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (seen.has(k)) continue; // recursion: count a function once per stack
      seen.add(k);
      tot.set(k, (tot.get(k) ?? 0) + s.value);
    }
    const leaf = keys[keys.length - 1]!;
    self.set(leaf, (self.get(leaf) ?? 0) + s.value);
  }
  const entries: TopEntry[] = [...tot.entries()].map(([k, t]) => {
    const sf = self.get(k) ?? 0;
    return {
      name: view.name(k),
      file: view.file(k),
      line: view.line(k),
      self: sf,
      total: t,
      selfShare: total > 0 ? sf / total : 0,
      totalShare: total > 0 ? t / total : 0,
    };
  });
  const dir = order === 'asc' ? 1 : -1;
  const tie = (x: TopEntry, y: TopEntry): number =>
    x.name < y.name ? -1 : x.name > y.name ? 1 : x.file < y.file ? -1 : x.file > y.file ? 1 : x.line - y.line;
  entries.sort((x, y) => {
    if (sort === 'name') return dir * tie(x, y);
    const d = sort === 'self' ? x.self - y.self || x.total - y.total : x.total - y.total || x.self - y.self;
    return dir * d || tie(x, y);
  });
  return { total, entries };
}
