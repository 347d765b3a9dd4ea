/**
 * pprof shaped like other producers' (tests): what Kiln must read the way
 * those producers mean it.
 */

import { Function as PprofFunction, Line, Location, Profile as PprofProfile, Sample, StringTable, ValueType } from 'pprof-format';

/** A heap pprof as Go writes one: four sample types, period space/bytes. */
export function goHeapPprof(samples: { stack: string[]; values: [number, number, number, number] }[], timeMs = Date.now() - 60_000): Uint8Array {
  const st = new StringTable();
  const fns = new Map<string, PprofFunction>();
  const locs = new Map<string, Location>();
  const loc = (name: string): Location => {
    let l = locs.get(name);
    if (!l) {
      let f = fns.get(name);
      if (!f) {
        f = new PprofFunction({ id: fns.size + 1, name: st.dedup(name), systemName: st.dedup(name), filename: st.dedup('main.go'), startLine: 1 });
        fns.set(name, f);
      }
      l = new Location({ id: locs.size + 1, line: [new Line({ functionId: f.id, line: 10 })] });
      locs.set(name, l);
    }
    return l;
  };
  const vt = (t: string, u: string): ValueType => new ValueType({ type: st.dedup(t), unit: st.dedup(u) });
  const p = new PprofProfile({
    sampleType: [vt('alloc_objects', 'count'), vt('alloc_space', 'bytes'), vt('inuse_objects', 'count'), vt('inuse_space', 'bytes')],
    periodType: vt('space', 'bytes'),
    period: 524288,
    sample: samples.map((s) => new Sample({ locationId: s.stack.map((n) => loc(n).id), value: s.values })),
    timeNanos: BigInt(Math.round(timeMs)) * 1_000_000n,
    stringTable: st,
  });
  p.function = [...fns.values()];
  p.location = [...locs.values()];
  return p.encode();
}
