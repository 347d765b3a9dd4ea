/**
 * speedscope's JSON file format (jlfwong/speedscope src/lib/file-format-spec.ts):
 * frames shared across profiles, one "sampled" profile per thread so the
 * viewer's thread picker separates them. Weights are CPU time in nanoseconds.
 */

import type { Frame, Profile, StackSample } from './profile.js';

export const SPEEDSCOPE_SCHEMA = 'https://www.speedscope.app/file-format-schema.json';

export interface SpeedscopeFrame {
  name: string;
  file?: string;
  line?: number;
}

export interface SpeedscopeSampledProfile {
  type: 'sampled';
  name: string;
  unit: 'nanoseconds' | 'none';
  startValue: number;
  endValue: number;
  /** frame indices, root first */
  samples: number[][];
  weights: number[];
}

export interface SpeedscopeFile {
  $schema: typeof SPEEDSCOPE_SCHEMA;
  exporter: string;
  name: string;
  activeProfileIndex: number;
  shared: { frames: SpeedscopeFrame[] };
  profiles: SpeedscopeSampledProfile[];
}

export function encodeSpeedscope(profile: Profile, name = 'Kiln CPU profile'): string {
  return JSON.stringify(toSpeedscope(profile, name));
}

export function toSpeedscope(profile: Profile, name = 'Kiln CPU profile'): SpeedscopeFile {
  const frames: SpeedscopeFrame[] = [];
  const frameIndex = new Map<string, number>();
  const indexOf = (f: Frame): number => {
    const key = `${f.name}\0${f.filename}\0${f.line}`;
    let i = frameIndex.get(key);
    if (i === undefined) {
      i = frames.length;
      frameIndex.set(key, i);
      const out: SpeedscopeFrame = { name: f.name };
      if (f.filename) out.file = f.filename;
      if (f.line > 0) out.line = f.line;
      frames.push(out);
    }
    return i;
  };

  // Without a period (e.g. a profile read from folded stacks) counts are all
  // there is, and speedscope shows them unitless.
  const period = profile.periodNs > 0 ? profile.periodNs : 0;
  const unit = period > 0 ? 'nanoseconds' : 'none';
  const threads = new Map<string, SpeedscopeSampledProfile>();
  for (const s of profile.samples) {
    if (s.count <= 0) continue;
    const key = threadKey(s);
    let thread = threads.get(key);
    if (!thread) {
      thread = { type: 'sampled', name: threadName(s), unit, startValue: 0, endValue: 0, samples: [], weights: [] };
      threads.set(key, thread);
    }
    const weight = period > 0 ? Math.round(s.count * period) : s.count;
    thread.samples.push(s.frames.map(indexOf).reverse());
    thread.weights.push(weight);
    thread.endValue += weight;
  }

  const profiles = [...threads.values()];
  // Open on the busiest thread rather than whichever was sampled first.
  let active = 0;
  profiles.forEach((p, i) => {
    if (p.endValue > profiles[active]!.endValue) active = i;
  });
  return {
    $schema: SPEEDSCOPE_SCHEMA,
    exporter: 'kiln',
    name,
    activeProfileIndex: active,
    shared: { frames },
    profiles,
  };
}

function threadKey(s: StackSample): string {
  return `${s.labels.tid ?? ''}\0${s.labels.thread_name ?? ''}`;
}

function threadName(s: StackSample): string {
  const { tid, thread_name: threadName, pid } = s.labels;
  const parts: string[] = [];
  if (threadName) parts.push(threadName);
  if (tid) parts.push(`tid ${tid}`);
  if (pid) parts.push(`pid ${pid}`);
  if (parts.length === 0) return 'all threads';
  // "MainThread (tid 12, pid 10)"
  return parts.length === 1 ? parts[0]! : `${parts[0]!} (${parts.slice(1).join(', ')})`;
}
