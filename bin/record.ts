/** `kiln record`: profile Python processes for a while and write one profile. */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { requireCapabilities } from '../bpf/capabilities.js';
import { KILN_MAX_DEPTH } from '../bpf/abi.js';
import { encodeCollapsed } from '../profile/collapsed.js';
import { encodePprof } from '../profile/pprof.js';
import { totalSamples, type Profile } from '../profile/profile.js';
import { mergeProfiles, Recorder } from '../unwinder/recorder.js';
import { encodeSpeedscope } from '../profile/speedscope.js';
import { parseDuration, parsePositiveInt, UsageError } from './args.js';

export const RECORD_USAGE = `kiln record (--pid PID ... | --all) [options]

  --pid PID          a Python process to profile (repeat for several)
  --all              every Python process on the host, including ones started while recording
  --duration D       how long to record (default 10s; Ctrl-C stops early and still writes)
  --frequency HZ     samples per second per CPU (default 99)
  --max-depth N      Python frames kept per stack before it is marked [truncated] (default ${KILN_MAX_DEPTH}, max ${KILN_MAX_DEPTH})
  -o, --output FILE  where to write (default profile.pb.gz, profile.folded or profile.speedscope.json)
  --format F         pprof (gzipped protobuf), collapsed (folded stacks) or speedscope (default pprof)
  -q, --quiet        print only errors`;

const FORMATS = ['pprof', 'collapsed', 'speedscope'] as const;
type Format = (typeof FORMATS)[number];
const DEFAULT_OUTPUT: Record<Format, string> = {
  pprof: 'profile.pb.gz',
  collapsed: 'profile.folded',
  speedscope: 'profile.speedscope.json',
};

export async function record(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pid: { type: 'string', multiple: true, default: [] },
      all: { type: 'boolean', default: false },
      duration: { type: 'string', default: '10s' },
      frequency: { type: 'string', default: '99' },
      'max-depth': { type: 'string', default: String(KILN_MAX_DEPTH) },
      output: { type: 'string', short: 'o' },
      format: { type: 'string', default: 'pprof' },
      quiet: { type: 'boolean', short: 'q', default: false },
    },
    strict: true,
  });
  const pids = (values.pid ?? []).map((p) => parsePositiveInt('--pid', p));
  if (!pids.length && !values.all) throw new UsageError('say which processes: --pid PID (one or more) or --all');
  const format = values.format as Format;
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
  const durationMs = parseDuration(values.duration!);
  const frequency = parsePositiveInt('--frequency', values.frequency!, 10_000);
  const maxDepth = parsePositiveInt('--max-depth', values['max-depth']!, KILN_MAX_DEPTH);
  const output = values.output ?? DEFAULT_OUTPUT[format];
  const log = values.quiet ? () => {} : (m: string) => process.stderr.write(`kiln: ${m}\n`);

  requireCapabilities();
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const started = process.hrtime.bigint();
  const recorder = Recorder.start({
    pids,
    all: values.all!,
    frequency,
    maxDepth,
    drainIntervalMs: 1000,
    scanIntervalMs: 1000,
    log,
  });
  log(`recording ${values.all ? 'all Python processes' : `pid ${pids.join(', ')}`} at ${frequency} Hz for ${durationMs / 1000} s`);

  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, durationMs);
    process.once('SIGINT', () => {
      clearTimeout(timer);
      log('interrupted: writing what was recorded');
      resolve();
    });
  });
  const parts = await recorder.stop();
  const durationNs = Number(process.hrtime.bigint() - started);
  const profile = mergeProfiles(parts, recorder.periodNs, startNs, durationNs);
  const stats = recorder.kernelStats();
  writeFileSync(output, await encode(profile, format));
  log(`wrote ${output}: ${totalSamples(profile)} samples, ${profile.samples.length} distinct stacks from ${parts.length} process(es)`);
  const lost = stats.count_drops + stats.chunk_drops;
  if (lost || stats.read_errors)
    log(`kernel: ${stats.count_drops} samples and ${stats.chunk_drops} stacks dropped (maps full), ${stats.read_errors} unreadable walks`);
  const dropped = Object.entries(recorder.droppedProcesses());
  if (dropped.length) log(`processes not profiled (or no longer): ${dropped.map(([reason, n]) => `${n} ${reason}`).join(', ')}`);
  // every frame left [unknown code], and why
  const code = recorder.codeStats();
  const unnamed = Object.entries(code.faults).filter(([, n]) => n > 0);
  if (unnamed.length || stats.not_code || stats.event_drops)
    log(
      `[unknown code]: ${stats.not_code} frames with no live code object, ${stats.event_drops} first sights the ring had no room for` +
        (unnamed.length ? `; code objects not named: ${unnamed.map(([k, n]) => `${n} ${k}`).join(', ')}` : ''),
    );
}

async function encode(profile: Profile, format: Format): Promise<Buffer | string> {
  if (format === 'pprof') return encodePprof(profile);
  if (format === 'collapsed') return encodeCollapsed(profile);
  return encodeSpeedscope(profile);
}
