import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
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
}

export const REQUIRED_VERSIONS = ['3.9', '3.11', '3.13', '3.14'];

/** Versions with a Kiln table but no Debian build; tested only when provided (KILN_PYTHON_3_10=/path/to/python3.10). */
export const OPTIONAL_VERSIONS = ['3.10', '3.12'];

export function pythonsRoot(): string {
  return process.env.KILN_PYTHONS ?? '/var/cache/kiln/pythons';
}

export function hostPython(): PythonInterpreter {
  return { version: '3.11', label: 'host 3.11 (/usr/bin/python3.11)', command: ['/usr/bin/python3.11'], root: '/' };
}

/** A root made by setup-pythons.sh, if it is complete. */
export function rootPython(version: string): PythonInterpreter | undefined {
  const root = join(pythonsRoot(), version);
  if (!existsSync(join(root, '.kiln-ready'))) return undefined;
  return { version, label: `chroot ${version} (${root})`, command: ['chroot', root, `python${version}`], root };
}

/** An interpreter given by environment variable, e.g. KILN_PYTHON_3_12=/opt/python3.12/bin/python3.12. */
export function envPython(version: string): PythonInterpreter | undefined {
  const path = process.env[`KILN_PYTHON_${version.replace('.', '_')}`];
  if (!path || !existsSync(path)) return undefined;
  return { version, label: `${version} (${path})`, command: [path], root: '/' };
}

export function pythonFor(version: string): PythonInterpreter | undefined {
  if (version === '3.11') return hostPython();
  return rootPython(version) ?? envPython(version);
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
