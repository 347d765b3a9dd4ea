/** The `kiln` command: record, serve, agent, demo. */
import { agent, AGENT_USAGE } from './agent.js';
import { demo, DEMO_USAGE } from './demo.js';
import { record, RECORD_USAGE } from './record.js';
import { UsageError } from './args.js';

const USAGE = `kiln: always-on CPU profiler for Python services

  kiln record   profile Python processes and write pprof, folded stacks or speedscope
  kiln serve    run the ingest service, query API and web UI
  kiln agent    profile every Python process of this host continuously and ship to ingest
  kiln demo     serve + agent + an example Python service on this machine: the whole pipeline
  kiln help     this text

${RECORD_USAGE}

${AGENT_USAGE}

${DEMO_USAGE}`;

const COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  record,
  agent,
  demo,
  serve: async (argv) => {
    const { serve, optionsFromArgv, SERVE_USAGE } = await import('../ingest/serve.js');
    const opts = optionsFromArgv(argv);
    if (opts.help) {
      process.stdout.write(SERVE_USAGE + '\n');
      return;
    }
    const handle = await serve(opts);
    process.stderr.write(`kiln: serving on http://localhost:${handle.port}/\n`);
    // Stop taking requests, store what was acknowledged... and pending, then exit.
    const stop = (): void => {
      handle.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  },
};

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const run = COMMANDS[cmd];
  if (!run) throw new UsageError(`unknown command "${cmd}"`);
  await run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as Error & { code?: string };
  if (err instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`kiln: ${e.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`kiln: ${e.message}\n`);
  process.exit(1);
});
