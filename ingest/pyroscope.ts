/**
 * Pyroscope's push protocol (POST /ingest), enough for its clients to send to
 * Kiln unchanged: the application name with labels, folded stacks, and pprof
 * either raw or in a multipart form (pyroscope-go's shape).
 */

import { HttpError, checkLabel, type Limits } from './limits.js';
import type { Frame, Profile } from '../profile/profile.js';

/** name=app.cpu{k=v,k2=v2}: application name and labels. Values may be double-quoted. */
export function parseAppName(raw: string | undefined, limits: Limits): { service: string; labels: Record<string, string> } {
  if (raw === undefined || raw.trim() === '') throw new HttpError(400, 'missing name', 'the name parameter is required (app{k=v,...})');
  const m = /^([^{}]*)(?:\{(.*)\})?$/s.exec(raw.trim());
  if (!m) throw new HttpError(400, 'bad name', `cannot read ${JSON.stringify(raw.slice(0, 100))} as app{k=v,...}`);
  // The suffix names the profile type; Kiln stores CPU profiles only and files them under the bare name.
  const service = m[1]!.trim().replace(/\.(cpu|itimer)$/, '');
  const labels = new Map<string, string>();
  const body = m[2]?.trim() ?? '';
  if (body) {
    for (const part of body.split(',')) {
      if (part.trim() === '') continue;
      const eq = part.indexOf('=');
      if (eq <= 0) throw new HttpError(400, 'bad name', `label ${JSON.stringify(part.slice(0, 100))} is not k=v`);
      const k = part.slice(0, eq).trim();
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      // Pyroscope's reserved names (__name__, __spy_name__...) describe the push, not the workload.
      if (k.startsWith('__')) continue;
      checkLabel(k, v, limits, 'name label');
      labels.set(k, v);
    }
  }
  if (labels.size > limits.maxSeriesLabels) {
    throw new HttpError(400, 'too many labels', `${labels.size} labels, limit ${limits.maxSeriesLabels}`);
  }
  return { service, labels: Object.fromEntries(labels) };
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
    const count = sp > 0 ? Number(line.slice(sp + 1)) : NaN;
    if (!(Number.isInteger(count) && count >= 0)) {
      throw new HttpError(400, 'malformed folded profile', `line ${lines} does not end in a sample count: ${JSON.stringify(line.slice(0, 100))}`);
    }
    const stack = line.slice(0, sp);
    if (count === 0) continue;
    const prev = samples.get(stack);
    if (prev) {
      prev.count += count;
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

function foldedFrame(s: string): Frame {
  const m = /^(.*) \(([^()]*):(\d+)\)$/.exec(s);
  if (m) {
    const line = Number(m[3]);
    return { name: m[1]!, systemName: m[1]!.split('.').at(-1) ?? m[1]!, filename: m[2]!, startLine: 0, line };
  }
  return { name: s, systemName: s, filename: '', startLine: 0, line: 0 };
}

export interface Part {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

/**
 * multipart/form-data, read from a body already bounded by the size limit.
 * Just enough for Pyroscope clients: named parts with optional filenames.
 */
export function parseMultipart(body: Buffer, contentType: string): Part[] {
  const bm = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = bm?.[1] ?? bm?.[2];
  if (!boundary) throw new HttpError(400, 'malformed multipart body', 'no boundary in Content-Type');
  const delim = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delim);
  if (pos < 0) throw new HttpError(400, 'malformed multipart body', 'boundary not found');
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // "--": closing delimiter
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    else if (body[pos] === 0x0a) pos += 1;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new HttpError(400, 'malformed multipart body', 'part without header end');
    const headers = body.subarray(pos, headerEnd).toString('latin1');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headerEnd + 4);
    if (next < 0) throw new HttpError(400, 'malformed multipart body', 'unterminated part');
    const disp = /content-disposition:[^\r\n]*?\bname="([^"]*)"(?:[^\r\n]*?\bfilename="([^"]*)")?/i.exec(headers);
    const ct = /content-type:\s*([^\r\n]+)/i.exec(headers);
    parts.push({
      name: disp?.[1] ?? '',
      ...(disp?.[2] !== undefined ? { filename: disp[2] } : {}),
      ...(ct?.[1] ? { contentType: ct[1].trim() } : {}),
      data: body.subarray(headerEnd + 4, next),
    });
    pos = next + 2;
  }
  return parts;
}
