import type { PyLayout, PythonVersion } from '../layout.js';
import { cpython39 } from './cpython-3.9.js';
import { cpython310 } from './cpython-3.10.js';
import { cpython311 } from './cpython-3.11.js';
import { cpython312 } from './cpython-3.12.js';

/** One entry per minor version whose layout is not published by the process itself. */
const TABLES: Record<string, Omit<PyLayout, 'version'>> = {
  '3.9': cpython39,
  '3.10': cpython310,
  '3.11': cpython311,
  '3.12': cpython312,
};

/** The table layout for a version, or undefined when Kiln has none. */
export function tableLayout(version: PythonVersion): PyLayout | undefined {
  const entry = TABLES[`${version.major}.${version.minor}`];
  return entry ? { ...entry, version } : undefined;
}

export function tableVersions(): string[] {
  return Object.keys(TABLES);
}
