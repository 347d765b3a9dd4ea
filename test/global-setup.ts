import { execFileSync } from 'node:child_process';
import { buildUi } from '../ui/build.js';

/**
 * Builds the BPF object once before any suite runs (a no-op when it is up to
 * date), and the web UI into build/ui, which test/ui.test.ts serves (esbuild,
 * well under a second).
 */
export default async function setup(): Promise<void> {
  execFileSync('make', ['-s', '-C', 'bpf'], { stdio: 'inherit' });
  await buildUi();
}
