/**
 * Bytecode offset -> source line, for the three line-table formats CPython
 * has used since 3.9. The BPF walker records only (code object, instruction
 * position); the symbolizer decodes the code object's table once into a
 * LineIndex and asks it each position's line. Offsets are always in bytes here: callers convert 3.10's
 * code-unit f_lasti and 3.11+'s instruction pointers first.
 *
 * Each decoder follows what the interpreter itself does in PyCode_Addr2Line
 * for that version (Objects/codeobject.c), so a sampled line matches the
 * line a traceback would show at the same instruction. Tables come from the
 * profiled process, so none is trusted: decoding is one linear pass, never
 * reads past an entry, and stops at the first thing CPython would not write.
 */

import type { LineTableFormat } from './layout.js';

/** A run of bytecode [start, end) that executes one line; line 0 = no line. */
export interface LineRange {
  start: number;
  end: number;
  line: number;
}

/**
 * A code object's line table decoded once: the start and line of each range,
 * searched in O(log n) per offset. Decoding is one pass over the table, and a
 * table that is malformed (as a hostile or torn one may be) ends where it
 * stops making sense: offsets past that have line 0, never a guess.
 */
export class LineIndex {
  constructor(
    private readonly starts: Uint32Array,
    private readonly lines: Int32Array,
    /** offsets at or past this have no line (the table ends, or stops being readable) */
    readonly end: number,
    readonly firstLineNo: number,
  ) {}

  /** Ranges held, for callers that want them all. */
  get size(): number {
    return this.starts.length;
  }

  line(byteOffset: number): number {
    // A frame that has not executed its first instruction yet reports the def
    // line, as CPython does for a negative f_lasti.
    if (byteOffset < 0) return this.firstLineNo;
    if (byteOffset >= this.end) return 0;
    // the last range starting at or before the offset
    let lo = 0;
    let hi = this.starts.length - 1;
    if (hi < 0 || this.starts[0]! > byteOffset) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= byteOffset) lo = mid;
      else hi = mid - 1;
    }
    return this.lines[lo]!;
  }

  /** The ranges, in order (3.10+ tables; an lnotab's last range has no end). */
  ranges(): LineRange[] {
    return Array.from(this.starts, (start, i) => ({ start, end: this.starts[i + 1] ?? this.end, line: this.lines[i]! }));
  }
}

/**
 * Decodes `table` (of `format`) into a LineIndex, in time linear in its length.
 * `complete` false: `table` is only the start of the code object's table (as
 * much as the kernel copied). Lines of offsets the start covers are exact; the
 * others are 0.
 */
export function lineIndex(format: LineTableFormat, table: Uint8Array, firstLineNo: number, complete = true): LineIndex {
  if (format === 'lnotab') return lnotabIndex(complete ? table : wholePairs(table), firstLineNo, complete);
  const whole = complete ? table : format === 'linetable310' ? wholePairs(table) : wholeEntries(table);
  // every range takes at least one byte of the table
  const out = new RangeBuilder(format === 'linetable310' ? whole.length >> 1 : whole.length);
  const end = format === 'linetable310' ? linetable310(whole, firstLineNo, out) : locations311(whole, firstLineNo, out);
  return out.finish(end, firstLineNo);
}

/** The line of one offset; decodes the whole table (callers naming many offsets keep a lineIndex). */
export function lineForOffset(format: LineTableFormat, table: Uint8Array, firstLineNo: number, byteOffset: number, complete = true): number {
  return lineIndex(format, table, firstLineNo, complete).line(byteOffset);
}

/**
 * The address ranges a 3.10+ table describes, in order. Zero-length ranges
 * are dropped: CPython uses them only to carry large line deltas. Not defined
 * for 'lnotab', whose table does not know where the code ends.
 */
export function lineRanges(format: Exclude<LineTableFormat, 'lnotab'>, table: Uint8Array, firstLineNo: number): LineRange[] {
  return lineIndex(format, table, firstLineNo).ranges();
}

/** Collects ranges in order; a range starting where the last one did replaces it (that one was empty). */
class RangeBuilder {
  private readonly starts: Uint32Array;
  private readonly lines: Int32Array;
  private n = 0;

  constructor(most: number) {
    this.starts = new Uint32Array(most + 1);
    this.lines = new Int32Array(most + 1);
  }

  add(start: number, line: number): void {
    if (this.n > 0 && this.starts[this.n - 1] === start) this.n--;
    this.starts[this.n] = start;
    this.lines[this.n] = line;
    this.n++;
  }

  finish(end: number, firstLineNo: number): LineIndex {
    return new LineIndex(this.starts.slice(0, this.n), this.lines.slice(0, this.n), end, firstLineNo);
  }
}

/** Lines are C ints in CPython: a running line outside them means the table is not a real one. */
const MAX_LINE = 2 ** 31 - 1;
const MIN_LINE = -(2 ** 31);
function sane(line: number): boolean {
  return line >= MIN_LINE && line <= MAX_LINE;
}

/** The pairs of a cut table that are whole: an odd last byte is half a pair. */
function wholePairs(table: Uint8Array): Uint8Array {
  return table.subarray(0, table.length & ~1);
}

/** The entries of a cut 3.11+ table that are whole: each but the last is ended by the next one's head. */
function wholeEntries(table: Uint8Array): Uint8Array {
  let last = table.length - 1;
  while (last >= 0 && (table[last]! & 0x80) === 0) last--;
  return table.subarray(0, Math.max(0, last));
}

/**
 * 3.9 co_lnotab: (unsigned byte-offset delta, int8 line delta) pairs. A pair
 * applies its line delta once the address reaches its start, so the line of an
 * offset is the sum of the deltas of every pair that starts at or before it.
 * There is no end marker and no "no line": past the last pair the last line
 * stays in force, exactly as 3.9's PyCode_Addr2Line answers. In a cut table
 * that is known only once a pair starting past the offset is seen.
 */
function lnotabIndex(table: Uint8Array, firstLineNo: number, complete: boolean): LineIndex {
  const out = new RangeBuilder(table.length >> 1);
  let line = firstLineNo;
  let addr = 0;
  out.add(0, line);
  for (let i = 0; i + 1 < table.length; i += 2) {
    const next = addr + table[i]!;
    line += int8(table[i + 1]!);
    if (!sane(line)) return out.finish(next, firstLineNo);
    addr = next;
    out.add(addr, line);
  }
  return out.finish(complete ? Infinity : addr, firstLineNo);
}

/**
 * 3.10 co_linetable (PEP 626): (unsigned length in bytes, int8 line delta)
 * pairs; -128 marks a range with no line and leaves the running line alone.
 * Returns where the ranges end.
 */
function linetable310(table: Uint8Array, firstLineNo: number, out: RangeBuilder): number {
  let line = firstLineNo;
  let addr = 0;
  for (let i = 0; i + 1 < table.length; i += 2) {
    const length = table[i]!;
    const delta = int8(table[i + 1]!);
    if (delta !== -128) line += delta;
    if (!sane(line)) return addr;
    if (length > 0) out.add(addr, delta === -128 ? 0 : line);
    addr += length;
  }
  return addr;
}

const CODE_UNIT = 2;
const LOC_NO_COLUMNS = 13;
const LOC_LONG = 14;
const LOC_NONE = 15;

/**
 * 3.11+ location table (Objects/locations.md). Only the start line matters
 * here, so entries are skipped to the next byte with bit 7 set the way
 * CPython's own advance() does, rather than parsing every column field.
 * Returns where the ranges end: the end of the code, or of the last entry
 * that made sense.
 */
function locations311(table: Uint8Array, firstLineNo: number, out: RangeBuilder): number {
  let line = firstLineNo;
  let addr = 0;
  let i = 0;
  while (i < table.length) {
    const head = table[i]!;
    // A byte without bit 7 where an entry should start means the table is
    // corrupt (or was read torn from a live process); stop rather than guess.
    if ((head & 0x80) === 0) return addr;
    const code = (head >> 3) & 0x0f;
    const length = ((head & 0x07) + 1) * CODE_UNIT;
    if (code === LOC_NO_COLUMNS || code === LOC_LONG) {
      const delta = readSvarint(table, i + 1);
      if (delta === undefined) return addr;
      line += delta;
    } else if (code >= 10 && code <= 12) {
      line += code - 10;
    }
    if (!sane(line)) return addr;
    out.add(addr, code === LOC_NONE ? 0 : line);
    addr += length;
    i++;
    while (i < table.length && (table[i]! & 0x80) === 0) i++;
  }
  return addr;
}

/** A line delta is a C int: its varint has at most six 6-bit chunks. */
const MAX_VARINT_CHUNKS = 6;

/**
 * Unsigned varint: 6-bit chunks, least significant first, bit 6 = more
 * follow. Every byte of it is inside its entry (bit 7 clear): one that runs
 * into the next entry's head, past the table, or past six chunks is not a
 * varint CPython wrote, and gives undefined. So reading one never looks
 * further than its own entry, and decoding stays linear.
 */
function readVarint(table: Uint8Array, at: number): number | undefined {
  let value = 0;
  for (let chunk = 0; chunk < MAX_VARINT_CHUNKS; chunk++) {
    const b = table[at + chunk];
    if (b === undefined || (b & 0x80) !== 0) return undefined;
    value += (b & 0x3f) * 2 ** (6 * chunk);
    if ((b & 0x40) === 0) return value;
  }
  return undefined;
}

/** Signed varint: the low bit of the unsigned value is the sign. */
function readSvarint(table: Uint8Array, at: number): number | undefined {
  const u = readVarint(table, at);
  if (u === undefined) return undefined;
  const magnitude = Math.floor(u / 2);
  return u % 2 === 1 ? -magnitude : magnitude;
}

function int8(b: number): number {
  return b >= 0x80 ? b - 0x100 : b;
}
