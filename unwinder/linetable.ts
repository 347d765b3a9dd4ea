/**
 * Bytecode offset -> source line, for the three line-table formats CPython
 * has used since 3.9. The BPF walker records only (code object, instruction
 * position); the symbolizer reads the code object's table and calls
 * lineForOffset. Offsets are always in bytes here: callers convert 3.10's
 * code-unit f_lasti and 3.11+'s instruction pointers first.
 *
 * Each decoder follows what the interpreter itself does in PyCode_Addr2Line
 * for that version (Objects/codeobject.c), so a sampled line matches the
 * line a traceback would show at the same instruction.
 */

import type { LineTableFormat } from './layout.js';

/** A run of bytecode [start, end) that executes one line; line 0 = no line. */
export interface LineRange {
  start: number;
  end: number;
  line: number;
}

/**
 * `complete` false: `table` is only the start of the code object's table (as
 * much as the kernel copied). Lines of offsets the start covers are exact; the
 * others are 0, never a guess.
 */
export function lineForOffset(
  format: LineTableFormat,
  table: Uint8Array,
  firstLineNo: number,
  byteOffset: number,
  complete = true,
): number {
  // A frame that has not executed its first instruction yet reports the def
  // line, as CPython does for a negative f_lasti.
  if (byteOffset < 0) return firstLineNo;
  if (format === 'lnotab') return lnotabLine(complete ? table : wholePairs(table), firstLineNo, byteOffset, complete);
  let found = 0;
  const whole = complete ? table : format === 'linetable310' ? wholePairs(table) : wholeEntries(table);
  forEachRange(format, whole, firstLineNo, (start, end, line) => {
    if (byteOffset >= end) return false;
    if (byteOffset >= start) found = line;
    return true;
  });
  return found;
}

/**
 * The address ranges a 3.10+ table describes, in order, for callers that
 * want to cache a whole code object's mapping. Zero-length ranges are
 * dropped: CPython uses them only to carry large line deltas. Not defined for
 * 'lnotab', whose table does not know where the code ends.
 */
export function lineRanges(
  format: Exclude<LineTableFormat, 'lnotab'>,
  table: Uint8Array,
  firstLineNo: number,
): LineRange[] {
  const out: LineRange[] = [];
  forEachRange(format, table, firstLineNo, (start, end, line) => {
    if (end > start) out.push({ start, end, line });
    return false;
  });
  return out;
}

/** Calls visit for each range in order until it returns true. */
type RangeVisitor = (start: number, end: number, line: number) => boolean;

function forEachRange(
  format: Exclude<LineTableFormat, 'lnotab'>,
  table: Uint8Array,
  firstLineNo: number,
  visit: RangeVisitor,
): void {
  if (format === 'linetable310') linetable310(table, firstLineNo, visit);
  else locations311(table, firstLineNo, visit);
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
function lnotabLine(table: Uint8Array, firstLineNo: number, byteOffset: number, complete: boolean): number {
  let line = firstLineNo;
  let addr = 0;
  for (let i = 0; i + 1 < table.length; i += 2) {
    addr += table[i]!;
    if (addr > byteOffset) return line;
    line += int8(table[i + 1]!);
  }
  return complete ? line : 0;
}

/**
 * 3.10 co_linetable (PEP 626): (unsigned length in bytes, int8 line delta)
 * pairs; -128 marks a range with no line and leaves the running line alone.
 */
function linetable310(table: Uint8Array, firstLineNo: number, visit: RangeVisitor): void {
  let line = firstLineNo;
  let addr = 0;
  for (let i = 0; i + 1 < table.length; i += 2) {
    const length = table[i]!;
    const delta = int8(table[i + 1]!);
    let rangeLine = 0;
    if (delta !== -128) {
      line += delta;
      rangeLine = line;
    }
    if (visit(addr, addr + length, rangeLine)) return;
    addr += length;
  }
}

const CODE_UNIT = 2;
const LOC_NO_COLUMNS = 13;
const LOC_LONG = 14;
const LOC_NONE = 15;

/**
 * 3.11+ location table (Objects/locations.md). Only the start line matters
 * here, so entries are skipped to the next byte with bit 7 set the way
 * CPython's own advance() does, rather than parsing every column field.
 */
function locations311(table: Uint8Array, firstLineNo: number, visit: RangeVisitor): void {
  let line = firstLineNo;
  let addr = 0;
  let i = 0;
  while (i < table.length) {
    const head = table[i]!;
    // A byte without bit 7 where an entry should start means the table is
    // corrupt (or was read torn from a live process); stop rather than guess.
    if ((head & 0x80) === 0) return;
    const code = (head >> 3) & 0x0f;
    const length = ((head & 0x07) + 1) * CODE_UNIT;
    if (code === LOC_NO_COLUMNS || code === LOC_LONG) {
      line += readSvarint(table, i + 1);
    } else if (code >= 10 && code <= 12) {
      line += code - 10;
    }
    if (visit(addr, addr + length, code === LOC_NONE ? 0 : line)) return;
    addr += length;
    i++;
    while (i < table.length && (table[i]! & 0x80) === 0) i++;
  }
}

/** Unsigned varint: 6-bit chunks, least significant first, bit 6 = more follow. */
function readVarint(table: Uint8Array, at: number): number {
  let value = 0;
  let shift = 0;
  for (let i = at; i < table.length; i++) {
    const b = table[i]!;
    // Multiplication, not <<, so a long (bogus) chain cannot wrap to negative.
    value += (b & 0x3f) * 2 ** shift;
    if ((b & 0x40) === 0) break;
    shift += 6;
  }
  return value;
}

/** Signed varint: the low bit of the unsigned value is the sign. */
function readSvarint(table: Uint8Array, at: number): number {
  const u = readVarint(table, at);
  const magnitude = Math.floor(u / 2);
  return u % 2 === 1 ? -magnitude : magnitude;
}

function int8(b: number): number {
  return b >= 0x80 ? b - 0x100 : b;
}
