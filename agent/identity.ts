/**
 * What a profiled process is called in the fleet: its service name and, where
 * it runs in a container, the container id. Read from /proc only.
 */
import { basename } from 'node:path';
import { cmdlineOf, environOf, MAX_SMALL_BYTES, readProcFile } from '../unwinder/proc.js';

export interface ProcessIdentity {
  service: string;
  /** where the name came from: env, container, systemd, cmdline */
  source: 'env' | 'container' | 'systemd' | 'cmdline';
  containerId?: string;
}

// docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, /docker/<id>, libpod-<id>
const CONTAINER = /(?:docker|cri-containerd|crio|libpod)[-/]([0-9a-f]{64})(?:\.scope)?/;
const SYSTEMD_UNIT = /\/([^/]+)\.service(?:\/|$)/;

export function cgroupPaths(pid: number): string[] {
  try {
    return readProcFile(`/proc/${pid}/cgroup`, MAX_SMALL_BYTES)
      .text.split('\n')
      .map((l) => l.split(':').slice(2).join(':'))
      .filter((p) => p && p !== '/');
  } catch {
    return [];
  }
}

/** The script or module a Python command line runs: `python -m api.main` -> api.main, `python /srv/app.py` -> app. */
export function scriptName(argv: string[]): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-m') return argv[i + 1];
    if (a === '-c') return undefined;
    if (a.startsWith('-')) {
      if (a === '-W' || a === '-X' || a === '--check-hash-based-pycs') i++; // options with a value
      continue;
    }
    return basename(a).replace(/\.pyw?$/, '');
  }
  return undefined;
}

/** Longer service names (the process chooses them) are cut: a label value, not a document. */
const MAX_SERVICE_CHARS = 200;

export function identify(pid: number): ProcessIdentity {
  const id = identifyUncut(pid);
  return { ...id, service: [...id.service].slice(0, MAX_SERVICE_CHARS).join('') };
}

function identifyUncut(pid: number): ProcessIdentity {
  const paths = cgroupPaths(pid);
  let containerId: string | undefined;
  for (const p of paths) {
    const m = CONTAINER.exec(p);
    if (m) containerId = m[1];
  }
  const fromEnv = environOf(pid, 'KILN_SERVICE');
  if (fromEnv) return { service: fromEnv, source: 'env', containerId };
  if (containerId) return { service: `container-${containerId.slice(0, 12)}`, source: 'container', containerId };
  for (const p of paths) {
    const m = SYSTEMD_UNIT.exec(p);
    if (m) return { service: m[1]!, source: 'systemd' };
  }
  const argv = cmdlineOf(pid);
  return { service: scriptName(argv) ?? basename(argv[0] ?? `pid-${pid}`), source: 'cmdline' };
}
