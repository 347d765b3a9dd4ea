/** `kiln agent`: profile every Python process of this host, continuously, and ship to ingest. */
import { parseArgs } from 'node:util';
import { requireCapabilities } from '../bpf/capabilities.js';
import { KILN_MAX_DEPTH } from '../bpf/abi.js';
import { Agent, AGENT_DEFAULTS, type AgentOptions } from '../agent/agent.js';
import { parseDuration, parsePositiveInt, UsageError } from './args.js';

export const AGENT_USAGE = `kiln agent --server URL [options]

  --server URL          ingest service, e.g. http://kiln.internal:4040
  --token T             bearer token for writes (or KILN_TOKEN)
  --frequency HZ        samples per second per CPU (default ${AGENT_DEFAULTS.frequency}); lowered while over the CPU budget
  --upload-interval D   one profile per process per period (default 10s)
  --queue-dir DIR       on-disk queue for profiles not yet accepted (default ${AGENT_DEFAULTS.queueDir})
  --queue-max-mb N      queue bound; past it the oldest profiles are dropped and counted (default 256)
  --cpu-budget PCT      the agent's own CPU, percent of one core (default ${AGENT_DEFAULTS.cpuBudget * 100})
  --metrics-port PORT   Prometheus /metrics (default ${AGENT_DEFAULTS.metricsPort}; --metrics-port=-1 for none)
  --host NAME           host label (default the hostname)
  --upload-format F     native (Kiln's own form: ids, and definitions once a day; default) or pprof`;

export function agentOptionsFromArgv(argv: string[], log: (m: string) => void): AgentOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      server: { type: 'string' },
      token: { type: 'string' },
      frequency: { type: 'string', default: String(AGENT_DEFAULTS.frequency) },
      'max-depth': { type: 'string', default: String(KILN_MAX_DEPTH) },
      'upload-interval': { type: 'string', default: '10s' },
      'queue-dir': { type: 'string', default: AGENT_DEFAULTS.queueDir },
      'queue-max-mb': { type: 'string', default: '256' },
      'cpu-budget': { type: 'string', default: String(AGENT_DEFAULTS.cpuBudget * 100) },
      'metrics-port': { type: 'string', default: String(AGENT_DEFAULTS.metricsPort) },
      host: { type: 'string', default: AGENT_DEFAULTS.host },
      'upload-format': { type: 'string', default: AGENT_DEFAULTS.uploadFormat },
    },
    strict: true,
  });
  if (!values.server) throw new UsageError('--server URL is required (the ingest service, e.g. http://localhost:4040)');
  try {
    new URL(values.server);
  } catch {
    throw new UsageError(`--server "${values.server}" is not a URL`);
  }
  const budget = Number(values['cpu-budget']);
  if (!(budget > 0 && budget <= 100)) throw new UsageError('--cpu-budget is a percentage of one core, above 0 and at most 100');
  const uploadFormat = values['upload-format'];
  if (uploadFormat !== 'native' && uploadFormat !== 'pprof') throw new UsageError('--upload-format is native or pprof');
  const metricsPort = Number(values['metrics-port']);
  if (!Number.isInteger(metricsPort) || metricsPort < -1 || metricsPort > 65535) throw new UsageError('--metrics-port must be a port, 0, or -1');
  return {
    server: values.server,
    token: values.token ?? process.env.KILN_TOKEN,
    frequency: parsePositiveInt('--frequency', values.frequency!, 10_000),
    maxDepth: parsePositiveInt('--max-depth', values['max-depth']!, KILN_MAX_DEPTH),
    uploadIntervalMs: parseDuration(values['upload-interval']!),
    queueDir: values['queue-dir']!,
    queueMaxBytes: parsePositiveInt('--queue-max-mb', values['queue-max-mb']!) * 1024 * 1024,
    metricsPort,
    cpuBudget: budget / 100,
    host: values.host!,
    uploadFormat,
    log,
  };
}

export async function agent(argv: string[]): Promise<void> {
  const log = (m: string) => process.stderr.write(`kiln agent: ${m}\n`);
  const options = agentOptionsFromArgv(argv, log);
  requireCapabilities();
  const a = await Agent.start(options);
  log(`profiling every Python process at ${options.frequency} Hz, shipping to ${options.server} every ${options.uploadIntervalMs / 1000} s` +
    (a.metricsPort ? `; metrics on :${a.metricsPort}/metrics` : ''));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log('stopping: queueing the last window');
  await a.stop();
  process.exit(0);
}
