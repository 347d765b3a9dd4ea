/**
 * Folded ("collapsed") stacks, the input of Brendan Gregg's flamegraph.pl,
 * inferno and speedscope's importer: one line per distinct stack,
 * `root;...;leaf count`. Frames are written `name (filename:line)`, the way
 * py-spy's raw output names Python frames, so files from either tool look
 * alike. Labels are not representable; their counts are summed.
 */

import type { Frame, Profile } from './profile.js';

export interface CollapsedStack {
  /** frame texts, root first */
  frames: string[];
  count: number;
}

export function encodeCollapsed(profile: Profile): string {
  const counts = new Map<string, number>();
  for (const s of profile.samples) {
    if (s.count <= 0) continue;
    const stack = s.frames.map(frameText).reverse().join(';');
    counts.set(stack, (counts.get(stack) ?? 0) + s.count);
  }
  // Sorted so the same profile always gives the same file, and diffs of two are readable.
  const stacks = [...counts.keys()].sort();
  return stacks.map((k) => `${k} ${counts.get(k)!}\n`).join('');
}

/** `name (filename:line)`; frames without a file (Kiln's synthetic ones) are just their name. */
export function frameText(f: Frame): string {
  const name = clean(f.name);
  return f.filename ? `${name} (${clean(f.filename)}:${f.line})` : name;
}

/**
 * ';' separates frames and a newline ends the stack, so neither may appear
 * inside one; ',' keeps a mangled name readable.
 */
function clean(s: string): string {
  return s.replace(/;/g, ',').replace(/[\r\n]+/g, ' ');
}

const FRAME_WITH_LOCATION = /^(.*) \((.*):(\d+)\)$/;

/** Inverse of frameText; any other text (another tool's frame) becomes the name. */
export function parseFrameText(text: string): Frame {
  const m = FRAME_WITH_LOCATION.exec(text);
  if (m && m[1]) {
    return { name: m[1], systemName: m[1], filename: m[2]!, startLine: 0, line: Number(m[3]) };
  }
  return { name: text, systemName: text, filename: '', startLine: 0, line: 0 };
}

/** The count is the last whitespace-separated field; frames may contain spaces. */
const LINE = /^(.*\S)\s+(\S+)\s*$/;

/**
 * Parses folded stacks from any producer. Blank lines are skipped; a line
 * without a stack or a non-negative integer count throws, naming the line.
 */
export function parseCollapsed(text: string): CollapsedStack[] {
  const out: CollapsedStack[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `collapsed stacks line ${i + 1}`;
    const m = LINE.exec(line);
    if (!m) throw new Error(`${where}: expected "frame;frame;... count", got ${JSON.stringify(truncate(line))}`);
    const count = Number(m[2]);
    if (!/^\d+$/.test(m[2]!) || !Number.isSafeInteger(count)) {
      throw new Error(`${where}: count ${JSON.stringify(truncate(m[2]!))} is not a non-negative integer`);
    }
    const frames = m[1]!.split(';');
    if (frames.some((f) => f === '')) throw new Error(`${where}: empty frame in stack`);
    out.push({ frames, count });
  }
  return out;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export interface CollapsedMeta {
  periodNs: number;
  startNs: bigint;
  durationNs: number;
  /** applied to every sample, since the format has none */
  labels?: Record<string, string>;
}

/** Folded text -> Profile, e.g. for ingesting py-spy or perf output. */
export function profileFromCollapsed(text: string, meta: CollapsedMeta): Profile {
  return {
    samples: parseCollapsed(text)
      .filter((s) => s.count > 0)
      .map((s) => ({ frames: s.frames.map(parseFrameText).reverse(), labels: { ...meta.labels }, count: s.count })),
    periodNs: meta.periodNs,
    startNs: meta.startNs,
    durationNs: meta.durationNs,
  };
}
