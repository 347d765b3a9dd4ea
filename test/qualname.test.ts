/**
 * Source-derived qualnames (used on 3.9 and 3.10, which lack co_qualname)
 * against the real co_qualname of the host's CPython 3.11, for Kiln's own
 * workloads and a handful of stdlib modules.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qualnameFromSource } from '../unwinder/qualname.js';
import { WORKLOADS } from '../kit/harness.js';

interface Entry {
  file: string;
  name: string;
  firstlineno: number;
  qualname: string;
}

function truth(files: string[]): Entry[] {
  const out = execFileSync('/usr/bin/python3.11', [join(WORKLOADS, 'dump_qualnames.py'), ...files], { encoding: 'utf8' });
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Entry);
}

function agreement(files: string[]): { total: number; wrong: Entry[] } {
  const sources = new Map(files.map((f) => [f, readFileSync(f, 'utf8').split('\n')]));
  const entries = truth(files);
  const wrong = entries.filter((e) => qualnameFromSource(sources.get(e.file)!, e.firstlineno, e.name) !== e.qualname);
  return { total: entries.length, wrong };
}

describe('qualnames from source', () => {
  it("match co_qualname for every code object of Kiln's workloads", () => {
    const files = ['shares.py', 'shapes.py', 'threads.py', 'recursion.py'].map((f) => join(WORKLOADS, f));
    const { total, wrong } = agreement(files);
    expect(total).toBeGreaterThan(25);
    expect(wrong).toEqual([]);
  });

  it('match co_qualname for nearly all code objects of stdlib modules', () => {
    const lib = '/usr/lib/python3.11';
    const files = ['threading.py', 'asyncio/base_events.py', 'json/decoder.py', 'collections/__init__.py', 'dataclasses.py', 'argparse.py'].map((f) =>
      join(lib, f),
    );
    const { total, wrong } = agreement(files);
    console.log(`qualnames: ${total - wrong.length}/${total} stdlib code objects agree`, wrong.slice(0, 5));
    expect(total).toBeGreaterThan(500);
    expect(wrong.length / total).toBeLessThan(0.02);
  });
});
