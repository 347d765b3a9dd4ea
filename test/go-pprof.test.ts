/**
 * `go tool pprof` (Debian's golang-go, installed by scripts/setup.sh --test)
 * reads what Kiln writes: a `kiln record` file of a live Python process, and
 * the same profile exported by `kiln serve` from /api/v1/pprof. Neither may
 * make it warn about the main binary, and `<module>` must print by name (a
 * system name equal to the name reads to pprof as a mangled one).
 */

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kiln, startServe, startWorkload, tempDir, type Daemon, type Workload } from '../kit/harness.js';
import { hostPython } from '../kit/pythons.js';
import { decodePprof } from '../profile/pprof.js';

const run = promisify(execFile);

/** `go tool pprof ARGS`: its stdout and stderr together (warnings go to stderr). */
async function goPprof(args: string[]): Promise<string> {
  const r = await run('go', ['tool', 'pprof', ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return `${r.stdout}\n${r.stderr}`;
}

function expectReadable(out: string): void {
  expect(out).not.toMatch(/Main binary filename not available/);
  expect(out).not.toMatch(/<unknown>/);
  // Every Python script's stacks start at its module code.
  expect(out).toMatch(/\s<module>\s*$/m);
}

describe('go tool pprof on Kiln pprof', () => {
  const tmp = tempDir();
  const recorded = join(tmp.dir, 'recorded.pb.gz');
  let w: Workload;
  let server: Daemon & { url: string };

  beforeAll(async () => {
    w = await startWorkload(hostPython(), 'shares.py', ['60']);
    const r = await kiln(['record', '--pid', String(w.pid), '--duration', '3s', '-o', recorded]);
    expect(r.code, r.stderr).toBe(0);
    server = await startServe(join(tmp.dir, 'data'));
  }, 180_000);

  afterAll(async () => {
    await w?.stop();
    await server?.stop();
    tmp.cleanup();
  });

  it('reads a recorded profile: the interpreter as main binary, <module> by name', async () => {
    const out = await goPprof(['-top', '-cum', recorded]);
    expectReadable(out);
    expect(out).toMatch(/^File: python3\.\d+$/m);
  }, 120_000);

  it('reads an export, which keeps the samples labels', async () => {
    const push = await fetch(`${server.url}/api/v1/profiles?service=rec&host=h1&time=now-1m`, { method: 'POST', body: readFileSync(recorded) });
    expect(push.status).toBe(200);
    const r = await fetch(`${server.url}/api/v1/pprof?service=rec&from=now-1h&to=now%2B1m`);
    expect(r.status).toBe(200);
    const bytes = Buffer.from(await r.arrayBuffer());
    const exported = join(tmp.dir, 'export.pb.gz');
    writeFileSync(exported, bytes);
    expectReadable(await goPprof(['-top', '-cum', exported]));
    // pid, tid, thread_name, python_version from the recording, host from the push.
    const p = decodePprof(bytes);
    const s = (i: number | bigint): string => p.stringTable.strings[Number(i)]!;
    expect(p.sample.length).toBeGreaterThan(0);
    for (const x of p.sample) {
      const labels = Object.fromEntries(x.label.map((l) => [s(l.key), s(l.str)]));
      expect(Object.keys(labels).sort()).toEqual(['host', 'pid', 'python_version', 'thread_name', 'tid']);
      expect(labels.pid).toBe(String(w.pid));
      expect(labels.host).toBe('h1');
    }
    const tags = await goPprof(['-tags', exported]);
    expect(tags).toMatch(/thread_name/);
  }, 120_000);
});
