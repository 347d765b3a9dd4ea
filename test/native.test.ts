/**
 * Kiln's native upload form (profile/native.ts) on the producer's side:
 * dictionary entries go once, a body the receiver cannot place is made whole
 * again by expand(), and decodeNative() gives back the profile that was
 * encoded (what the agent sends a receiver that takes pprof only). The
 * receiver's side (the rows ingest builds from it) is test/ingest-rows.
 */

import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../ingest/limits.js';
import { readIngestRows } from '../ingest/rowbinary.js';
import { RowBuilder } from '../ingest/rows.js';
import { agentPushes } from '../kit/fleet.js';
import { NativeEncoder, decodeNative } from '../profile/native.js';
import { decodePprof, profileFromPprof } from '../profile/pprof.js';
import { SYNTHETIC, type Frame, type Profile } from '../profile/profile.js';

const now = Date.now();

async function someProfiles(n: number): Promise<Profile[]> {
  return (await agentPushes(n)).map((p) => profileFromPprof(decodePprof(p.body)));
}

/** A profile as comparable text: one line per sample (frames and labels), counts summed, sorted. */
function canonical(p: Profile): string[] {
  const m = new Map<string, number>();
  for (const s of p.samples) {
    const frames = s.frames.map((f: Frame) => `${f.name}|${f.systemName}|${f.filename}|${f.startLine}|${f.line}`).join(';');
    const labels = Object.entries(s.labels)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const key = `${frames} ${labels}`;
    m.set(key, (m.get(key) ?? 0) + s.count);
  }
  return [...m].map(([k, v]) => `${k} ${v}`).sort();
}

/** The sample rows ingest builds from a body, on a receiver that knows nothing yet. */
function rowsOf(body: string): string[] {
  const r = new RowBuilder(DEFAULT_LIMITS, 30).buildNative(body, { service: 's', series: { host: 'h' }, source: 'x', format: 'native', key: '1', now, timeMs: now });
  expect(Array.from(r.unknownStacks)).toEqual([]);
  return readIngestRows(r.data, r.dataRows, 's')
    .filter((x) => x.kind === 0)
    .map((x) => `${x.labelsHash} ${x.stackHash} ${x.value}`)
    .sort();
}

describe('native form, producer side', () => {
  it('sends definitions once; expand() makes an ids-only body whole, with the same rows as the first', async () => {
    const [p] = await someProfiles(1);
    const enc = new NativeEncoder();
    const first = enc.encode(p!, now);
    const idsOnly = enc.encode(p!, now);
    expect(first).toMatch(/^S\t/m);
    expect(idsOnly).not.toMatch(/^[FLS]\t/m);
    const whole = enc.expand(idsOnly)!;
    expect(whole).toMatch(/^S\t/m);
    expect(rowsOf(whole)).toEqual(rowsOf(first));
    // A body that defines what it counts is left as it is.
    expect(enc.expand(first)).toBe(first);
  });

  it('cannot expand what it never encoded', async () => {
    const [a, b] = await someProfiles(2);
    const one = new NativeEncoder();
    const other = new NativeEncoder();
    other.encode(b!, now);
    const idsOnly = other.encode(b!, now);
    one.encode(a!, now);
    expect(one.expand(idsOnly)).toBeUndefined();
  });

  it('decodes a whole body back into the profile it encoded', async () => {
    for (const p of await someProfiles(6)) {
      const enc = new NativeEncoder();
      enc.encode(p, now);
      const back = decodeNative(enc.expand(enc.encode(p, now))!);
      expect(canonical(back)).toEqual(canonical(p));
      expect(back.periodNs).toBe(Math.round(p.periodNs));
      expect(back.startNs).toBe(p.startNs);
    }
  });

  it('encodes a stack the same from its cache as the first time, and marks one cut at the depth limit', async () => {
    const [p] = await someProfiles(1);
    const deep: Frame[] = Array.from({ length: 1500 }, (_, i) => ({ name: `f${i}`, systemName: `f${i}`, filename: '/deep.py', startLine: i, line: i + 1 }));
    const q: Profile = { ...p!, samples: [...p!.samples, { frames: deep, labels: { tid: '1' }, count: 3 }] };
    const enc = new NativeEncoder();
    enc.encode(q, now);
    // Same Frame[] objects: ids come from the cache; a fresh encoder computes them anew.
    expect(rowsOf(enc.expand(enc.encode(q, now))!)).toEqual(rowsOf(new NativeEncoder().encode(q, now)));
    const back = decodeNative(new NativeEncoder().encode(q, now));
    const cut = back.samples.find((s) => s.count === 3 && s.labels.tid === '1')!;
    expect(cut.frames).toHaveLength(DEFAULT_LIMITS.maxStackDepth);
    expect(cut.frames[0]!.name).toBe(SYNTHETIC.truncated);
  });
});
