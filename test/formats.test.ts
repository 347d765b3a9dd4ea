import { gzipSync } from 'node:zlib';
import {
  Function as PprofFunction,
  Label,
  Line,
  Location,
  Mapping,
  Profile as PprofProfile,
  Sample,
  StringTable,
  ValueType,
} from 'pprof-format';
import { describe, expect, it } from 'vitest';
import { encodeCollapsed, parseCollapsed, profileFromCollapsed } from '../profile/collapsed.js';
import { decodePprof, encodePprof, pprofBytes, profileFromPprof, PprofDictionary } from '../profile/pprof.js';
import { SYNTHETIC, syntheticFrame, totalSamples, type Frame, type Profile } from '../profile/profile.js';
import { encodeSpeedscope, toSpeedscope } from '../profile/speedscope.js';

const PERIOD = 10_101_010; // 99 Hz, rounded as pprof needs an integer
const START = 1_790_000_000_123_456_789n;

function frame(name: string, filename: string, startLine: number, line: number): Frame {
  const systemName = name.split('.').pop()!;
  return { name, systemName, filename, startLine, line };
}

const moduleFrame = frame('<module>', '/srv/app/main.py', 1, 30);
const mainAt12 = frame('main', '/srv/app/main.py', 10, 12);
const mainAt14 = frame('main', '/srv/app/main.py', 10, 14);
const run = frame('Worker.run', '/srv/app/worker.py', 40, 42);
const numero = frame('Cálculo.número', '/srv/app/módulo_中文.py', 5, 7);
const weird = frame('odd;name\nwith newline', '/srv/app/we;ird.py', 1, 2);

const mainThread = { pid: '100', tid: '101', thread_name: 'MainThread', python_version: '3.11.2' };
const worker = { pid: '100', tid: '102', thread_name: 'Thread-1', python_version: '3.11.2' };
const japanese = { pid: '100', tid: '103', thread_name: 'ワーカー', python_version: '3.11.2' };

function sampleProfile(): Profile {
  return {
    periodNs: PERIOD,
    startNs: START,
    durationNs: 10_000_000_000,
    mainBinary: 'python3.13',
    samples: [
      { frames: [run, mainAt12, moduleFrame], labels: { ...mainThread }, count: 5 },
      { frames: [run, mainAt12, moduleFrame], labels: { ...worker }, count: 3 },
      { frames: [numero, mainAt14, moduleFrame], labels: { ...japanese }, count: 2 },
      { frames: [mainAt14, moduleFrame], labels: { ...mainThread }, count: 4 },
      { frames: [syntheticFrame(SYNTHETIC.truncated)], labels: {}, count: 1 },
      { frames: [weird, moduleFrame], labels: { ...worker }, count: 7 },
    ],
  };
}

describe('pprof', () => {
  it('writes gzip that decodes to the expected functions, locations and samples', async () => {
    const profile = sampleProfile();
    const buf = await encodePprof(profile);
    expect([buf[0], buf[1]]).toEqual([0x1f, 0x8b]);
    const p = decodePprof(buf);
    const s = (i: number | bigint): string => p.stringTable.strings[Number(i)]!;

    expect(s(0)).toBe('');
    expect(p.sampleType.map((t) => `${s(t.type)}/${s(t.unit)}`)).toEqual(['samples/count', 'cpu/nanoseconds']);
    expect(`${s(p.periodType!.type)}/${s(p.periodType!.unit)}`).toBe('cpu/nanoseconds');
    expect(Number(p.period)).toBe(PERIOD);
    expect(BigInt(p.timeNanos)).toBe(START);
    expect(Number(p.durationNanos)).toBe(10_000_000_000);

    // One function per distinct (name, system name, file, start line), ids 1.. in first-seen order;
    // a system name equal to the name is left empty (go tool pprof would take <module> for a mangled name).
    const functions = p.function.map((f) => [Number(f.id), s(f.name), s(f.systemName), s(f.filename), Number(f.startLine)]);
    expect(functions).toEqual([
      [1, 'Worker.run', 'run', '/srv/app/worker.py', 40],
      [2, 'main', '', '/srv/app/main.py', 10],
      [3, '<module>', '', '/srv/app/main.py', 1],
      [4, 'Cálculo.número', 'número', '/srv/app/módulo_中文.py', 5],
      [5, '[truncated]', '', '', 0],
      [6, 'odd;name\nwith newline', '', '/srv/app/we;ird.py', 1],
    ]);
    // One mapping, the interpreter, holding every location, with its functions and lines known.
    expect(p.mapping.map((m) => [Number(m.id), s(m.filename), m.hasFunctions, m.hasFilenames, m.hasLineNumbers])).toEqual([[1, 'python3.13', true, true, true]]);
    expect(new Set(p.location.map((l) => Number(l.mappingId)))).toEqual(new Set([1]));
    // One location per (function, line): main appears at two lines, so two locations.
    const locations = p.location.map((l) => [Number(l.id), l.line.map((x) => [Number(x.functionId), Number(x.line)])]);
    expect(locations).toEqual([
      [1, [[1, 42]]],
      [2, [[2, 12]]],
      [3, [[3, 30]]],
      [4, [[4, 7]]],
      [5, [[2, 14]]],
      [6, [[5, 0]]],
      [7, [[6, 2]]],
    ]);

    expect(p.sample.map((x) => x.locationId.map(Number))).toEqual([[1, 2, 3], [1, 2, 3], [4, 5, 3], [5, 3], [6], [7, 3]]);
    expect(p.sample.map((x) => x.value.map(Number))).toEqual(
      profile.samples.map((x) => [x.count, x.count * PERIOD]),
    );
    const labels = p.sample.map((x) => Object.fromEntries(x.label.map((l) => [s(l.key), s(l.str)])));
    expect(labels).toEqual(profile.samples.map((x) => x.labels));
  });

  it('round-trips through profileFromPprof exactly', async () => {
    const profile = sampleProfile();
    expect(profileFromPprof(decodePprof(await encodePprof(profile)))).toEqual(profile);
  });

  it('is deterministic and also reads uncompressed protobuf', async () => {
    const profile = sampleProfile();
    const a = await encodePprof(profile);
    const b = await encodePprof(profile);
    expect(a.equals(b)).toBe(true);
    const raw = pprofBytes(profile);
    expect(raw[0]).not.toBe(0x1f);
    expect(profileFromPprof(decodePprof(raw))).toEqual(profile);
  });

  it('keeps ids across profiles with a dictionary, each profile carrying only what its samples use', async () => {
    const dictionary = new PprofDictionary();
    const whole = sampleProfile();
    const first = { ...whole, samples: whole.samples.slice(0, 2) };
    const second = { ...whole, samples: whole.samples.slice(2) };
    const a = decodePprof(await encodePprof(first, { dictionary }));
    const b = decodePprof(await encodePprof(second, { dictionary }));
    // each decodes to what it holds
    expect(profileFromPprof(a)).toEqual(first);
    expect(profileFromPprof(b)).toEqual(second);
    // the ids of the first profile's locations hold in the second; only used ones are there
    expect(a.location.map((l) => Number(l.id))).toEqual([1, 2, 3]);
    expect(b.location.map((l) => Number(l.id))).toEqual([3, 4, 5, 6, 7]);
    expect(b.function.map((f) => Number(f.id))).toEqual([2, 3, 4, 5, 6]);
    // the same profile again, through the dictionary that has seen it: the same bytes
    expect((await encodePprof(second, { dictionary })).equals(await encodePprof(second, { dictionary }))).toBe(true);
  });

  it('rounds a fractional period and keeps values as count x period', async () => {
    const profile = { ...sampleProfile(), periodNs: 1e9 / 99 };
    const p = decodePprof(await encodePprof(profile));
    expect(Number(p.period)).toBe(10_101_010);
    expect(Number(p.sample[0]!.value[1])).toBe(5 * 10_101_010);
  });

  it('refuses a gzip bomb, corrupt gzip and structurally invalid profiles', async () => {
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024));
    expect(() => decodePprof(bomb, 1024 * 1024)).toThrow(/pprof: gzipped profile inflates to more than 1048576 bytes/);

    const good = await encodePprof(sampleProfile());
    expect(() => decodePprof(good.subarray(0, good.length - 20))).toThrow(/pprof: corrupt gzip data/);
    expect(() => decodePprof(pprofBytes(sampleProfile()), 100)).toThrow(/more than the 100-byte limit/);

    // A sample whose label points past the string table.
    const strings = new StringTable();
    const bad = new PprofProfile({
      sampleType: [new ValueType({ type: strings.dedup('samples'), unit: strings.dedup('count') })],
      sample: [new Sample({ value: [1], label: [new Label({ key: 99, str: 1 })] })],
      stringTable: strings,
    });
    expect(() => decodePprof(bad.encode())).toThrow(/pprof: sample 0 label key refers to string 99/);

    // Two values for one sample type.
    const strings2 = new StringTable();
    const mismatched = new PprofProfile({
      sampleType: [new ValueType({ type: strings2.dedup('samples'), unit: strings2.dedup('count') })],
      sample: [new Sample({ value: [1, 2] })],
      stringTable: strings2,
    });
    expect(() => decodePprof(mismatched.encode())).toThrow(/pprof: sample 0 has 2 values for 1 sample types/);

    // Bytes that are not protobuf at all: wire type 7 does not exist.
    expect(() => decodePprof(Uint8Array.from([0x0f, 0x01]))).toThrow(/pprof: not a profile.proto message/);
  });

  it('reads other producers: inlined lines, missing functions, bare addresses, numeric labels, time-only values', () => {
    const st = new StringTable();
    const fn = (id: number, name: string, file: string): PprofFunction =>
      new PprofFunction({ id, name: st.dedup(name), systemName: st.dedup(name), filename: st.dedup(file), startLine: 0 });
    const p = new PprofProfile({
      sampleType: [new ValueType({ type: st.dedup('cpu'), unit: st.dedup('nanoseconds') })],
      periodType: new ValueType({ type: st.dedup('cpu'), unit: st.dedup('nanoseconds') }),
      period: 10_000_000,
      mapping: [new Mapping({ id: 1, filename: st.dedup('/usr/lib/libc.so.6') })],
      function: [fn(1, 'inner', 'a.go'), fn(2, 'outer', 'a.go'), fn(3, 'caller', 'b.go')],
      location: [
        // inner was inlined into outer: pprof lists the innermost line first.
        new Location({ id: 1, line: [new Line({ functionId: 1, line: 5 }), new Line({ functionId: 2, line: 9 })] }),
        new Location({ id: 2, line: [new Line({ functionId: 3, line: 20 })] }),
        new Location({ id: 3, mappingId: 1, address: 0x7f00_1234 }),
        new Location({ id: 4, line: [new Line({ functionId: 77, line: 3 })] }),
      ],
      sample: [
        new Sample({
          locationId: [1, 2],
          value: [30_000_000],
          label: [new Label({ key: st.dedup('pid'), num: 42 }), new Label({ key: st.dedup('mode'), str: st.dedup('fast') })],
        }),
        new Sample({ locationId: [3, 4, 99], value: [4_000_000] }),
        new Sample({ locationId: [2], value: [0] }),
      ],
      stringTable: st,
      timeNanos: 5,
      durationNanos: 7,
    });
    const got = profileFromPprof(decodePprof(p.encode()));
    expect(got.periodNs).toBe(10_000_000);
    expect(got.startNs).toBe(5n);
    expect(got.durationNs).toBe(7);
    // The zero-value sample carries nothing and is dropped.
    expect(got.samples).toHaveLength(2);
    const [first, second] = got.samples;
    expect(first!.frames.map((f) => `${f.name}@${f.filename}:${f.line}`)).toEqual(['inner@a.go:5', 'outer@a.go:9', 'caller@b.go:20']);
    expect(first!.count).toBe(3);
    expect(first!.labels).toEqual({ pid: '42', mode: 'fast' });
    expect(second!.frames.map((f) => [f.name, f.filename, f.line])).toEqual([
      ['0x7f001234', '/usr/lib/libc.so.6', 0],
      ['[unknown]', '', 3],
      ['[unknown]', '', 0],
    ]);
    // Less than one period of CPU still counts as one sample.
    expect(second!.count).toBe(1);
    expect(second!.labels).toEqual({});
  });
});

describe('collapsed stacks', () => {
  it('writes one sorted line per stack, root first, counts summed over labels', () => {
    const text = encodeCollapsed(sampleProfile());
    expect(text.split('\n')).toEqual([
      '<module> (/srv/app/main.py:30);main (/srv/app/main.py:12);Worker.run (/srv/app/worker.py:42) 8',
      '<module> (/srv/app/main.py:30);main (/srv/app/main.py:14) 4',
      '<module> (/srv/app/main.py:30);main (/srv/app/main.py:14);Cálculo.número (/srv/app/módulo_中文.py:7) 2',
      '<module> (/srv/app/main.py:30);odd,name with newline (/srv/app/we,ird.py:2) 7',
      '[truncated] 1',
      '',
    ]);
  });

  it('round-trips through parseCollapsed and profileFromCollapsed', () => {
    const profile = sampleProfile();
    const stacks = parseCollapsed(encodeCollapsed(profile));
    expect(stacks.reduce((n, s) => n + s.count, 0)).toBe(totalSamples(profile));
    expect(stacks.map((s) => s.frames.length)).toEqual([3, 2, 3, 2, 1]);

    const back = profileFromCollapsed(encodeCollapsed(profile), { periodNs: PERIOD, startNs: START, durationNs: 1, labels: { pid: '100' } });
    const numeroBack = back.samples.find((s) => s.count === 2)!;
    expect(numeroBack.frames.map((f) => [f.name, f.filename, f.line])).toEqual([
      ['Cálculo.número', '/srv/app/módulo_中文.py', 7],
      ['main', '/srv/app/main.py', 14],
      ['<module>', '/srv/app/main.py', 30],
    ]);
    expect(numeroBack.labels).toEqual({ pid: '100' });
    expect(back.samples.find((s) => s.count === 1)!.frames).toEqual([syntheticFrame(SYNTHETIC.truncated)]);
  });

  it('accepts blank lines, CRLF, spaces in frames and tab before the count', () => {
    const text = '\nfoo bar (x.py:1);baz 7\r\n\n   \nsolo\t3\n';
    expect(parseCollapsed(text)).toEqual([
      { frames: ['foo bar (x.py:1)', 'baz'], count: 7 },
      { frames: ['solo'], count: 3 },
    ]);
  });

  it('rejects bad lines with their line number', () => {
    expect(() => parseCollapsed('a;b 1\n\na;b many\n')).toThrow(/line 3: count "many" is not a non-negative integer/);
    expect(() => parseCollapsed('a;b -2')).toThrow(/line 1: count "-2"/);
    expect(() => parseCollapsed('a;b 1\nnocount\n')).toThrow(/line 2: expected "frame;frame;... count"/);
    expect(() => parseCollapsed('ok 1\na;;b 4')).toThrow(/line 2: empty frame/);
  });
});

describe('speedscope', () => {
  it('writes one sampled profile per thread over shared frames', () => {
    const profile = sampleProfile();
    const file = toSpeedscope(profile, 'test');
    expect(file.$schema).toBe('https://www.speedscope.app/file-format-schema.json');
    expect(JSON.parse(encodeSpeedscope(profile, 'test'))).toEqual(file);

    const { frames } = file.shared;
    // Frames are unique by (name, file, line).
    const keys = frames.map((f) => `${f.name}|${f.file ?? ''}|${f.line ?? 0}`);
    expect(new Set(keys).size).toBe(frames.length);
    expect(frames).toContainEqual({ name: 'Cálculo.número', file: '/srv/app/módulo_中文.py', line: 7 });
    expect(frames).toContainEqual({ name: '[truncated]' });

    expect(file.profiles.map((p) => p.name)).toEqual([
      'MainThread (tid 101, pid 100)',
      'Thread-1 (tid 102, pid 100)',
      'ワーカー (tid 103, pid 100)',
      'all threads',
    ]);
    let total = 0;
    for (const p of file.profiles) {
      expect(p.type).toBe('sampled');
      expect(p.unit).toBe('nanoseconds');
      expect(p.startValue).toBe(0);
      expect(p.samples).toHaveLength(p.weights.length);
      expect(p.weights.reduce((a, b) => a + b, 0)).toBe(p.endValue);
      for (const stack of p.samples) for (const i of stack) expect(frames[i]).toBeDefined();
      total += p.endValue;
    }
    expect(total).toBe(totalSamples(profile) * PERIOD);

    // Root first: MainThread's first stack starts at <module> and ends at Worker.run.
    const main = file.profiles[0]!;
    expect(main.samples[0]!.map((i) => frames[i]!.name)).toEqual(['<module>', 'main', 'Worker.run']);
    expect(main.weights).toEqual([5 * PERIOD, 4 * PERIOD]);
    // Thread-1 has 3 + 7 samples, the most, so the viewer opens on it.
    expect(file.activeProfileIndex).toBe(1);
  });

  it('falls back to unitless counts when the profile has no period', () => {
    const file = toSpeedscope({ ...sampleProfile(), periodNs: 0 });
    expect(file.profiles.every((p) => p.unit === 'none')).toBe(true);
    expect(file.profiles.reduce((n, p) => n + p.endValue, 0)).toBe(totalSamples(sampleProfile()));
  });
});
