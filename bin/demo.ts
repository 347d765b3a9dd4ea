/**
 * `kiln demo`: the whole pipeline on this machine. Starts `kiln serve` on the
 * embedded engine, the agent on this host, and a small example Python service,
 * then prints where to look.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { requireCapabilities } from '../bpf/capabilities.js';
import { Agent, AGENT_DEFAULTS } from '../agent/agent.js';
import { parsePositiveInt } from './args.js';

export const DEMO_USAGE = `kiln demo [--port 4040] [--data ./kiln-data] [--python /usr/bin/python3]`;

export async function demo(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '4040' },
      data: { type: 'string', default: './kiln-data' },
      python: { type: 'string', default: 'python3' },
    },
    strict: true,
  });
  const log = (m: string) => process.stderr.write(`kiln demo: ${m}\n`);
  requireCapabilities();
  const port = parsePositiveInt('--port', values.port!, 65535);
  mkdirSync(values.data!, { recursive: true });

  const { serve } = await import('../ingest/serve.js');
  const server = await serve({ port, data: values.data!, log: (m) => log(m.replace(/^kiln: /, '')) });
  const agent = await Agent.start({
    ...AGENT_DEFAULTS,
    server: server.url,
    queueDir: join(values.data!, 'agent-queue'),
    metricsPort: 0,
    // the agent shares this process with the server here, so its CPU budget would count the server's work too
    cpuBudget: 1,
    log: (m) => log(`agent: ${m}`),
  });
  const shop: ChildProcess = spawn(values.python!, [join(import.meta.dirname, 'demo', 'shop.py')], {
    stdio: 'ignore',
    env: { ...process.env, KILN_SERVICE: 'demo-shop' },
  });
  shop.once('error', (err) => log(`could not start the example service with ${values.python}: ${err.message}`));

  process.stdout.write(
    `\nKiln is running.\n` +
      `  UI and API:     ${server.url}/  (the first profiles arrive within ${AGENT_DEFAULTS.uploadIntervalMs / 1000} s)\n` +
      `  example service: demo-shop (pid ${shop.pid}); every other Python process here is profiled too\n` +
      `  agent metrics:   http://localhost:${agent.metricsPort}/metrics\n` +
      `Ctrl-C stops everything.\n\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  shop.kill();
  await agent.stop();
  await server.close();
  process.exit(0);
}
