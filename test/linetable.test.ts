import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { LineTableFormat } from '../unwinder/layout.js';
import { lineForOffset, lineIndex, lineRanges } from '../unwinder/linetable.js';
import { OPTIONAL_VERSIONS, REQUIRED_VERSIONS, pythonFor, stageWorkload } from '../kit/pythons.js';

/**
 * Every line table here comes from a real interpreter: the workload compiles
 * code shapes and stdlib modules and reports, for each code object, its raw
 * table and the line CPython itself gives every instruction offset.
 */

const SCRIPT = fileURLToPath(new URL('./workloads/dump_linetables.py', import.meta.url));

interface DumpedCode {
  name: string;
  filename: string;
  firstlineno: number;
  table: string;
  code_bytes: number;
  lines: number[];
  addr2line: number[] | null;
}

interface Dump {
  version: [number, number, number];
  code_objects: DumpedCode[];
}

function formatFor(minor: number): LineTableFormat {
  if (minor <= 9) return 'lnotab';
  if (minor === 10) return 'linetable310';
  return 'locations311';
}

/**
 * Which corners of the format the dumped tables reach, so a workload change
 * that stops exercising one shows up as a failure rather than as less coverage.
 */
function tableFeatures(format: LineTableFormat, table: Uint8Array): Set<string> {
  const seen = new Set<string>();
  if (format === 'locations311') {
    for (let i = 0; i < table.length; i++) {
      const b = table[i]!;
      if ((b & 0x80) === 0) continue;
      const code = (b >> 3) & 0x0f;
      if (code <= 9) seen.add('short');
      else if (code <= 12) seen.add('one-line');
      else if (code === 13) seen.add('no-columns');
      else if (code === 14) seen.add('long');
      else seen.add('none');
      if ((code === 13 || code === 14) && (table[i + 1]! & 0x40) !== 0) {
        seen.add((table[i + 2]! & 0x40) !== 0 ? 'line-delta-3-chunks' : 'line-delta-2-chunks');
      }
      if (code === 14 && (table[i + 1]! & 0x01) === 1) seen.add('negative-line-delta');
    }
    return seen;
  }
  for (let i = 0; i + 1 < table.length; i += 2) {
    const delta = table[i + 1]! >= 0x80 ? table[i + 1]! - 0x100 : table[i + 1]!;
    if (delta === -128 && format === 'linetable310') seen.add('no-line');
    else if (delta < 0) seen.add('negative-line-delta');
    if (table[i] === 0 && Math.abs(delta) === 127) seen.add('split-line-delta');
    if (table[i]! >= 254) seen.add('split-address-delta');
  }
  return seen;
}

const EXPECTED_FEATURES: Record<LineTableFormat, string[]> = {
  lnotab: ['negative-line-delta', 'split-line-delta', 'split-address-delta'],
  linetable310: ['no-line', 'negative-line-delta', 'split-line-delta', 'split-address-delta'],
  locations311: ['short', 'one-line', 'no-columns', 'long', 'none', 'negative-line-delta', 'line-delta-2-chunks', 'line-delta-3-chunks'],
};

function runDump(version: string): Dump {
  const py = pythonFor(version)!;
  const script = stageWorkload(py, SCRIPT);
  const [cmd, ...args] = py.command;
  const out = execFileSync(cmd!, [...args, script], { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' });
  return JSON.parse(out) as Dump;
}

function checkVersion(version: string): void {
  const dump = runDump(version);
  expect(`${dump.version[0]}.${dump.version[1]}`).toBe(version);
  const format = formatFor(dump.version[1]);
  const features = new Set<string>();
  const mismatches: string[] = [];
  let offsets = 0;
  let withNative = 0;
  let tornChecked = false;
  let cutOffsets = 0;
  let cutKnown = 0;

  for (const co of dump.code_objects) {
    const table = Uint8Array.from(Buffer.from(co.table, 'hex'));
    for (const f of tableFeatures(format, table)) features.add(f);
    expect(co.lines.length).toBe(co.code_bytes / 2);
    if (co.addr2line) withNative++;
    const index = lineIndex(format, table, co.firstlineno);
    for (let i = 0; i < co.lines.length; i++) {
      const got = index.line(2 * i);
      offsets++;
      const want = co.lines[i]!;
      const native = co.addr2line ? co.addr2line[i]! : want;
      if ((got !== want || got !== native) && mismatches.length < 20) {
        mismatches.push(`${co.filename}:${co.name} offset ${2 * i}: decoded ${got}, co_lines ${want}, PyCode_Addr2Line ${native}`);
      }
    }
    // A frame that has not started yet is at its def line.
    expect(lineForOffset(format, table, co.firstlineno, -2)).toBe(co.firstlineno);
    // The start of a table (as much as the kernel copied of a long one): each
    // offset's line is the right one or 0 (unknown), never another line.
    for (const cut of [table.length >> 1, table.length - 1]) {
      if (cut < 2) continue;
      const start = lineIndex(format, table.subarray(0, cut), co.firstlineno, false);
      for (let i = 0; i < co.lines.length; i++) {
        const got = start.line(2 * i);
        cutOffsets++;
        if (got !== 0) cutKnown++;
        if (got !== 0 && got !== co.lines[i] && mismatches.length < 20)
          mismatches.push(`${co.filename}:${co.name} offset ${2 * i}, table cut at ${cut} of ${table.length}: decoded ${got}, co_lines ${co.lines[i]}`);
      }
    }
    if (format !== 'lnotab') {
      // 3.10+ tables cover exactly the bytecode: nothing is past the end.
      expect(lineForOffset(format, table, co.firstlineno, co.code_bytes)).toBe(0);
      const ranges = lineRanges(format, table, co.firstlineno);
      expect(ranges.at(-1)?.end ?? 0).toBe(co.code_bytes);
    }
    if (format === 'locations311' && !tornChecked) {
      // A table read mid-entry (torn or misaligned) must yield no line rather
      // than a plausible wrong one: start it at a byte that is not an entry head.
      const at = table.findIndex((b, i) => i > 0 && (b & 0x80) === 0);
      if (at > 0) {
        expect(lineForOffset(format, table.subarray(at), co.firstlineno, 0)).toBe(0);
        tornChecked = true;
      }
    }
  }

  expect(mismatches).toEqual([]);
  // cut tables still name most lines (half the table, or all but its last byte)
  expect(cutKnown / cutOffsets).toBeGreaterThan(0.5);
  if (format === 'locations311') expect(tornChecked).toBe(true);
  expect([...EXPECTED_FEATURES[format]].filter((f) => !features.has(f))).toEqual([]);
  // Both shapes and stdlib modules made it into the dump.
  expect(dump.code_objects.some((c) => c.name === 'very_late' && c.firstlineno > 100_000)).toBe(true);
  expect(dump.code_objects.length).toBeGreaterThan(300);
  console.log(
    `linetable ${dump.version.join('.')} (${format}): ${dump.code_objects.length} code objects, ` +
      `${offsets} offsets checked against co_lines (and ${cutOffsets} in cut tables, ${((100 * cutKnown) / cutOffsets).toFixed(0)}% still known)` +
      `${withNative === dump.code_objects.length ? ' and PyCode_Addr2Line' : ` (PyCode_Addr2Line for ${withNative})`}; ` +
      `table features: ${[...features].sort().join(', ')}`,
  );
}

describe('lineForOffset against real interpreters', () => {
  for (const version of REQUIRED_VERSIONS) {
    it(`decodes every offset the same as CPython ${version}`, () => {
      const py = pythonFor(version);
      if (!py) {
        throw new Error(`Python ${version} is required and missing: run test/setup-pythons.sh`);
      }
      checkVersion(version);
    });
  }
  for (const version of OPTIONAL_VERSIONS) {
    // optional versions are tested where an interpreter exists (pyenv or KILN_PYTHON_3_X), and said so where not
    if (pythonFor(version)) it(`decodes every offset the same as CPython ${version}`, () => checkVersion(version));
    else console.log(`linetable: no Python ${version} here (set KILN_PYTHON_${version.replace('.', '_')}=/path/to/python${version} to check it)`);
  }
});

describe('lineForOffset edge cases', () => {
  it('gives no line for an empty 3.10+ table and the first line for an empty lnotab', () => {
    const empty = new Uint8Array(0);
    expect(lineForOffset('locations311', empty, 7, 0)).toBe(0);
    expect(lineForOffset('linetable310', empty, 7, 0)).toBe(0);
    expect(lineForOffset('lnotab', empty, 7, 0)).toBe(7);
  });

});
