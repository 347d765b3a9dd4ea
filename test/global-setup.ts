import { execFileSync } from 'node:child_process';

/** Builds the BPF object once before any suite runs (a no-op when it is up to date). */
export default function setup(): void {
  execFileSync('make', ['-s', '-C', 'bpf'], { stdio: 'inherit' });
}
