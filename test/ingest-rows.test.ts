/**
 * The ingest hot path against the definitions: rows built straight from pprof
 * bytes (pprof-read.ts + rows.ts) and from Kiln's native form
 * (profile/native.ts) are exactly the rows a plain reading of the profile
 * with profile/ids.ts gives: same stack, location, function and label-set
 * ids, same counts, same dictionary rows. Fixtures, recordings and the
 * bench's agent profiles, plus non-ASCII and over-long names (the slow path).
 */

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, HttpError } from '../ingest/limits.js';
import { readPprof } from '../ingest/pprof-read.js';
import { RowBuilder, type Rows } from '../ingest/rows.js';
import { tsvEscape, tsvMap } from '../ingest/tsv.js';
import { agentPushes } from '../kit/fleet.js';
import { functionIdOf, labelsIdOf, locationIdOf, mergedLabels, stackIdOf } from '../profile/ids.js';
import { NativeEncoder } from '../profile/native.js';
import { decodePprof, encodePprof, profileFromPprof } from '../profile/pprof.js';
import { SYNTHETIC, syntheticFrame, type Profile } from '../profile/profile.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'ingest');
const now = Date.now();
const day = new Date(Math.floor(now / 86_400_000) * 86_400_000).toISOString().slice(0, 10);

interface Case {
  name: string;
  service: string;
  series: Record<string, string>;
  gz: Uint8Array;
}

/** The rows by definition: every sample's frames through ids.ts. */
function reference(p: Profile, service: string, series: Record<string, string>): { samples: string[]; dict: Record<string, string[]> } {
  const max = DEFAULT_LIMITS.maxSymbolLength;
  const rows = new Map<string, number>();
  const dict = { functions: new Set<string>(), locations: new Set<string>(), stacks: new Set<string>(), labelsets: new Set<string>() };
  for (const s of p.samples) {
    let frames = s.frames;
    if (frames.length > DEFAULT_LIMITS.maxStackDepth) {
      frames = [syntheticFrame(SYNTHETIC.truncated), ...frames.slice(frames.length - (DEFAULT_LIMITS.maxStackDepth - 1))];
    }
    if (frames.length === 0) frames = [syntheticFrame(SYNTHETIC.noPython)];
    const locs = frames.map((f) => {
      const fn = { name: f.name.slice(0, max), systemName: f.systemName.slice(0, max), filename: f.filename.slice(0, max), startLine: f.startLine };
      const fid = functionIdOf(fn);
      const lid = locationIdOf(fid, f.line);
      dict.functions.add(`${fid.dec}\t${tsvEscape(fn.name)}\t${tsvEscape(fn.systemName)}\t${tsvEscape(fn.filename)}\t${fn.startLine >>> 0}\t${day}`);
      dict.locations.add(`${lid.dec}\t${fid.dec}\t${f.line >>> 0}\t${day}`);
      return lid;
    });
    const stack = stackIdOf(locs);
    dict.stacks.add(`${stack.dec}\t[${locs.map((l) => l.dec).join(',')}]\t${day}`);
    const labels = mergedLabels(s.labels, series);
    const lid = labelsIdOf(service, labels);
    dict.labelsets.add(`${tsvEscape(service)}\t${lid.dec}\t${tsvMap(labels)}\t${day}`);
    const key = `${lid.dec}\t${stack.dec}`;
    rows.set(key, (rows.get(key) ?? 0) + s.count);
  }
  return {
    samples: [...rows].map(([k, v]) => `${k}\t${v}`).sort(),
    dict: Object.fromEntries(Object.entries(dict).map(([t, set]) => [t, [...set].sort()])),
  };
}

function built(r: Rows): { samples: string[]; dict: Record<string, string[]> } {
  return {
    samples: r.data
      .split('\n')
      .filter((l) => l.startsWith('0\t'))
      .map((l) => l.split('\t').slice(3).join('\t'))
      .sort(),
    dict: Object.fromEntries(Object.entries(r.dict).map(([t, text]) => [t, [...new Set(text.split('\n').filter(Boolean))].sort()])),
  };
}

describe('ingest rows', () => {
  const cases: Case[] = [];

  beforeAll(async () => {
    for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.pb.gz'))) {
      cases.push({ name: f, service: 'svc', series: { host: 'h', region: 'eu' }, gz: readFileSync(join(FIXTURES, f)) });
    }
    for (const p of await agentPushes(10)) cases.push({ name: p.labels.host!, service: p.service, series: p.labels, gz: p.body });
    // The slow path: non-ASCII names, names past the symbol limit, a name that is empty (the system name stands in).
    const odd: Profile = {
      samples: [
        {
          frames: [
            { name: 'größe_λ', systemName: 'größe_λ', filename: '/srv/ünï.py', startLine: 3, line: 4 },
            { name: 'x'.repeat(70_000), systemName: 'y', filename: 'z'.repeat(66_000), startLine: 1, line: 2 },
            { name: '', systemName: 'only_system', filename: '/a.py', startLine: 7, line: 8 },
          ],
          labels: { thread_name: 'wörker', tid: '7' },
          count: 5,
        },
      ],
      periodNs: 1e7,
      startNs: 0n,
      durationNs: 1e10,
    };
    cases.push({ name: 'odd names', service: 'svc', series: { host: 'h' }, gz: await encodePprof(odd) });
  });

  it('from pprof bytes, equal to the definitions', () => {
    expect(cases.length).toBeGreaterThan(12);
    for (const c of cases) {
      const b = new RowBuilder(DEFAULT_LIMITS, 30);
      const rows = b.build(readPprof(gunzipSync(c.gz), DEFAULT_LIMITS), { service: c.service, series: c.series, timeMs: now, source: 'pprof', format: 'pprof', key: '1', now });
      const want = reference(profileFromPprof(decodePprof(c.gz)), c.service, c.series);
      // The empty name reads as its system name in profileFromPprof too, so the reference agrees.
      expect(built(rows), c.name).toEqual(want);
    }
  });

  it('from the native form, the same rows as from pprof', () => {
    for (const c of cases) {
      const profile = profileFromPprof(decodePprof(c.gz));
      const viaPprof = new RowBuilder(DEFAULT_LIMITS, 30).build(readPprof(gunzipSync(c.gz), DEFAULT_LIMITS), {
        service: c.service,
        series: c.series,
        timeMs: now,
        source: 'x',
        format: 'pprof',
        key: '1',
        now,
      });
      const text = new NativeEncoder().encode(profile, now);
      const viaNative = new RowBuilder(DEFAULT_LIMITS, 30).buildNative(text, {
        service: c.service,
        series: c.series,
        timeMs: now,
        source: 'x',
        format: 'native',
        key: '1',
        now,
      });
      expect(built(viaNative), c.name).toEqual(built(viaPprof));
      expect(viaNative.response.samples).toBe(viaPprof.response.samples);
    }
  });

  it('sends each dictionary entry once a day, and refuses ids that are not those of their fields', () => {
    const profile = profileFromPprof(decodePprof(cases[0]!.gz));
    const enc = new NativeEncoder();
    const first = enc.encode(profile, now);
    const second = enc.encode(profile, now);
    expect(first).toMatch(/^S\t/m);
    expect(second).not.toMatch(/^[SLF]\t/m);
    expect(enc.encode(profile, now + 86_400_000)).toMatch(/^S\t/m);
    const build = (text: string): Rows =>
      new RowBuilder(DEFAULT_LIMITS, 30).buildNative(text, { service: 's', series: {}, timeMs: now, source: 'x', format: 'native', key: '1', now });
    // Flip one digit of a stack id, a location id, a function's name: each is refused.
    const forged = [
      first.replace(/^S\t(\d)/m, (_, d: string) => `S\t${(Number(d) + 1) % 10}`),
      first.replace(/^(L\t\d+\t\d+\t)(\d+)/m, (_, a: string, line: string) => `${a}${Number(line) + 1}`),
      first.replace(/^(F\t\d+\t)([^\t]+)/m, (_, a: string, name: string) => `${a}${name}x`),
    ];
    for (const f of forged) {
      expect(f).not.toBe(first);
      expect(() => build(f)).toThrow(HttpError);
    }
    expect(() => build('not a profile\n')).toThrow(/malformed native profile/);
    expect(() => build(`${first}C\t1\t99\t1\n`)).toThrow(/label set 99/);
    expect(() => build(`${first}C\t1\t0\t4294967296\n`)).toThrow(HttpError);
    expect(build(first).response.samples).toBe(profile.samples.reduce((a, s) => a + s.count, 0));
  });
});
