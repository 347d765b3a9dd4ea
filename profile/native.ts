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
 * Content-Type: application/vnd.kiln.stacks (gzipped or not). A push that
 * counts a stack the receiver does not know (it lost its store, or another
 * replica got the definition) is refused with 409: NativeEncoder.expand()
 * adds the definitions to the body, and decodeNative() turns a body back
 * into a Profile (for a receiver that takes pprof only).
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
  // Most fields (label values, names) have nothing to escape: a scan is cheaper than a replace.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92 || c === 9 || c === 10 || c === 13 || c === 0) return s.replace(/[\\\t\n\r\0]/g, (x) => ESCAPES[x] ?? x);
  }
  return s;
}

const UNESCAPES: Record<string, string> = { t: '\t', n: '\n', r: '\r', '0': '\0', '\\': '\\' };

/** TabSeparated unescaping, one pass. */
export function unescapeField(s: string): string {
  if (!s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      const next = s[++i]!;
      out += UNESCAPES[next] ?? next;
    } else out += c;
  }
  return out;
}

/** A stack as encoded: its id and its frames' ids, kept per Frame[] the recorder hands out again each period. */
interface EncodedStack {
  stack: Id64;
  frames: FrameIds[];
  truncated: boolean;
}

interface FrameIds {
  fn: Id64;
  loc: Id64;
}

/** Entries past which the encoder's caches start over (a long-lived agent's memory stays bounded). */
const MAX_ENTRIES = 500_000;

/**
 * Encodes profiles for one receiver, remembering which dictionary entries it
 * sent today. If an upload is dropped or refused, call forget(): the next
 * profiles send everything again.
 *
 * A producer that hands out the same Frame[] for a stack period after period
 * (the recorder does, per process) pays for a known stack with one lookup.
 * The encoder also keeps every definition it wrote, so expand() can make an
 * earlier body whole again for a receiver that lost them.
 */
export class NativeEncoder {
  private day = -1;
  private sentFunctions = new Set<string>();
  private sentLocations = new Set<string>();
  private sentStacks = new Set<string>();
  /** Frame content -> its ids, across profiles. */
  private frames = new Map<string, FrameIds>();
  private stacks = new WeakMap<Frame[], EncodedStack>();
  /** "F<id>", "L<id>", "S<id>" -> the record that defines it. */
  private definitions = new Map<string, string>();

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
    if (this.frames.size > MAX_ENTRIES || this.definitions.size > MAX_ENTRIES) {
      this.frames = new Map();
      this.stacks = new WeakMap();
      this.definitions = new Map();
    }
    const dict: string[] = [];
    const labelSets = new Map<string, number>();
    const xs: string[] = [];
    const counts = new Map<string, number>();
    let truncated = 0;
    for (const sample of profile.samples) {
      if (!(sample.count > 0)) continue;
      const s = this.stackOf(sample.frames);
      if (s.truncated) truncated++;
      if (!this.sentStacks.has(s.stack.dec)) {
        for (const f of s.frames) this.define(f, dict);
        this.sentStacks.add(s.stack.dec);
        dict.push(this.definitions.get(`S${s.stack.dec}`)!);
      }
      const labelKey = labelText(sample.labels);
      let set = labelSets.get(labelKey);
      if (set === undefined) {
        set = labelSets.size;
        labelSets.set(labelKey, set);
        xs.push(labelKey ? `X\t${set}\t${labelKey}` : `X\t${set}`);
      }
      const key = `${s.stack.dec}\t${set}`;
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

  /**
   * `body` (which this encoder wrote) with the definitions of every stack it
   * counts but does not define, and of their locations and functions, for a
   * receiver that does not know them. Undefined if the encoder no longer
   * has one of them (it was restarted, or its caches started over).
   */
  expand(body: string): string | undefined {
    const lines = body.split('\n');
    const inBody = new Map<string, string>();
    for (const l of lines) if (l[0] === 'F' || l[0] === 'L' || l[0] === 'S') inBody.set(`${l[0]}${l.slice(2, l.indexOf('\t', 2))}`, l);
    const add: string[] = [];
    const def = (key: string): string | undefined => {
      let d = inBody.get(key);
      if (d === undefined) {
        d = this.definitions.get(key);
        if (d === undefined) return undefined;
        inBody.set(key, d);
        add.push(d);
      }
      return d;
    };
    const done = new Set<string>();
    for (const l of lines) {
      if (l[0] !== 'C') continue;
      const stack = l.slice(2, l.indexOf('\t', 2));
      if (done.has(stack)) continue;
      done.add(stack);
      const s = def(`S${stack}`);
      if (s === undefined) return undefined;
      for (const loc of s.split('\t')[2]!.split(',')) {
        const l2 = def(`L${loc}`);
        if (l2 === undefined || def(`F${l2.split('\t')[2]}`) === undefined) return undefined;
      }
    }
    if (add.length === 0) return body;
    // Definitions first (functions, locations, stacks), right after the P record.
    const order = (d: string): number => 'FLS'.indexOf(d[0]!);
    add.sort((a, b) => order(a) - order(b));
    return [lines[0], lines[1], ...add, ...lines.slice(2)].join('\n');
  }

  /** The frames of a sample as sent: cut at the depth limit, or a marker for none; ids computed once per Frame[]. */
  private stackOf(frames0: Frame[]): EncodedStack {
    const known = this.stacks.get(frames0);
    if (known) return known;
    let frames = frames0;
    const truncated = frames.length > MAX_DEPTH;
    if (truncated) frames = [syntheticFrame(SYNTHETIC.truncated), ...frames.slice(frames.length - (MAX_DEPTH - 1))];
    if (frames.length === 0) frames = [syntheticFrame(SYNTHETIC.noPython)];
    const ids = frames.map((f) => this.frameIds(f));
    const stack = stackIdOf(ids.map((x) => x.loc));
    this.definitions.set(`S${stack.dec}`, `S\t${stack.dec}\t${ids.map((x) => x.loc.dec).join(',')}`);
    const out = { stack, frames: ids, truncated };
    this.stacks.set(frames0, out);
    return out;
  }

  private define(f: FrameIds, dict: string[]): void {
    if (this.sentLocations.has(f.loc.dec)) return;
    this.sentLocations.add(f.loc.dec);
    if (!this.sentFunctions.has(f.fn.dec)) {
      this.sentFunctions.add(f.fn.dec);
      dict.push(this.definitions.get(`F${f.fn.dec}`)!);
    }
    dict.push(this.definitions.get(`L${f.loc.dec}`)!);
  }

  private frameIds(f: Frame): FrameIds {
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
      this.definitions.set(`F${fn.dec}`, `F\t${fn.dec}\t${escapeField(name)}\t${escapeField(systemName)}\t${escapeField(filename)}\t${startLine}`);
      this.definitions.set(`L${ids.loc.dec}`, `L\t${ids.loc.dec}\t${fn.dec}\t${line}`);
    }
    return ids;
  }
}

/** A sample's labels as an X record's fields. */
function labelText(labels: Record<string, string>): string {
  let out = '';
  for (const k in labels) out += `${out ? '\t' : ''}${escapeField(k)}\t${escapeField(labels[k]!)}`;
  return out;
}

/**
 * A whole body (one that defines every stack it counts, as expand() makes
 * it) back into a Profile: what a producer falls back to for a receiver that
 * takes pprof only. Records may come in any order. Throws on a record it
 * cannot read or an id it lacks.
 */
export function decodeNative(body: string): Profile {
  const lines = body.split('\n');
  if (lines[0] !== NATIVE_MAGIC) throw new Error('not a native profile');
  const records = new Map<string, string[]>();
  const counts: string[][] = [];
  const sets: Record<string, string>[] = [];
  const p: Profile = { samples: [], periodNs: 0, startNs: 0n, durationNs: 0 };
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const f = line.split('\t');
    switch (f[0]) {
      case 'P':
        p.periodNs = Number(f[1]);
        p.durationNs = Number(f[2]);
        p.startNs = BigInt(f[3] ?? '0');
        break;
      case 'F':
      case 'L':
      case 'S':
        records.set(`${f[0]}${f[1]}`, f);
        break;
      case 'X': {
        const labels: Record<string, string> = {};
        for (let i = 2; i + 1 < f.length; i += 2) labels[unescapeField(f[i]!)] = unescapeField(f[i + 1]!);
        sets[Number(f[1])] = labels;
        break;
      }
      case 'C':
        counts.push(f);
        break;
      default:
        throw new Error(`unknown record ${f[0]}`);
    }
  }
  const get = (key: string): string[] => {
    const r = records.get(key);
    if (!r) throw new Error(`${key[0]} ${key.slice(1)} is used but not defined`);
    return r;
  };
  const frames = new Map<string, Frame[]>();
  for (const c of counts) {
    let stack = frames.get(c[1]!);
    if (!stack) {
      stack = get(`S${c[1]}`)[2]!.split(',').map((id) => {
        const l = get(`L${id}`);
        const fn = get(`F${l[2]}`);
        return { name: unescapeField(fn[2]!), systemName: unescapeField(fn[3]!), filename: unescapeField(fn[4]!), startLine: Number(fn[5]), line: Number(l[3]) };
      });
      frames.set(c[1]!, stack);
    }
    p.samples.push({ frames: stack, labels: sets[Number(c[2])] ?? {}, count: Number(c[3]) });
  }
  return p;
}
