/**
 * "Before" figures: a revision of this repository set up on its own (its
 * tree from git, this checkout's node_modules, its own BPF object), so a
 * bench can run the old code next to the new in one run, under the same
 * conditions.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './harness.js';

/** main before issue 10 rebuilt the sampler's kernel-userspace boundary */
export const BEFORE_REVISION = 'c1d0bda';

export interface Checkout {
  revision: string;
  dir: string;
  /** its `kiln` command */
  kiln: string;
  cleanup(): void;
}

/** The revision KILN_BENCH_BEFORE names (BEFORE_REVISION by default), or undefined when it is "none" or not in this clone. */
export function checkoutBefore(): Checkout | undefined {
  const revision = process.env.KILN_BENCH_BEFORE ?? BEFORE_REVISION;
  if (revision === 'none') return undefined;
  if (spawnSync('git', ['-C', REPO, 'cat-file', '-e', `${revision}^{commit}`]).status !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'kiln-before-'));
  try {
    execFileSync('sh', ['-c', `git -C "${REPO}" archive "${revision}" | tar -x -C "${dir}"`]);
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
    execFileSync('make', ['-s', '-C', join(dir, 'bpf')], { stdio: 'inherit' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { revision, dir, kiln: join(dir, 'bin', 'kiln'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
