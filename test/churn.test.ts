/**
 * Short-lived code is named, and never misnamed, on every version: a program
 * writes, imports, runs and drops one small module after another
 * (test/workloads/churn.py), every generation's functions on the same lines
 * with the same argument counts, with garbage allocated in between so that
 * each generation's code can land where the last one's was. Each generation
 * also burns CPU while importing, in exec'd code and in generated functions
 * (a dataclass's __eq__, a namedtuple's __new__).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SYNTHETIC, type Frame, type StackSample } from '../profile/profile.js';
import { recordWork, samplesOf, startWorkload, total } from '../kit/harness.js';
import { misnamedFrames } from '../kit/names.js';
import { pythonFor, testedVersions } from '../kit/pythons.js';

const GENERATIONS = 12;
const HZ = 99;

const versions = testedVersions('churn');

interface Generation {
  gen: number;
  import: number;
  exec: number;
  generated: number;
  work: number;
}

type Part = 'import' | 'exec' | 'generated' | 'work';

/** Which generation and part a sample is in, from its frames; undefined outside any generation. */
function placeOf(s: StackSample, dir: string): { gen: number; part: Part } | { problem: string } | undefined {
  const genOf = (f: Frame) => {
    if (f.filename.startsWith(`${dir}/gen_`)) return Number(/gen_(\d+)\.py$/.exec(f.filename)?.[1]);
    const exec = /^<gen_(\d+) exec>$/.exec(f.filename);
    return exec ? Number(exec[1]) : undefined;
  };
  const gens = new Set(s.frames.map(genOf).filter((g) => g !== undefined));
  if (gens.size === 0) return undefined;
  const fmt = s.frames.map((f) => `${f.name}@${f.filename}:${f.line}`).reverse().join(' > ');
  // every frame of a generation in one sample belongs to the same generation
  if (gens.size > 1) return { problem: `frames of generations ${[...gens].join(', ')} in one stack: ${fmt}` };
  const gen = [...gens][0]!;
  const names = s.frames.map((f) => f.systemName);
  // a generation's function is named after its own generation, in its own file
  for (const f of s.frames) {
    const m = /^gen_(\d+)_/.exec(f.systemName);
    if (m && (Number(m[1]) !== gen || genOf(f) !== gen)) return { problem: `${f.systemName} in ${f.filename}: ${fmt}` };
  }
  if (names.includes(`gen_${gen}_work`)) return { gen, part: 'work' };
  if (names.includes(`gen_${gen}_generated`)) return { gen, part: 'generated' };
  if (s.frames.some((f) => f.filename === `<gen_${gen} exec>`)) return { gen, part: 'exec' };
  if (s.frames.some((f) => f.systemName === '<module>' && f.filename === `${dir}/gen_${gen}.py`)) return { gen, part: 'import' };
  return { problem: `a frame of generation ${gen} outside its four parts: ${fmt}` };
}

describe('short-lived code is named, never misnamed', () => {
  const table: string[] = [];
  afterAll(() => console.log(`\nchurn, per version:\n${table.join('\n')}\n`));

  for (const version of versions) {
    it(`${version}: ${GENERATIONS} generations of modules written, imported, run and dropped`, async () => {
      const py = pythonFor(version);
      if (!py) throw new Error(`Python ${version} is required and missing: run scripts/setup.sh --test`);
      // inside the interpreter's root, where it can write, and named as it sees it
      const dir = `/tmp/kiln-churn-${process.pid}-${version}`;
      const hostDir = join(py.root, dir);
      rmSync(hostDir, { recursive: true, force: true });
      const w = await startWorkload(py, 'churn.py', [String(GENERATIONS), dir, '--wait']);
      const generations: Generation[] = [];
      w.proc.stdout!.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) if (line.startsWith('{"gen"')) generations.push(JSON.parse(line) as Generation);
      });
      try {
        const { profile, stderr } = await recordWork(w);
        expect(generations.map((g) => g.gen), stderr).toEqual(Array.from({ length: GENERATIONS }, (_, i) => i + 1));
        const samples = samplesOf(profile, w.pid);
        const all = total(samples);

        // no frame is named otherwise than its source says, anywhere
        expect(misnamedFrames(samples, py.root), 'frames named otherwise than their source says').toEqual([]);
        const unknown = total(samples.filter((s) => s.frames.some((f) => f.name === SYNTHETIC.unknownCode)));
        const problems: string[] = [];
        const counts = new Map<string, number>();
        for (const s of samples) {
          const place = placeOf(s, dir);
          if (!place) continue;
          if ('problem' in place) problems.push(place.problem);
          else counts.set(`${place.gen}:${place.part}`, (counts.get(`${place.gen}:${place.part}`) ?? 0) + s.count);
        }
        // samples naming a generation's code never mix generations or misplace names
        expect(problems).toEqual([]);

        const parts: Part[] = ['import', 'exec', 'generated', 'work'];
        const got = (g: number, p: Part) => counts.get(`${g}:${p}`) ?? 0;
        table.push(
          `${version}: ${all} samples, ${unknown} with [unknown code] (${((100 * unknown) / Math.max(1, all)).toFixed(2)}%); ` +
            `per generation import/exec/generated/work: ${generations.map((g) => `${g.gen}:${parts.map((p) => got(g.gen, p)).join('/')}`).join(' ')}`,
        );
        for (const g of generations) {
          for (const part of parts) {
            // no generation gets samples it did not earn: a sample of one
            // generation named after another would show as a surplus here
            const n = got(g.gen, part);
            expect(n, `generation ${g.gen} ${part}: ${n} samples for ${g[part].toFixed(3)} CPU s`).toBeLessThanOrEqual(Math.ceil(g[part] * HZ * 1.3) + 3);
          }
          // every generation's own functions are named in its own samples: a
          // quarter of their CPU's worth at least, not the half asked of all
          // generations together below -- one generation's work is a quarter
          // of a CPU second, a window a throttled vCPU can lose most ticks of
          // (see cpuFloor in shapes.test.ts); a generation left unnamed has 0
          expect(got(g.gen, 'work'), `generation ${g.gen}: samples in gen_${g.gen}_work`).toBeGreaterThanOrEqual(Math.max(1, Math.floor(g.work * HZ * 0.25)));
        }
        // import time, exec'd code and generated functions, named in all: at
        // least half their CPU's worth of samples (see cpuFloor in shapes.test.ts)
        for (const part of parts) {
          const n = generations.reduce((sum, g) => sum + got(g.gen, part), 0);
          const cpu = generations.reduce((sum, g) => sum + g[part], 0);
          expect(n, `${part}: ${n} samples for ${cpu.toFixed(2)} CPU s`).toBeGreaterThanOrEqual(Math.floor(cpu * HZ * 0.5));
        }
        expect(unknown / all, `share of samples with [unknown code]`).toBeLessThan(0.01);
      } finally {
        await w.stop();
        rmSync(hostDir, { recursive: true, force: true });
      }
    }, 120_000);
  }
});
