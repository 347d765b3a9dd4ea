/**
 * The ingest service's pure parts: hashing, time parsing, tree building and
 * the maxNodes merge, Pyroscope's name / folded / multipart formats.
 * (test/ingest.test.ts runs the service against the real engine.)
 */

import { describe, expect, it } from 'vitest';
import { Fnv64, fnv1a64, idFromDec } from '../profile/hash.js';
import { DEFAULT_LIMITS, HttpError } from '../ingest/limits.js';
import { inflate } from '../ingest/worker.js';
import { parseAppName, parseFolded } from '../ingest/pyroscope.js';
import { parseFilters, autoStep, plan } from '../ingest/query.js';
import { parseRange, parseTime } from '../ingest/time.js';
import { buildCallTree, childrenOf, chooseKept, toDiff, toFlame, topFunctions, type CallNode, type FrameView, OTHER } from '../ingest/tree.js';
import { tsvMap, tsvEscape } from '../ingest/tsv.js';
import { gzipSync } from 'node:zlib';
import type { FlameNode } from '../ingest/api.js';

/** Reference FNV-1a 64 in BigInt, to check the limb arithmetic. */
function fnvRef(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

describe('FNV-1a 64', () => {
  it('matches the published test vectors', () => {
    expect(fnv1a64('').dec).toBe(0xcbf29ce484222325n.toString());
    expect(fnv1a64('a').dec).toBe(0xaf63dc4c8601ec8cn.toString());
    expect(fnv1a64('foobar').dec).toBe(0x85944171f73967e8n.toString());
  });

  it('matches a BigInt reference on random input', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let n = 0; n < 200; n++) {
      const bytes = new Uint8Array(n * 3).map(() => rnd());
      expect(fnv1a64(bytes).dec).toBe(fnvRef(bytes).toString());
    }
  });

  it('hashes ids by their 8 little-endian bytes and round-trips decimal text', () => {
    const id = idFromDec('18446744073709551615');
    expect(id).toMatchObject({ lo: 0xffffffff, hi: 0xffffffff });
    const bytes = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(new Fnv64().id(id).digest().dec).toBe(fnvRef(bytes).toString());
    expect(idFromDec(fnv1a64('x').dec)).toEqual(fnv1a64('x'));
  });

  it('separates strings so ("ab","c") and ("a","bc") differ', () => {
    expect(new Fnv64().string('ab').string('c').digest().dec).not.toBe(new Fnv64().string('a').string('bc').digest().dec);
  });
});

describe('time parsing', () => {
  const now = Date.UTC(2026, 5, 1, 12, 0, 0);
  it('reads relative times', () => {
    expect(parseTime('now', now)).toBe(now);
    expect(parseTime('now-1h', now)).toBe(now - 3_600_000);
    expect(parseTime('now-7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseTime('now-15m', now)).toBe(now - 900_000);
    expect(parseTime('now+30s', now)).toBe(now + 30_000);
  });
  it('reads epoch seconds, milliseconds and nanoseconds by magnitude', () => {
    expect(parseTime('1780315200', now)).toBe(1780315200_000);
    expect(parseTime('1780315200123', now)).toBe(1780315200123);
    expect(parseTime('1780315200123456789', now)).toBe(1780315200123);
  });
  it('reads RFC 3339', () => {
    expect(parseTime('2026-06-01T12:00:00Z', now)).toBe(now);
    expect(parseTime('2026-06-01T14:00:00+02:00', now)).toBe(now);
    expect(parseTime('2026-06-01T12:00:00.250Z', now)).toBe(now + 250);
  });
  it('rejects nonsense with a 400', () => {
    for (const bad of ['yesterday', 'now-1x', '12:00', '2026-13-45T00:00:00Z', 'NaN']) {
      expect(() => parseTime(bad, now), bad).toThrow(HttpError);
    }
  });
  it('defaults to the last hour and checks the order and span', () => {
    expect(parseRange(undefined, undefined, { now, maxRangeMs: 86_400_000 })).toEqual({ from: now - 3_600_000, to: now });
    expect(() => parseRange('now', 'now-1h', { now, maxRangeMs: 86_400_000 })).toThrow(/before/);
    expect(() => parseRange('now-2d', 'now', { now, maxRangeMs: 86_400_000 })).toThrow(/limit/);
  });
  it('plans rollups for whole buckets and raw samples for the edges, covering the range exactly', () => {
    const H = 3_600_000;
    const base = Date.UTC(2026, 5, 1);
    const p = plan({ from: base - 25 * 60_000 + 500, to: base + 5 * H + 7 * 60_000 });
    expect(p.map((x) => [x.table, x.toS - x.fromS])).toEqual([
      ['samples', 5 * 60 - 1],
      ['samples_10m', 20 * 60],
      ['samples_1h', 5 * 3600],
      ['samples', 7 * 60],
    ]);
    // With label filters the 10-minute rollup (summed over label sets) is out.
    const labelled = plan({ from: base - 25 * 60_000 + 500, to: base + 5 * H + 7 * 60_000 }, undefined, true);
    expect(labelled.map((x) => [x.table, x.toS - x.fromS])).toEqual([
      ['samples', 25 * 60 - 1],
      ['samples_1h', 5 * 3600],
      ['samples', 7 * 60],
    ]);
    let seed = 7;
    const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 500; i++) {
      const from = base + rnd(48 * H);
      const to = from + 1 + rnd(30 * H);
      const pieces = plan({ from, to }).sort((a, b) => a.fromS - b.fromS);
      expect(pieces[0]!.fromS).toBe(Math.ceil(from / 1000));
      expect(pieces.at(-1)!.toS).toBe(Math.ceil(to / 1000));
      for (let j = 1; j < pieces.length; j++) expect(pieces[j]!.fromS).toBe(pieces[j - 1]!.toS);
      for (const x of pieces) {
        const width = x.table === 'samples_1h' ? 3600 : x.table === 'samples_10m' ? 600 : 1;
        expect(x.fromS % width).toBe(0);
        expect(x.toS % width).toBe(0);
      }
    }
    // A timeline step of 15 minutes is no multiple of an hour: the hourly rollup is skipped.
    expect(plan({ from: base, to: base + 3 * H }, (b) => 900 % b === 0).map((x) => x.table)).toEqual(['samples']);
    expect(plan({ from: base, to: base + 3 * H }, (b) => 1200 % b === 0).map((x) => x.table)).toEqual(['samples_10m']);
  });

  it('picks round timeline steps', () => {
    expect(autoStep({ from: 0, to: 3_600_000 })).toBe(30_000);
    expect(autoStep({ from: 0, to: 86_400_000 })).toBe(600_000);
  });
});

/** A FrameView over plain names: every frame in w.py at line 1. */
function viewOf(stacks: Record<string, string[]>): FrameView {
  const names: string[] = [];
  const index = new Map<string, number>();
  const intern = (n: string): number => {
    let i = index.get(n);
    if (i === undefined) {
      i = names.length;
      names.push(n);
      index.set(n, i);
    }
    return i;
  };
  const keys = new Map(Object.entries(stacks).map(([h, fs]) => [h, Int32Array.from(fs.map(intern))]));
  return { keys: (h) => keys.get(h), name: (k) => names[k] ?? '', file: () => 'w.py', line: () => 1 };
}

function find(root: FlameNode, path: string[]): FlameNode | undefined {
  let n: FlameNode | undefined = root;
  for (const p of path) n = n?.children.find((c) => c.name === p);
  return n;
}

function count(n: { children: unknown[] }): number {
  return 1 + (n.children as { children: unknown[] }[]).reduce((s, c) => s + count(c), 0);
}

describe('flame trees', () => {
  const frames = viewOf({
    '1': ['main', 'run', 'a'],
    '2': ['main', 'run', 'b'],
    '3': ['main', 'run', 'c'],
    '4': ['main', 'idle'],
    '5': ['main', 'run', 'a', 'a', 'a'],
  });
  const stacks = [
    { hash: '1', value: 600 },
    { hash: '2', value: 300 },
    { hash: '3', value: 90 },
    { hash: '4', value: 9 },
    { hash: '5', value: 1 },
  ];

  it('sums totals and self along paths', () => {
    const t = toFlame(buildCallTree(frames, stacks), frames, 1000);
    expect(t.root.value).toBe(1000);
    expect(find(t.root, ['main', 'run'])?.value).toBe(991);
    expect(find(t.root, ['main', 'run', 'a'])).toMatchObject({ value: 601, self: 600, file: 'w.py', line: 1 });
    expect(t.nodes).toBe(t.fullNodes);
    expect(count(t.root)).toBe(t.nodes);
  });

  it('merges the smallest nodes into [other] under maxNodes, keeping every sum', () => {
    for (let max = 2; max <= 10; max++) {
      const t = toFlame(buildCallTree(frames, stacks), frames, max);
      expect(count(t.root), `maxNodes ${max}`).toBeLessThanOrEqual(max);
      expect(t.nodes).toBe(count(t.root));
      // Widths still add up: every node's children sum to at most its value.
      const check = (n: FlameNode): void => {
        const sum = n.children.reduce((s, c) => s + c.value, 0);
        expect(sum + n.self).toBe(n.value);
        n.children.forEach(check);
      };
      check(t.root);
      expect(t.root.value).toBe(1000);
    }
    // 8 nodes: root, main, run, a, b, c, idle, and an [other] under a for
    // the two smallest (the recursion).
    const t = toFlame(buildCallTree(frames, stacks), frames, 8);
    expect(t.nodes).toBe(8);
    expect(find(t.root, ['main', 'run', 'a'])?.value).toBe(601);
    expect(find(t.root, ['main', 'run', 'c'])?.value).toBe(90);
    expect(find(t.root, ['main', 'idle'])?.value).toBe(9);
    expect(find(t.root, ['main', 'run', 'a', OTHER])).toMatchObject({ value: 1, merged: 2 });
  });

  it('keeps the same nodes as the heaviest-prefix definition, on random trees', () => {
    // Reference: sort all nodes heaviest first (ties toward the root), keep the
    // longest prefix whose nodes plus one [other] per parent losing children fit.
    const reference = (root: CallNode, max: number): Set<CallNode> => {
      const all: CallNode[] = [];
      const walk = (n: CallNode): void => childrenOf(n).forEach((c) => (all.push(c), walk(c)));
      walk(root);
      all.sort((x, y) => y.a - x.a || x.depth - y.depth || x.key - y.key);
      const prefix = (k: number): Set<CallNode> => {
        const kept = new Set<CallNode>([root]);
        for (const n of all.slice(0, k)) if (kept.has(n.parent!)) kept.add(n);
        return kept;
      };
      const cost = (kept: Set<CallNode>): number =>
        kept.size + [...kept].filter((n) => childrenOf(n).some((c) => !kept.has(c))).length;
      let k = 0;
      while (k < all.length && cost(prefix(k + 1)) <= max) k++;
      return prefix(k);
    };
    let seed = 99;
    const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let trial = 0; trial < 40; trial++) {
      const stacks: Record<string, string[]> = {};
      const values = [];
      for (let i = 0; i < 30; i++) {
        stacks[String(i)] = Array.from({ length: 1 + rnd(6) }, () => `f${rnd(5)}`);
        values.push({ hash: String(i), value: 1 + rnd(100) });
      }
      const root = buildCallTree(viewOf(stacks), values);
      for (const max of [2, 3, 7, 15, 40]) {
        const got = chooseKept(root, (n) => n.a, max);
        const want = reference(root, max);
        const path = (n: CallNode): string => (n.parent ? `${path(n.parent)}/${n.key}` : '');
        const all = (n: CallNode): CallNode[] => [n, ...childrenOf(n).flatMap(all)];
        expect([...(got ?? all(root))].map(path).sort()).toEqual([...want].map(path).sort());
      }
    }
  });

  it('diffs with both sides normalised to the comparison total', () => {
    const base = [
      { hash: '1', value: 60 },
      { hash: '2', value: 40 },
    ];
    const comparison = [
      { hash: '1', value: 300 },
      { hash: '2', value: 600 },
      { hash: '3', value: 100 },
    ];
    const d = toDiff(buildCallTree(frames, comparison, base), frames, 100);
    expect(d.baseScale).toBe(10);
    const a = d.root.children[0]!.children.find((c) => c.name === 'run')!.children.find((c) => c.name === 'a')!;
    expect(a).toMatchObject({ base: 60, comparison: 300, baseShare: 0.6, comparisonShare: 0.3, delta: -300, value: 900 });
    const c = d.root.children[0]!.children[0]!.children.find((x) => x.name === 'c')!;
    // New frame: delta equals value, which differentialColorMapper paints as new.
    expect(c.delta).toBe(c.value);
    expect(d.root.delta).toBe(0);
  });

  it('ranks functions by self and total, counting recursion once', () => {
    const top = topFunctions(frames, stacks, 'total', 'desc');
    expect(top.total).toBe(1000);
    const a = top.entries.find((e) => e.name === 'a')!;
    expect(a).toMatchObject({ self: 601, total: 601 });
    expect(top.entries[0]!.name).toBe('main');
    const bySelf = topFunctions(frames, stacks, 'self', 'desc').entries.map((e) => e.name);
    expect(bySelf.slice(0, 3)).toEqual(['a', 'b', 'c']);
  });
});

describe('Pyroscope formats', () => {
  it('reads app names with labels', () => {
    expect(parseAppName('api.cpu{host=web-1,region="eu"}', DEFAULT_LIMITS)).toEqual({
      service: 'api',
      labels: { host: 'web-1', region: 'eu' },
    });
    expect(parseAppName('worker', DEFAULT_LIMITS)).toEqual({ service: 'worker', labels: {} });
    expect(() => parseAppName('x{novalue}', DEFAULT_LIMITS)).toThrow(HttpError);
    const many = Array.from({ length: 31 }, (_, i) => `l${i}=v`).join(',');
    expect(() => parseAppName(`x{${many}}`, DEFAULT_LIMITS)).toThrow(/too many labels/);
  });

  it('reads folded stacks, py-spy frames included', () => {
    const p = parseFolded('main (app.py:10);run (app.py:20);a (app.py:5) 6\nmain;run;b 3\n\nmain;run;b 1\n', DEFAULT_LIMITS);
    expect(p.samples).toHaveLength(2);
    const first = p.samples[0]!;
    expect(first.count).toBe(6);
    expect(first.frames[0]).toMatchObject({ name: 'a', filename: 'app.py', line: 5 });
    expect(first.frames.at(-1)!.name).toBe('main');
    expect(p.samples[1]!.count).toBe(4);
    expect(() => parseFolded('main;run\n', DEFAULT_LIMITS)).toThrow(/sample count/);
  });

  it('reads folded counts as digits only', () => {
    for (const bad of ['main;run 1e21', 'main;run NaN', 'main;run Infinity', 'main;run -3', 'main;run 1.5']) {
      expect(() => parseFolded(`${bad}\n`, DEFAULT_LIMITS), bad).toThrow(HttpError);
    }
    expect(() => parseFolded('main;run 4294967296\n', DEFAULT_LIMITS)).toThrow(/4294967295/);
  });
});

describe('filters, escaping and limits', () => {
  it('parses label filters and Pyroscope selectors', () => {
    const { filters, service } = parseFilters(['host=a', 'host=b', 'tid!=7'], 'api.cpu{region="eu", zone!="z1"}', DEFAULT_LIMITS);
    expect(service).toBe('api');
    expect(filters).toEqual([
      { name: 'host', op: '=', values: ['a', 'b'] },
      { name: 'tid', op: '!=', values: ['7'] },
      { name: 'region', op: '=', values: ['eu'] },
      { name: 'zone', op: '!=', values: ['z1'] },
    ]);
    expect(() => parseFilters(['nope'], undefined, DEFAULT_LIMITS)).toThrow(HttpError);
    expect(() => parseFilters(['1bad=x'], undefined, DEFAULT_LIMITS)).toThrow(/bad label name/);
  });

  it('escapes TabSeparated fields and map literals', () => {
    expect(tsvEscape('a\tb\nc\\d')).toBe('a\\tb\\nc\\\\d');
    expect(tsvMap([["it's", 'a\tb\\']])).toBe("{'it\\'s':'a\\tb\\\\'}");
  });

  it('stops inflating a gzip bomb at the limit', () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(200_000);
    const limits = { ...DEFAULT_LIMITS, maxProfileBytes: 4 * 1024 * 1024 };
    expect(() => inflate(bomb, 'identity', limits)).toThrow(expect.objectContaining({ status: 413 }));
    expect(() => inflate(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'identity', limits)).toThrow(expect.objectContaining({ status: 400 }));
    expect(Buffer.from(inflate(gzipSync(Buffer.from('hi')), 'identity', limits)).toString()).toBe('hi');
    // Content-Encoding: gzip over a gzipped file: both layers, each capped.
    expect(Buffer.from(inflate(gzipSync(gzipSync(Buffer.from('hi'))), 'gzip', limits)).toString()).toBe('hi');
  });
});
