/**
 * `npm run bench [-- --only sampler|agent|ingest|ui]`: runs the bench groups in one
 * process, prints what they measure as they go and a summary at the end, and
 * writes every figure to build/bench-results.json.
 *
 * - sampler (bench/sampler.ts): the profiler's overhead on a Python workload
 *   and the BPF program's run time per sample, CPython 3.9-3.14.
 * - agent (bench/agent.ts): the fleet agent's own CPU and its cost to 20
 *   busy Python processes.
 * - ingest (bench/ingest.ts), ui (bench/ui.ts): run when those files are present.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchAgent } from './agent.js';
import { benchSampler, samplerSummary, type BenchResults } from './sampler.js';

const GROUPS = ['sampler', 'agent', 'ingest', 'ui'] as const;
type Group = (typeof GROUPS)[number];
const HERE = import.meta.dirname;
const REPO = join(HERE, '..');
const OUT = join(REPO, 'build', 'bench-results.json');

/** A group whose module may not be there yet; a string says why it was skipped. */
async function runOptional(file: string, fn: string): Promise<BenchResults | string> {
  if (!existsSync(join(HERE, `${file}.ts`)) && !existsSync(join(HERE, `${file}.js`))) return `bench/${file}.ts not present`;
  // not a literal: the module may not exist when this file is type-checked
  const spec = `./${file}.js`;
  const mod = (await import(spec)) as Record<string, unknown>;
  const run = mod[fn];
  if (typeof run !== 'function') return `bench/${file}.ts exports no ${fn}()`;
  return (run as () => Promise<BenchResults>)();
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain'], { encoding: 'utf8' }).trim() ? '+dirty' : '';
    return head + dirty;
  } catch {
    return 'unknown';
  }
}

function genericSummary(r: BenchResults): string {
  const width = Math.max(...Object.keys(r).map((k) => k.length));
  return Object.entries(r)
    .map(([k, v]) => `${k.padEnd(width)}  ${typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: 3 }) : v}`)
    .join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' } }, strict: true });
  if (values.only !== undefined && !GROUPS.includes(values.only as Group)) {
    console.error(`--only must be one of ${GROUPS.join(', ')}`);
    process.exit(2);
  }
  const groups = values.only ? [values.only as Group] : [...GROUPS];

  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    node: process.version,
  };
  const summaries: string[] = [];
  let failed = false;
  for (const group of groups) {
    console.log(`\n######## ${group}`);
    const started = Date.now();
    try {
      if (group === 'sampler') {
        const r = await benchSampler();
        results.sampler = r;
        summaries.push(`### Sampler\n\n${samplerSummary(r)}`);
      } else {
        const r = group === 'agent' ? await benchAgent() : await runOptional(group, group === 'ingest' ? 'benchIngest' : 'benchUi');
        if (typeof r === 'string') {
          console.log(`${group}: skipped (${r})`);
          results[group] = { skipped: r };
          summaries.push(`### ${group}\n\nskipped: ${r}`);
        } else {
          results[group] = r;
          summaries.push(`### ${group}\n\n${genericSummary(r)}`);
        }
      }
    } catch (err) {
      failed = true;
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      console.error(`${group} bench failed: ${message}`);
      results[group] = { error: err instanceof Error ? err.message : String(err) };
      summaries.push(`### ${group}\n\nFAILED: ${err instanceof Error ? err.message : String(err)}`);
    }
    console.log(`(${group}: ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }

  mkdirSync(join(REPO, 'build'), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  const bar = '='.repeat(78);
  console.log(`\n${bar}\nSUMMARY (${results.date}, ${results.commit}, node ${process.version})\n${bar}\n`);
  console.log(summaries.join('\n\n'));
  console.log(`\n${bar}\nall figures: ${OUT}`);
  if (failed) process.exitCode = 1;
}

await main();
