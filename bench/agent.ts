/**
 * The fleet agent's cost on a busy host: 20 CPU-bound Python processes and
 * the real `kiln agent` (a separate process, at its defaults: 99 Hz, a
 * profile per process every 10 s) shipping to a real `kiln serve`. Runs
 * without the agent, with the agent as it was before issue 10 (kit/before.ts)
 * and with this one are interleaved, pair after pair. Reports each agent's
 * own CPU (user + system of the whole process, all its threads, from /proc)
 * as a share of one core, and the workloads' throughput per CPU-second with
 * each agent against without.
 *
 * The agent is measured as it runs for hours: after a warm-up (its JIT
 * compiling, every process followed and its code named once) and over
 * whole upload periods.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { checkoutBefore, type Checkout } from '../kit/before.js';
import { cpuSeconds, startDaemon, startServe, type Daemon } from '../kit/harness.js';
import { hostPython } from '../kit/pythons.js';
import { envNumber } from '../kit/stats.js';

export type BenchResults = Record<string, number | string>;

const REPO = join(import.meta.dirname, '..');
const THROUGHPUT = join(REPO, 'bench', 'workloads', 'throughput.py');
const PROCESSES = envNumber('KILN_BENCH_AGENT_PROCESSES', 20);
const WARMUP_SECONDS = envNumber('KILN_BENCH_AGENT_WARMUP_SECONDS', 25);
const SECONDS = envNumber('KILN_BENCH_AGENT_SECONDS', 30);
const PAIRS = envNumber('KILN_BENCH_AGENT_PAIRS', 2);
const UPLOAD_INTERVAL = process.env.KILN_BENCH_AGENT_UPLOAD_INTERVAL ?? '10s';


interface Workload {
  proc: ChildProcess;
  lines: AsyncIterator<string>;
  exited: Promise<unknown>;
}

/** n throughput.py processes, running: WARMUP_SECONDS unmeasured, then SECONDS measured. */
async function startWorkloads(n: number): Promise<Workload[]> {
  const py = hostPython();
  return Promise.all(
    Array.from({ length: n }, async () => {
      const proc = spawn(py.command[0]!, [THROUGHPUT, String(SECONDS), String(WARMUP_SECONDS)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
      await lines.next(); // {"pid": ...}
      proc.stdin!.write('go\n');
      return { proc, lines, exited };
    }),
  );
}

/** The median of the workloads' per-CPU-second throughputs over their measured part. */
async function throughputOf(ws: Workload[]): Promise<number> {
  const rates = await Promise.all(
    ws.map(async (w) => {
      const r = await w.lines.next();
      await w.exited;
      return (JSON.parse(r.value as string) as { slice_median_per_cpu_second: number }).slice_median_per_cpu_second;
    }),
  );
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  throughput: number;
  /** the agent's CPU over the measured part, share of one core */
  cpu?: number;
}

/** One run of the workloads, with an agent (`kiln` command) or without. */
async function run(url: string, queue: string, kiln?: string): Promise<Run> {
  let agent: Daemon | undefined;
  if (kiln) {
    const args = ['agent', '--server', url, '--queue-dir', queue, '--metrics-port=-1', '--upload-interval', UPLOAD_INTERVAL, '--cpu-budget', '100'];
    agent = await startDaemon(args, /profiling every Python process/, 90_000, kiln);
  }
  try {
    const ws = await startWorkloads(PROCESSES);
    await sleep(WARMUP_SECONDS * 1000);
    const cpu0 = agent ? cpuSeconds(agent.proc.pid!) : 0;
    const t0 = process.hrtime.bigint();
    const throughput = await throughputOf(ws);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    return { throughput, cpu: agent ? (cpuSeconds(agent.proc.pid!) - cpu0) / wall : undefined };
  } finally {
    await agent?.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchAgent(): Promise<BenchResults> {
  const tmp = mkdtempSync(join(tmpdir(), 'kiln-bench-agent-'));
  const serve = await startServe(join(tmp, 'data'));
  let before: Checkout | undefined;
  const agents: { name: string; kiln: string }[] = [{ name: 'after', kiln: join(REPO, 'bin', 'kiln') }];
  const out: BenchResults = {
    agent_processes: PROCESSES,
    agent_frequency_hz: 99,
    agent_upload_interval: UPLOAD_INTERVAL,
    agent_warmup_seconds: WARMUP_SECONDS,
    agent_measured_seconds: SECONDS,
    agent_pairs: PAIRS,
  };
  try {
    before = checkoutBefore();
    if (before) agents.unshift({ name: 'before', kiln: before.kiln });
    out.agent_before_revision = before?.revision ?? 'none';
    const ratios = new Map<string, number[]>(agents.map((a) => [a.name, []]));
    const shares = new Map<string, number[]>(agents.map((a) => [a.name, []]));
    for (let pair = 0; pair < PAIRS; pair++) {
      // without, before, after: each agent's run next to a run without one
      for (const a of agents) {
        const without = await run(serve.url, join(tmp, `queue-${a.name}-${pair}`));
        const with_ = await run(serve.url, join(tmp, `queue-${a.name}-${pair}`), a.kiln);
        ratios.get(a.name)!.push(with_.throughput / without.throughput);
        shares.get(a.name)!.push(with_.cpu!);
        console.log(
          `agent (${a.name}) pair ${pair + 1}: ${PROCESSES} workloads, ${Math.round(without.throughput)} it/cpu-s without, ` +
            `${Math.round(with_.throughput)} with (ratio ${(with_.throughput / without.throughput).toFixed(4)}), agent CPU ${(100 * with_.cpu!).toFixed(2)}% of a core`,
        );
      }
    }
    for (const a of agents) {
      const k = a.name === 'after' ? 'agent' : `agent_${a.name}`;
      out[`${k}_cpu_share_of_core`] = Number(median(shares.get(a.name)!).toFixed(5));
      out[`${k}_cpu_shares`] = shares.get(a.name)!.map((x) => x.toFixed(4)).join(' ');
      out[`${k}_throughput_ratio_with_vs_without`] = Number(median(ratios.get(a.name)!).toFixed(4));
    }
  } finally {
    await serve.stop();
    before?.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}
