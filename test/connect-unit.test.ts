/**
 * The pure parts of the Connect endpoints: Pyroscope's flame graph levels
 * (checked against a brute-force reading of the tree), selectors, ranges,
 * steps, PushRequests into pushes, tokens from Authorization headers, and
 * Kiln's errors as Connect codes.
 */

import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import type { FlameNode } from '../ingest/api.js';
import { PushRequestSchema } from '../ingest/connect/gen/push/v1/push_pb.js';
import { CODE_STATUS, ConnectError, fromHttpError } from '../ingest/connect/protocol.js';
import { MAX_PUSH_PROFILES, pushItems } from '../ingest/connect/push.js';
import { maxNodesOf, parseSelector, rangeOf, stepOf, toFlameGraph, typeOf } from '../ingest/connect/querier.js';
import { tokenOf } from '../ingest/edge/auth.js';
import { DEFAULT_LIMITS, HttpError } from '../ingest/limits.js';

const L = DEFAULT_LIMITS;

function node(name: string, self: number, children: FlameNode[] = []): FlameNode {
  return { name, self, value: self + children.reduce((a, c) => a + c.value, 0), children };
}

/** Every node as [depth, absolute x, total, self, name]: where each must land (self first, then the children, as Pyroscope lays them). */
function expected(root: FlameNode, scale: number): string[] {
  const out: string[] = [];
  const walk = (n: FlameNode, depth: number, x: number): void => {
    out.push(`${depth} ${x * scale} ${n.value * scale} ${n.self * scale} ${depth === 0 ? 'total' : n.name}`);
    let cx = x + n.self;
    for (const c of n.children) {
      walk(c, depth + 1, cx);
      cx += c.value;
    }
  };
  walk(root, 0, 0);
  return out.sort();
}

function levelsRead(root: FlameNode, scale: number): string[] {
  const fg = toFlameGraph(root, scale);
  const out: string[] = [];
  fg.levels.forEach((l, depth) => {
    let end = 0;
    const v = l.values.map(Number);
    for (let i = 0; i < v.length; i += 4) {
      const x = end + v[i]!;
      end = x + v[i + 1]!;
      out.push(`${depth} ${x} ${v[i + 1]} ${v[i + 2]} ${fg.names[v[i + 3]!]}`);
    }
  });
  return out.sort();
}

describe('toFlameGraph', () => {
  it('lays every node at its x, after its parent\'s self time, with names shared', () => {
    const root = node('root', 0, [
      node('main', 1, [node('a', 5, [node('leaf', 2)]), node('b', 0, [node('leaf', 3), node('a', 4)])]),
      node('gc', 7),
    ]);
    expect(levelsRead(root, 1)).toEqual(expected(root, 1));
    const fg = toFlameGraph(root, 1);
    expect(fg.names).toEqual(['total', 'main', 'a', 'leaf', 'b', 'gc']);
    expect([Number(fg.total), Number(fg.maxSelf)]).toEqual([22, 7]);
  });

  it('scales values into the type unit, and agrees with brute force on random trees', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const grow = (depth: number): FlameNode => {
      const kids = depth < 6 ? Array.from({ length: rand(4) }, () => grow(depth + 1)) : [];
      return node(`f${rand(12)}`, rand(5), kids);
    };
    for (let t = 0; t < 50; t++) {
      const root = grow(0);
      expect(levelsRead(root, 10_000_000)).toEqual(expected(root, 10_000_000));
    }
  });

  it('an empty tree is the root alone', () => {
    const fg = toFlameGraph(node('root', 0));
    expect(fg.levels.map((l) => l.values.map(Number))).toEqual([[0, 0, 0, 0]]);
  });
});

describe('selectors', () => {
  it('service_name picks the service, the legacy app{} form too, other matchers filter', () => {
    expect(parseSelector('{service_name="shop", host!="a", host!="b"}', L)).toEqual({
      service: 'shop',
      filters: [{ name: 'host', op: '!=', values: ['a', 'b'] }],
    });
    expect(parseSelector('shop{region="eu"}', L)).toEqual({ service: 'shop', filters: [{ name: 'region', op: '=', values: ['eu'] }] });
    expect(parseSelector('{}', L)).toEqual({ filters: [] });
    expect(parseSelector('', L)).toEqual({ filters: [] });
    expect(parseSelector('{service_name="s", __profile_type__="memory:inuse_space:bytes:space:bytes"}', L)).toEqual({
      service: 's',
      type: 'memory:inuse_space:bytes:space:bytes',
      filters: [],
    });
  });

  it('refuses two services, service_name!=, regex matchers, other reserved labels and malformed text', () => {
    for (const s of ['{service_name="a", service_name="b"}', 'a{service_name="b"}', '{service_name!="a"}', '{host=~"a.*"}', '{__name__="x"}', '{a="b"', '{="x"}']) {
      let err: unknown;
      try {
        parseSelector(s, L);
      } catch (e) {
        err = e;
      }
      expect(err, s).toBeDefined();
      const code = err instanceof ConnectError ? err.code : err instanceof HttpError ? fromHttpError(err).code : 'none';
      expect(code, s).toBe('invalid_argument');
    }
  });

  it('profile types: empty is CPU, a malformed ID is refused', () => {
    expect(typeOf('')).toBe('process_cpu:cpu:nanoseconds:cpu:nanoseconds');
    expect(typeOf('wall:wall:nanoseconds:cpu:nanoseconds')).toBe('wall:wall:nanoseconds:cpu:nanoseconds');
    expect(() => typeOf('process_cpu')).toThrow(ConnectError);
  });
});

describe('ranges, steps, maxNodes', () => {
  const now = 1_800_000_000_000;
  it('reads ms ranges, defaults 0/0 to the last hour, clamps metadata ranges and refuses overlong selects', () => {
    expect(rangeOf(1000n, 2000n, L, false, now)).toEqual({ from: 1000, to: 2000 });
    expect(rangeOf(0n, 0n, L, false, now)).toEqual({ from: now - 3_600_000, to: now });
    const long = BigInt(L.maxQueryRangeMs * 2);
    expect(rangeOf(0n + 1n, long, L, true, now)).toEqual({ from: Number(long) - L.maxQueryRangeMs, to: Number(long) });
    expect(() => rangeOf(1n, long, L, false, now)).toThrow(/limit/);
    expect(() => rangeOf(2000n, 1000n, L, false, now)).toThrow(/before/);
    expect(() => rangeOf(-5n, 1000n, L, false, now)).toThrow(ConnectError);
    expect(() => rangeOf(1n, 2n ** 62n, L, false, now)).toThrow(ConnectError);
  });

  it('steps are whole seconds, at most MAX_SERIES_POINTS buckets', () => {
    const hour = { from: 0, to: 3_600_000 };
    expect(stepOf(15, hour)).toBe(15_000);
    expect(stepOf(0.2, hour)).toBe(1_000);
    expect(stepOf(1, { from: 0, to: 30 * 86_400_000 })).toBe(260_000);
    expect(stepOf(0, hour)).toBeGreaterThan(0);
    expect(() => stepOf(-1, hour)).toThrow(ConnectError);
    expect(() => stepOf(Number.NaN, hour)).toThrow(ConnectError);
  });

  it('maxNodes: 0 is the default, more than the limit is the limit', () => {
    expect(maxNodesOf(undefined, L)).toBe(L.defaultMaxNodes);
    expect(maxNodesOf(0n, L)).toBe(L.defaultMaxNodes);
    expect(maxNodesOf(2n ** 40n, L)).toBe(L.maxMaxNodes);
    expect(maxNodesOf(1n, L)).toBe(2);
    expect(() => maxNodesOf(-1n, L)).toThrow(ConnectError);
  });
});

describe('pushItems', () => {
  const raw = new Uint8Array([1, 2, 3]);
  it('takes service_name as the service, __name__ as the profile name, drops other __ labels, keys by ID and labels', () => {
    const req = create(PushRequestSchema, {
      series: [
        {
          labels: [
            { name: 'service_name', value: 'shop' },
            { name: '__name__', value: 'process_cpu' },
            { name: '__spy_name__', value: 'pyspy' },
            { name: 'host', value: 'h1' },
          ],
          samples: [{ rawProfile: raw, ID: 'id-1' }, { rawProfile: raw }],
        },
      ],
    });
    const items = pushItems(req, L);
    expect(items).toHaveLength(2);
    expect(items[0]).toMatchObject({ service: 'shop', series: { host: 'h1' }, profileName: 'process_cpu' });
    expect(items[0]!.keyHeader).toContain('id-1');
    expect(items[1]!.keyHeader).toBeUndefined();
    // The same ID under other labels is another profile.
    const other = create(PushRequestSchema, {
      series: [{ samples: req.series[0]!.samples, labels: [{ name: 'service_name', value: 'shop' }, { name: 'host', value: 'h2' }] }],
    });
    expect(pushItems(other, L)[0]!.keyHeader).not.toBe(items[0]!.keyHeader);
  });

  it('refuses a series without service_name, a label given twice, a bad label, an empty profile, too many profiles', () => {
    const bad = [
      [{ name: 'host', value: 'x' }],
      [{ name: 'service_name', value: 's' }, { name: 'host', value: 'a' }, { name: 'host', value: 'b' }],
      [{ name: 'service_name', value: 's' }, { name: 'bad-name', value: 'a' }],
      [{ name: 'service_name', value: 's' }, { name: '__name__', value: 'a:b' }],
      [{ name: 'service_name', value: '' }],
    ];
    for (const labels of bad) {
      expect(() => pushItems(create(PushRequestSchema, { series: [{ labels, samples: [{ rawProfile: raw }] }] }), L), JSON.stringify(labels)).toThrow(HttpError);
    }
    const labels = [{ name: 'service_name', value: 's' }];
    expect(() => pushItems(create(PushRequestSchema, { series: [{ labels, samples: [{ rawProfile: new Uint8Array() }] }] }), L)).toThrow(/raw_profile/);
    const many = Array.from({ length: MAX_PUSH_PROFILES + 1 }, () => ({ rawProfile: raw }));
    expect(() => pushItems(create(PushRequestSchema, { series: [{ labels, samples: many }] }), L)).toThrow(/more than/);
    expect(pushItems(create(PushRequestSchema, {}), L)).toEqual([]);
  });
});

describe('tokens and codes', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  it('reads Bearer, and Basic with the token as password (or as user with no password)', () => {
    expect(tokenOf('Bearer abc')).toBe('abc');
    expect(tokenOf('bearer abc')).toBe('abc');
    expect(tokenOf(`Basic ${b64('tenant:secret')}`)).toBe('secret');
    expect(tokenOf(`Basic ${b64('secret:')}`)).toBe('secret');
    expect(tokenOf(`Basic ${b64('a:b:c')}`)).toBe('b:c');
    for (const h of [undefined, '', 'Bearer ', 'Bearer a b', `Basic ${b64('nocolon')}`, `Basic ${b64(':')}`, 'Digest x', `Bearer ${'a'.repeat(5000)}`]) {
      expect(tokenOf(h), String(h).slice(0, 20)).toBeUndefined();
    }
  });

  it("maps Kiln's statuses onto Connect codes, each sent with its protocol status", () => {
    const code = (s: number): string => fromHttpError(new HttpError(s, 'x')).code;
    expect([400, 401, 404, 413, 415, 429, 503, 500, 418].map(code)).toEqual([
      'invalid_argument',
      'unauthenticated',
      'not_found',
      'resource_exhausted',
      'unimplemented',
      'resource_exhausted',
      'unavailable',
      'internal',
      'invalid_argument',
    ]);
    expect(new ConnectError('unauthenticated', 'x').status).toBe(401);
    expect(new ConnectError('unimplemented', 'x', undefined, 415).status).toBe(415);
    expect(CODE_STATUS.resource_exhausted).toBe(429);
    expect(fromHttpError(new HttpError(503, 'busy', 'later', 3)).retryAfterS).toBe(3);
  });
});
