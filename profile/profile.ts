/**
 * Kiln's in-memory profile: symbolized stacks with counts and labels. The
 * recorder and the agent build it; profile/pprof.ts, collapsed.ts and
 * speedscope.ts write it out.
 */

import type { ProfileType } from './profile-type.js';

export interface Frame {
  /** co_qualname (co_name before 3.11), e.g. "Worker.run" */
  name: string;
  /** co_name, e.g. "run" */
  systemName: string;
  /** co_filename as the process sees it */
  filename: string;
  /** co_firstlineno */
  startLine: number;
  /** line being executed; 0 when unknown */
  line: number;
}

export interface StackSample {
  /** leaf first, as pprof orders locations */
  frames: Frame[];
  /** sample labels, e.g. pid, tid, thread_name, python_version */
  labels: Record<string, string>;
  /** samples taken with exactly this stack and labels */
  count: number;
}

export interface Profile {
  samples: StackSample[];
  /** sampling period in nanoseconds (1e9 / frequency) */
  periodNs: number;
  /** when recording started, Unix epoch nanoseconds */
  startNs: bigint;
  /** how long recording lasted, nanoseconds */
  durationNs: number;
  /**
   * What the counts measure (profile-type.ts). Absent: CPU time, sampled at
   * periodNs. A type that is not a sampled time has its values in `count`.
   */
  type?: ProfileType;
  /** The interpreter binary the samples ran in (python3.13, /usr/bin/python3.13), written as pprof's main mapping. */
  mainBinary?: string;
}

/** Synthetic frames Kiln adds where it knows something happened but has no code object. */
export const SYNTHETIC = {
  truncated: '[truncated]',
  noPython: '[no Python frames]',
  noThreadState: '[thread without Python state]',
  readError: '[unreadable frame]',
  stackLost: '[stack lost: map full]',
  unknownCode: '[unknown code]',
} as const;

export function syntheticFrame(name: string): Frame {
  return { name, systemName: name, filename: '', startLine: 0, line: 0 };
}

/** One frozen Frame per synthetic name, for producers that key frames by identity. */
export const SYNTHETIC_FRAMES = Object.fromEntries(
  Object.entries(SYNTHETIC).map(([k, name]) => [k, Object.freeze(syntheticFrame(name))]),
) as Record<keyof typeof SYNTHETIC, Frame>;

export function totalSamples(p: Profile): number {
  let n = 0;
  for (const s of p.samples) n += s.count;
  return n;
}

/**
 * The interpreter's name for pprof's main mapping: python3.13 for processes
 * of one version; python3 for several.
 */
export function interpreterBinary(versions: readonly string[]): string | undefined {
  const minors = new Set(versions.map((v) => /^(\d+\.\d+)/.exec(v)?.[1]).filter((v): v is string => v !== undefined));
  if (minors.size === 0) return undefined;
  if (minors.size === 1) return `python${[...minors][0]}`;
  const majors = new Set([...minors].map((v) => v.split('.')[0]));
  return majors.size === 1 ? `python${[...majors][0]}` : 'python';
}
