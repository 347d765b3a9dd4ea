import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';

/**
 * The real interpreters the tests run workloads under: 3.11 on the host, and
 * Debian roots built once by test/setup-pythons.sh (3.9 from bullseye, 3.13
 * from trixie, 3.14 from sid), run with chroot as a container would be.
 */
export interface PythonInterpreter {
  /** minor version, e.g. "3.13" */
  version: string;
  /** how the test output names it */
  label: string;
  /** argv prefix that runs this interpreter */
  command: string[];
  /** the interpreter's root as the host sees it ("/" for the host) */
  root: string;
  /** headers where Debian's pythonX.Y-dev puts them, under root (else ask sysconfig) */
  debianHeaders?: boolean;
}

export const REQUIRED_VERSIONS = ['3.9', '3.11', '3.13', '3.14'];

/** Versions with a Kiln table but no Debian build; tested only when provided (KILN_PYTHON_3_10=/path/to/python3.10). */
export const OPTIONAL_VERSIONS = ['3.10', '3.12'];

/**
 * The versions a suite runs on, oldest first: every required one (a test
 * fails if it is missing), and each optional one that is here (saying so
 * when it is not).
 */
export function testedVersions(suite: string): string[] {
  const optional = OPTIONAL_VERSIONS.filter((v) => {
    if (pythonFor(v)) return true;
    console.log(`${suite}: no Python ${v} here (set KILN_PYTHON_${v.replace('.', '_')}=/path/to/python${v} to test it)`);
    return false;
  });
  return [...REQUIRED_VERSIONS, ...optional].sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
}

export function pythonsRoot(): string {
  return process.env.KILN_PYTHONS ?? '/var/cache/kiln/pythons';
}

export function hostPython(): PythonInterpreter {
  return { version: '3.11', label: 'host 3.11 (/usr/bin/python3.11)', command: ['/usr/bin/python3.11'], root: '/', debianHeaders: true };
}

/**
 * Mounts /proc inside a root unless it already is: workloads write
 * /proc/self/task/TID/comm, and setup-pythons.sh's mounts do not survive a
 * reboot. Needs root, as chroot does.
 */
export function ensureProc(root: string): void {
  const dir = join(root, 'proc');
  if (spawnSync('mountpoint', ['-q', dir]).status === 0) return;
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'proc', 'proc', dir]);
}

/** A root made by setup-pythons.sh, if it is complete. */
export function rootPython(version: string): PythonInterpreter | undefined {
  const root = join(pythonsRoot(), version);
  if (!existsSync(join(root, '.kiln-ready'))) return undefined;
  ensureProc(root);
  return { version, label: `chroot ${version} (${root})`, command: ['chroot', root, `python${version}`], root, debianHeaders: true };
}

/**
 * Another build of a version: KILN_PYTHON_3_X=/path/to/python3.X, or else the
 * newest pyenv build of it (${PYENV_ROOT:-~/.pyenv}/versions/3.X.*), which is
 * how 3.10 and 3.12, absent from Debian, get tested where pyenv has them.
 */
export function envPython(version: string): PythonInterpreter | undefined {
  const path = process.env[`KILN_PYTHON_${version.replace('.', '_')}`] ?? pyenvPython(version);
  if (!path || !existsSync(path)) return undefined;
  return { version, label: `${version} (${path})`, command: [path], root: '/' };
}

function pyenvPython(version: string): string | undefined {
  const dir = join(process.env.PYENV_ROOT ?? join(homedir(), '.pyenv'), 'versions');
  if (!existsSync(dir)) return undefined;
  const patch = (v: string) => Number(v.split('.')[2]);
  const builds = readdirSync(dir)
    .filter((v) => /^\d+\.\d+\.\d+$/.test(v) && v.startsWith(version + '.'))
    .sort((a, b) => patch(b) - patch(a));
  return builds.map((v) => join(dir, v, 'bin', `python${version}`)).find((p) => existsSync(p));
}

export function pythonFor(version: string): PythonInterpreter | undefined {
  if (version === '3.11') return hostPython();
  return rootPython(version) ?? envPython(version);
}

/**
 * Every interpreter of a version that is available: the host's or the root's,
 * and also one given by KILN_PYTHON_3_X (say a different patch release).
 */
export function pythonsFor(version: string): PythonInterpreter[] {
  const main = version === '3.11' ? hostPython() : rootPython(version);
  return [main, envPython(version)].filter((p): p is PythonInterpreter => p !== undefined);
}

/**
 * gcc flags that find an interpreter's C headers (internal ones included).
 * Debian splits them: <pythonX.Y/pyconfig.h> includes
 * <x86_64-linux-gnu/pythonX.Y/pyconfig.h>, hence the root's /usr/include, put
 * after the system directories so the host's libc headers still win. Other
 * builds say where their headers are through sysconfig.
 */
export function headerFlags(py: PythonInterpreter): string[] {
  if (py.debianHeaders) {
    const inc = join(py.root, 'usr/include');
    return ['-I', join(inc, `python${py.version}`), '-I', join(inc, `x86_64-linux-gnu/python${py.version}`), '-idirafter', inc];
  }
  const out = execFileSync(py.command[0]!, ['-c', "import sysconfig; p = sysconfig.get_paths(); print(p['include']); print(p['platinclude'])"], {
    encoding: 'utf8',
  });
  return out
    .trim()
    .split('\n')
    .flatMap((dir) => ['-I', dir]);
}

/**
 * Puts a workload where the interpreter can see it and returns its path as
 * the interpreter sees it. Host interpreters use the file in place.
 */
export function stageWorkload(py: PythonInterpreter, file: string): string {
  if (py.root === '/') return file;
  const dir = join(py.root, 'kiln-workloads');
  mkdirSync(dir, { recursive: true });
  copyFileSync(file, join(dir, basename(file)));
  return `/kiln-workloads/${basename(file)}`;
}
