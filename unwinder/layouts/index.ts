import type { PyLayout, PythonVersion } from '../layout.js';
import { cpython311 } from './cpython-3.11.js';

/** One entry per minor version whose layout is not published by the process itself. */
const TABLES: Record<string, Omit<PyLayout, 'version'>> = {
  '3.11': cpython311,
};

/** The table layout for a version, or undefined when Kiln has none. */
export function tableLayout(version: PythonVersion): PyLayout | undefined {
  const entry = TABLES[`${version.major}.${version.minor}`];
  return entry ? { ...entry, version } : undefined;
}

export function tableVersions(): string[] {
  return Object.keys(TABLES);
}
