/**
 * Pyroscope's push protocol (POST /ingest), enough for its clients to send to
 * Kiln unchanged: the application name with labels, folded stacks, and pprof
 * either raw or in a multipart form (pyroscope-go's shape).
 */

import { HttpError, checkLabel, type Limits } from './limits.js';
import type { Frame, Profile } from '../profile/profile.js';

/**
 * name=app.cpu{k=v,k2=v2}: application name and labels. Values may be
 * double-quoted. A __name__ label names the profile (process_cpu, memory,
 * ...) and is returned as `name`.
 */
export function parseAppName(raw: string | undefined, limits: Limits): { service: string; labels: Record<string, string>; name?: string } {
  if (raw === undefined || raw.trim() === '') throw new HttpError(400, 'missing name', 'the name parameter is required (app{k=v,...})');
  const text = raw.trim();
  // Read by hand, in one pass: no regex over request text.
  const open = text.indexOf('{');
  let name = text;
  let body = '';
  if (open >= 0) {
    if (!text.endsWith('}') || text.indexOf('}') !== text.length - 1) {
      throw new HttpError(400, 'bad name', `cannot read ${JSON.stringify(raw.slice(0, 100))} as app{k=v,...}`);
    }
    name = text.slice(0, open);
    body = text.slice(open + 1, -1).trim();
  } else if (text.includes('}')) {
    throw new HttpError(400, 'bad name', `cannot read ${JSON.stringify(raw.slice(0, 100))} as app{k=v,...}`);
  }
  // The suffix names the profile type; Kiln stores CPU profiles only and files them under the bare name.
  let service = name.trim();
  for (const suffix of ['.cpu', '.itimer']) if (service.endsWith(suffix)) service = service.slice(0, -suffix.length);
  const labels = new Map<string, string>();
  let profileName: string | undefined;
  if (body) {
    for (const part of body.split(',')) {
      if (part.trim() === '') continue;
      const eq = part.indexOf('=');
      if (eq <= 0) throw new HttpError(400, 'bad name', `label ${JSON.stringify(part.slice(0, 100))} is not k=v`);
      const k = part.slice(0, eq).trim();
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      // Pyroscope's reserved names (__name__, __spy_name__...) describe the push, not the workload.
      if (k === '__name__') {
        if (!isProfileName(v)) throw new HttpError(400, 'bad name', `__name__ ${JSON.stringify(v.slice(0, 100))} is not a profile name (letters, digits, _ . -, at most 100)`);
        profileName = v;
      }
      if (k.startsWith('__')) continue;
      checkLabel(k, v, limits, 'name label');
      labels.set(k, v);
      if (labels.size > limits.maxSeriesLabels) {
        throw new HttpError(400, 'too many labels', `more than ${limits.maxSeriesLabels} labels, the limit`);
      }
    }
  }
  return { service, labels: Object.fromEntries(labels), ...(profileName !== undefined ? { name: profileName } : {}) };
}

/** A profile name as Pyroscope's IDs spell them: process_cpu, memory, wall, ... */
export function isProfileName(s: string): boolean {
  return s.length > 0 && s.length <= 100 && /^[A-Za-z0-9_.-]+$/.test(s);
}

/**
 * Folded stacks, one "root;...;leaf COUNT" per line, as flamegraph.pl,
 * py-spy and Pyroscope's clients write them. A frame "func (file.py:12)"
 * (py-spy) carries its file and line; anything else is a bare name.
 */
export function parseFolded(text: string, limits: Limits): Profile {
  const samples = new Map<string, { frames: Frame[]; count: number }>();
  let lines = 0;
  const frameCache = new Map<string, Frame>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trimEnd();
    if (line === '') continue;
    lines++;
    if (lines > limits.maxSamples) {
      throw new HttpError(400, 'too many samples', `more than ${limits.maxSamples} folded lines`);
    }
    const sp = line.lastIndexOf(' ');
    const countText = sp > 0 ? line.slice(sp + 1) : '';
    // Digits only: "1e21", "NaN", "Infinity" and "-3" are not counts.
    const count = countText.length > 0 && countText.length <= 10 && isDigits(countText) ? Number(countText) : NaN;
    if (!(Number.isInteger(count) && count >= 0)) {
      throw new HttpError(400, 'malformed folded profile', `line ${lines} does not end in a sample count: ${JSON.stringify(line.slice(0, 100))}`);
    }
    if (count > 0xffffffff) throw new HttpError(400, 'bad sample value', `line ${lines} counts ${count} samples, more than 4294967295`);
    const stack = line.slice(0, sp);
    if (count === 0) continue;
    const prev = samples.get(stack);
    if (prev) {
      prev.count += count;
      if (prev.count > 0xffffffff) throw new HttpError(400, 'bad sample value', `one stack counts more than 4294967295 samples`);
      continue;
    }
    const frames = stack
      .split(';')
      .filter((f) => f !== '')
      .map((f) => {
        let fr = frameCache.get(f);
        if (!fr) frameCache.set(f, (fr = foldedFrame(f)));
        return fr;
      })
      .reverse(); // Kiln's Profile is leaf first, like pprof
    samples.set(stack, { frames, count });
  }
  return {
    samples: [...samples.values()].map((s) => ({ frames: s.frames, labels: {}, count: s.count })),
    periodNs: 0,
    startNs: 0n,
    durationNs: 0,
  };
}

function isDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** py-spy's "func (file.py:12)", read from the end without a regex; anything else is a bare name. */
function foldedFrame(s: string): Frame {
  if (s.endsWith(')')) {
    const open = s.lastIndexOf(' (');
    const colon = s.lastIndexOf(':');
    if (open > 0 && colon > open + 2) {
      const file = s.slice(open + 2, colon);
      const lineText = s.slice(colon + 1, -1);
      if (lineText.length > 0 && lineText.length <= 9 && isDigits(lineText) && !file.includes('(') && !file.includes(')')) {
        const name = s.slice(0, open);
        return { name, systemName: name.split('.').at(-1) ?? name, filename: file, startLine: 0, line: Number(lineText) };
      }
    }
  }
  return { name: s, systemName: s, filename: '', startLine: 0, line: 0 };
}
