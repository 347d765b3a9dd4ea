/**
 * pprof shaped like other producers' (tests): what Kiln must read the way
 * those producers mean it.
 */

import { Function as PprofFunction, Line, Location, Profile as PprofProfile, Sample, StringTable, ValueType } from 'pprof-format';

export interface TypedPprof {
  /** type/unit each */
  sampleTypes: string[];
  /** type/unit */
  periodType: string;
  period: number;
  /** root-first function names, and one value per sample type */
  samples: { stack: string[]; values: number[] }[];
  timeMs?: number;
}

/** An uncompressed pprof with the given sample types and samples (functions in main.go). */
export function typedPprof(spec: TypedPprof): Uint8Array {
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
  const vt = (s: string): ValueType => {
    const [type = '', unit = ''] = s.split('/');
    return new ValueType({ type: st.dedup(type), unit: st.dedup(unit) });
  };
  const p = new PprofProfile({
    sampleType: spec.sampleTypes.map(vt),
    periodType: vt(spec.periodType),
    period: spec.period,
    // pprof lists locations leaf first.
    sample: spec.samples.map((s) => new Sample({ locationId: [...s.stack].reverse().map((n) => loc(n).id), value: s.values })),
    timeNanos: BigInt(Math.round(spec.timeMs ?? Date.now() - 60_000)) * 1_000_000n,
    stringTable: st,
  });
  p.function = [...fns.values()];
  p.location = [...locs.values()];
  return p.encode();
}

/** A heap pprof as Go writes one: alloc_objects, alloc_space, inuse_objects, inuse_space; period space/bytes. */
export function goHeapPprof(samples: { stack: string[]; values: [number, number, number, number] }[], timeMs?: number): Uint8Array {
  return typedPprof({
    sampleTypes: ['alloc_objects/count', 'alloc_space/bytes', 'inuse_objects/count', 'inuse_space/bytes'],
    periodType: 'space/bytes',
    period: 524288,
    samples,
    ...(timeMs !== undefined ? { timeMs } : {}),
  });
}

/** pyroscope-go's sample_type_config parts (session.go), as it sends them. */
export const GO_SAMPLE_TYPE_CONFIG = {
  heap: {
    alloc_objects: { units: 'objects' },
    alloc_space: { units: 'bytes' },
    inuse_space: { units: 'bytes', aggregation: 'average' },
    inuse_objects: { units: 'objects', aggregation: 'average' },
  },
  mutex: {
    contentions: { 'display-name': 'mutex_count', units: 'lock_samples' },
    delay: { 'display-name': 'mutex_duration', units: 'lock_nanoseconds' },
  },
} as const;
