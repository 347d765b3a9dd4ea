/**
 * The fleet agent's cost on a busy host: 20 CPU-bound Python processes, the
 * real `kiln agent` (a separate process shipping to a real `kiln serve`) at
 * 99 Hz, interleaved runs with and without it. Reports the agent's own CPU
 * (user + system of the whole process, from /proc) as a share of one core and
 * the workloads' throughput with the agent against without, per CPU-second.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startDaemon, startServe } from '../kit/harness.js';
import { hostPython } from '../kit/pythons.js';

export type BenchResults = Record<string, number | string>;

const REPO = join(import.meta.dirname, '..');
const THROUGHPUT = join(REPO, 'bench', 'workloads', 'throughput.py');
const PROCESSES = Number(process.env.KILN_BENCH_AGENT_PROCESSES ?? 20);
const SECONDS = Number(process.env.KILN_BENCH_AGENT_SECONDS ?? 15);
const PAIRS = Number(process.env.KILN_BENCH_AGENT_PAIRS ?? 2);
const TICKS = 100; // USER_HZ

/** utime + stime of a whole process, seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

interface Workload {
  proc: ChildProcess;
  lines: AsyncIterator<string>;
  exited: Promise<unknown>;
}

async function startWorkloads(n: number): Promise<Workload[]> {
  const py = hostPython();
  return Promise.all(
    Array.from({ length: n }, async () => {
      const proc = spawn(py.command[0]!, [THROUGHPUT, String(SECONDS), '1'], { stdio: ['pipe', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
      await lines.next(); // {"pid": ...}
      return { proc, lines, exited };
    }),
  );
}

/** Runs n workloads at once; the median of their per-CPU-second throughputs. */
async function runWorkloads(ws: Workload[]): Promise<number> {
  for (const w of ws) w.proc.stdin!.write('go\n');
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

export async function benchAgent(): Promise<BenchResults> {
  const tmp = mkdtempSync(join(tmpdir(), 'kiln-bench-agent-'));
  const serve = await startServe(join(tmp, 'data'));
  const url = serve.url;
  const ratios: number[] = [];
  const shares: number[] = [];
  let without = 0;
  let withAgent = 0;
  try {
    for (let pair = 0; pair < PAIRS; pair++) {
      without = await runWorkloads(await startWorkloads(PROCESSES));
      const agent = await startDaemon(
        ['agent', '--server', url, '--queue-dir', join(tmp, 'queue'), '--metrics-port=-1', '--upload-interval', '5s', '--frequency', '99', '--cpu-budget', '100'],
        /profiling every Python process/,
      );
      try {
        const ws = await startWorkloads(PROCESSES);
        await sleep(2500); // new processes are picked up within 2 s
        const cpu0 = cpuSeconds(agent.proc.pid!);
        const t0 = process.hrtime.bigint();
        withAgent = await runWorkloads(ws);
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        shares.push((cpuSeconds(agent.proc.pid!) - cpu0) / wall);
      } finally {
        await agent.stop();
      }
      ratios.push(withAgent / without);
      console.log(
        `agent pair ${pair + 1}: ${PROCESSES} workloads, ${Math.round(without)} it/cpu-s without, ${Math.round(withAgent)} with (ratio ${(withAgent / without).toFixed(4)}), agent CPU ${(100 * shares.at(-1)!).toFixed(2)}% of a core`,
      );
    }
  } finally {
    await serve.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return {
    agent_processes: PROCESSES,
    agent_frequency_hz: 99,
    agent_cpu_share_of_core: Number(med(shares).toFixed(5)),
    agent_throughput_ratio_with_vs_without: Number(med(ratios).toFixed(4)),
    agent_pairs: PAIRS,
  };
}
