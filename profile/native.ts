/**
 * Kiln's native upload form: a profile as the ids of its stacks and their
 * counts, plus only the dictionary entries (functions, locations, stacks) the
 * sender has not sent today. The sender computes the ids (profile/ids.ts),
 * so ingest does not decode pprof and hash every frame of every profile:
 * a fleet agent sends the same stacks every period, and its own process is
 * where that work is cheapest to spread. Ingest recomputes the id of every
 * dictionary entry it is sent and refuses a mismatch, so a sender can only
 * ever misfile its own samples. pprof stays the format for every other
 * producer.
 *
 * Text, one record per line, fields tab-separated, strings escaped as
 * ClickHouse's TabSeparated (\t \n \\ \0 \r):
 *
 *   kiln-stacks 1
 *   P <period ns> <duration ns> <start, Unix ns> <stacks cut at the depth limit>
 *   F <function id> <name> <system name> <file> <start line>
 *   L <location id> <function id> <line>
 *   S <stack id> <location ids, leaf first, comma-separated>
 *   X <label set number> <name> <value> <name> <value> ...
 *   C <stack id> <label set number> <count>
 *
 * Ids are decimal UInt64. POST it to /api/v1/profiles with
 * Content-Type: application/vnd.kiln.stacks (gzipped or not).
 */

import { functionIdOf, locationIdOf, stackIdOf } from './ids.js';
import type { Id64 } from './hash.js';
import { SYNTHETIC, syntheticFrame, type Frame, type Profile } from './profile.js';

export const NATIVE_CONTENT_TYPE = 'application/vnd.kiln.stacks';
export const NATIVE_MAGIC = 'kiln-stacks 1';

/** What ingest allows (ingest/limits.ts defaults), applied the same way by the sender. */
const MAX_DEPTH = 1_000;
const MAX_SYMBOL = 65_535;

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };
export function escapeField(s: string): string {
  return s.replace(/[\\\t\n\r\0]/g, (c) => ESCAPES[c] ?? c);
}

/**
 * Encodes profiles for one receiver, remembering which dictionary entries it
 * sent today. If an upload is dropped or refused, call forget(): the next
 * profiles send everything again.
 */
export class NativeEncoder {
  private day = -1;
  private sentFunctions = new Set<string>();
  private sentLocations = new Set<string>();
  private sentStacks = new Set<string>();
  /** Frame content -> its ids, across profiles. */
  private frames = new Map<string, { fn: Id64; loc: Id64 }>();

  forget(): void {
    this.sentFunctions = new Set();
    this.sentLocations = new Set();
    this.sentStacks = new Set();
  }

  encode(profile: Profile, now = Date.now()): string {
    const day = Math.floor(now / 86_400_000);
    if (day !== this.day) {
      // Dictionary rows are refreshed once a day (their last_seen keeps them from expiring).
      this.day = day;
      this.forget();
    }
    if (this.frames.size > 500_000) this.frames = new Map();
    const dict: string[] = [];
    const labelSets = new Map<string, number>();
    const xs: string[] = [];
    const counts = new Map<string, number>();
    let truncated = 0;
    for (const sample of profile.samples) {
      if (!(sample.count > 0)) continue;
      let frames = sample.frames;
      if (frames.length > MAX_DEPTH) {
        frames = [syntheticFrame(SYNTHETIC.truncated), ...frames.slice(frames.length - (MAX_DEPTH - 1))];
        truncated++;
      }
      if (frames.length === 0) frames = [syntheticFrame(SYNTHETIC.noPython)];
      const locs = frames.map((f) => this.frameIds(f, dict));
      const stack = stackIdOf(locs.map((l) => l.loc));
      if (!this.sentStacks.has(stack.dec)) {
        this.sentStacks.add(stack.dec);
        dict.push(`S\t${stack.dec}\t${locs.map((l) => l.loc.dec).join(',')}`);
      }
      const labelKey = Object.entries(sample.labels)
        .map(([k, v]) => `${escapeField(k)}\t${escapeField(v)}`)
        .join('\t');
      let set = labelSets.get(labelKey);
      if (set === undefined) {
        set = labelSets.size;
        labelSets.set(labelKey, set);
        xs.push(labelKey ? `X\t${set}\t${labelKey}` : `X\t${set}`);
      }
      const key = `${stack.dec}\t${set}`;
      counts.set(key, (counts.get(key) ?? 0) + sample.count);
    }
    const lines = [
      NATIVE_MAGIC,
      `P\t${Math.round(profile.periodNs)}\t${Math.round(profile.durationNs)}\t${profile.startNs}\t${truncated}`,
      ...dict,
      ...xs,
      ...[...counts].map(([k, n]) => `C\t${k}\t${n}`),
    ];
    return lines.join('\n') + '\n';
  }

  private frameIds(f: Frame, dict: string[]): { fn: Id64; loc: Id64 } {
    // As ingest reads pprof: no name -> the system name -> "[unknown]".
    const name = (f.name || f.systemName || '[unknown]').slice(0, MAX_SYMBOL);
    const systemName = (f.systemName || f.name || '[unknown]').slice(0, MAX_SYMBOL);
    const filename = f.filename.slice(0, MAX_SYMBOL);
    const startLine = f.startLine >>> 0;
    const line = f.line >>> 0;
    const key = `${name}\0${systemName}\0${filename}\0${startLine}\0${line}`;
    let ids = this.frames.get(key);
    if (!ids) {
      const fn = functionIdOf({ name, systemName, filename, startLine });
      ids = { fn, loc: locationIdOf(fn, line) };
      this.frames.set(key, ids);
    }
    if (!this.sentLocations.has(ids.loc.dec)) {
      this.sentLocations.add(ids.loc.dec);
      if (!this.sentFunctions.has(ids.fn.dec)) {
        this.sentFunctions.add(ids.fn.dec);
        dict.push(`F\t${ids.fn.dec}\t${escapeField(name)}\t${escapeField(systemName)}\t${escapeField(filename)}\t${startLine}`);
      }
      dict.push(`L\t${ids.loc.dec}\t${ids.fn.dec}\t${line}`);
    }
    return ids;
  }
}
