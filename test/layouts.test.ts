import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { debugOffsetsFields, debugOffsetsFormat, readDebugOffsets } from '../unwinder/debug-offsets.js';
import { ElfFile, elfLoadBias, readElfSymbols } from '../unwinder/elf.js';
import type { PyLayout, PythonVersion } from '../unwinder/layout.js';
import { tableLayout } from '../unwinder/layouts/index.js';
import { ProcessMemory } from '../unwinder/memory.js';
import { OPTIONAL_VERSIONS, REQUIRED_VERSIONS, headerFlags, pythonsFor, type PythonInterpreter } from '../kit/pythons.js';

/**
 * Every PyLayout Kiln uses is checked against the interpreter it describes:
 * a C program compiled against that interpreter's own headers prints
 * offsetof() of each field, and a live process of it is walked with the
 * layout (thread state, frames, code objects, strings) to prove the values
 * are the ones that matter at run time. 3.9-3.12 layouts come from the
 * tables; 3.13+ from the process's _Py_DebugOffsets.
 */

/** A field's expected value: a C expression for gcc to evaluate, or a constant for fields that are not offsets. */
type Want = { c: string } | { is: number | boolean | string | null };

const c = (expr: string): Want => ({ c: expr });
const is = (value: number | boolean | string | null): Want => ({ is: value });
const off = (type: string, field: string): Want => c(`offsetof(${type}, ${field})`);

/** What each PyLayout field is in the headers of 3.<minor>. */
function wanted(minor: number): Record<string, Want> {
  const frameObject = minor <= 10; // PyFrameObject era
  const F = frameObject ? 'PyFrameObject' : '_PyInterpreterFrame';
  const w: Record<string, Want> = {
    'object.refcnt': off('PyObject', 'ob_refcnt'),
    'object.type': off('PyObject', 'ob_type'),
    'runtime.interpretersHead': off('_PyRuntimeState', 'interpreters.head'),
    'interpreter.next': off('PyInterpreterState', 'next'),
    'interpreter.threadsHead': off('PyInterpreterState', minor <= 10 ? 'tstate_head' : 'threads.head'),
    'thread.next': off('PyThreadState', 'next'),
    // native_thread_id appeared in 3.11
    'thread.nativeThreadId': minor >= 11 ? off('PyThreadState', 'native_thread_id') : is(-1),
    'thread.threadId': off('PyThreadState', 'thread_id'),
    'thread.frame': off('PyThreadState', frameObject ? 'frame' : minor <= 12 ? 'cframe' : 'current_frame'),
    'thread.datastackChunk': frameObject ? is(-1) : off('PyThreadState', 'datastack_chunk'),
    'frame.back': off(F, frameObject ? 'f_back' : 'previous'),
    'frame.code': off(F, frameObject || minor <= 12 ? 'f_code' : 'f_executable'),
    'frame.lasti': off(F, frameObject ? 'f_lasti' : minor <= 12 ? 'prev_instr' : 'instr_ptr'),
    'frame.lastiIsPointer': is(!frameObject),
    'frame.lastiUnitBytes': is(minor <= 9 ? 1 : 2),
    'frame.owner': frameObject ? is(-1) : off(F, 'owner'),
    // 3.11 marks entry frames with is_entry and has no shim frames; 3.14 gives
    // its shim FRAME_OWNED_BY_INTERPRETER (see the walk below)
    'frame.ownerCStack': minor <= 11 ? is(null) : minor <= 13 ? c('FRAME_OWNED_BY_CSTACK') : c('FRAME_OWNED_BY_INTERPRETER'),
    'frame.codeTagMask': minor >= 14 ? c('Py_TAG_BITS') : is(0),
    'code.argcount': off('PyCodeObject', 'co_argcount'),
    'code.firstlineno': off('PyCodeObject', 'co_firstlineno'),
    'code.name': off('PyCodeObject', 'co_name'),
    'code.qualname': minor >= 11 ? off('PyCodeObject', 'co_qualname') : is(-1),
    'code.filename': off('PyCodeObject', 'co_filename'),
    'code.linetable': off('PyCodeObject', minor <= 9 ? 'co_lnotab' : 'co_linetable'),
    'code.lineTableFormat': is(minor <= 9 ? 'lnotab' : minor === 10 ? 'linetable310' : 'locations311'),
    'code.adaptive': minor >= 11 ? off('PyCodeObject', 'co_code_adaptive') : is(-1),
    'bytes.size': off('PyBytesObject', 'ob_base.ob_size'),
    'bytes.data': off('PyBytesObject', 'ob_sval'),
    'unicode.length': off('PyASCIIObject', 'length'),
    'unicode.state': off('PyASCIIObject', 'state'),
    'unicode.asciiData': c('sizeof(PyASCIIObject)'),
    'unicode.compactData': c('sizeof(PyCompactUnicodeObject)'),
  };
  if (frameObject) w['stackChunk'] = is(null);
  else {
    w['stackChunk.previous'] = off('_PyStackChunk', 'previous');
    w['stackChunk.size'] = off('_PyStackChunk', 'size');
    w['stackChunk.data'] = off('_PyStackChunk', 'data');
  }
  if (minor === 11 || minor === 12) w['cframe.currentFrame'] = off('_PyCFrame', 'current_frame');
  else w['cframe'] = is(null);
  return w;
}

function headersFor(minor: number): string[] {
  const h = ['internal/pycore_runtime.h', 'internal/pycore_interp.h'];
  if (minor <= 10) h.push('frameobject.h');
  else h.push('internal/pycore_frame.h');
  if (minor >= 14) h.push('internal/pycore_debug_offsets.h', 'internal/pycore_stackref.h');
  return h;
}

const tmp = mkdtempSync(join(tmpdir(), 'kiln-layouts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Compiles and runs a program printing "name value" for each C expression; returns the values. */
function evalC(py: PythonInterpreter, minor: number, exprs: Map<string, string>): Map<string, number> {
  const lines = [
    '#define Py_BUILD_CORE 1',
    '#include <Python.h>',
    ...headersFor(minor).map((h) => `#include <${h}>`),
    '#include <stddef.h>',
    '#include <stdio.h>',
    'int main(void) {',
    ...[...exprs].map(([name, expr]) => `  printf("%s %lld\\n", "${name}", (long long)(${expr}));`),
    '  return 0;',
    '}',
  ];
  const base = join(tmp, `off-${py.version}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(`${base}.c`, lines.join('\n'));
  execFileSync('gcc', [...headerFlags(py), '-o', base, `${base}.c`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const out = new Map<string, number>();
  for (const line of execFileSync(base, { encoding: 'utf8' }).trim().split('\n')) {
    const [name, value] = line.split(' ');
    out.set(name!, Number(value));
  }
  return out;
}

/** The layout as "path -> value", e.g. "frame.back" -> 24; a null group is one entry. */
function flatten(layout: PyLayout): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [group, fields] of Object.entries(layout)) {
    if (group === 'version' || group === 'source') continue;
    if (fields === null) out.set(group, null);
    else for (const [k, v] of Object.entries(fields as Record<string, unknown>)) out.set(`${group}.${k}`, v);
  }
  return out;
}

/** Field by field: the layout against what the headers say. */
function compareWithHeaders(py: PythonInterpreter, minor: number, layout: PyLayout): void {
  const want = wanted(minor);
  const exprs = new Map<string, string>();
  for (const [path, w] of Object.entries(want)) if ('c' in w) exprs.set(path, w.c);
  const values = evalC(py, minor, exprs);
  const have = flatten(layout);
  expect([...have.keys()].sort(), `${py.label}: fields the test checks vs fields of PyLayout`).toEqual(Object.keys(want).sort());
  for (const [path, w] of Object.entries(want)) {
    const expected = 'c' in w ? values.get(path) : w.is;
    expect(have.get(path), `${py.label}: ${path} (${'c' in w ? w.c : 'constant'})`).toBe(expected);
  }
}

// ---- live processes ----

/**
 * Runs f(1) through map(), a C function, so that 3.12+ pushes a second
 * entry (shim) frame between f and <module>. The function name has a
 * non-ASCII letter to read a compact non-ASCII string.
 */
const WORKLOAD = [
  'import time',
  'def wörk(x):',
  "    print('ready', flush=True)",
  '    time.sleep(120)',
  '    return x',
  'list(map(wörk, [1]))',
].join('\n');

async function startWorkload(py: PythonInterpreter): Promise<ChildProcess> {
  const child = spawn(py.command[0]!, [...py.command.slice(1), '-c', WORKLOAD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${py.label}: workload not ready after 20 s: ${err}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`${py.label}: workload exited with ${code}: ${err}`)));
  });
  return child;
}

interface Symbols {
  runtime: bigint;
  codeType: bigint;
  bytesType: bigint;
}

/**
 * Finds _PyRuntime, PyCode_Type and PyBytes_Type in the process: in the
 * python executable, or in libpython for --enable-shared builds. The file is
 * opened through /proc/PID/map_files, which names the mapped inode itself:
 * /proc/PID/maps gives a chrooted process's paths as the host sees them, so
 * /proc/PID/root/<path> would not find them.
 */
function findSymbols(pid: number): Symbols {
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ 0+ \S+ \d+\s+(\S*python\S*)$/.exec(line);
    if (!m) continue;
    const start = BigInt(`0x${m[1]}`);
    // map_files names drop the leading zeros that maps prints
    const file = `/proc/${pid}/map_files/${start.toString(16)}-${BigInt(`0x${m[2]}`).toString(16)}`;
    const elf = ElfFile.open(file);
    try {
      const syms = readElfSymbols(elf, ['_PyRuntime', 'PyCode_Type', 'PyBytes_Type']);
      const runtime = syms.get('_PyRuntime');
      const codeType = syms.get('PyCode_Type');
      const bytesType = syms.get('PyBytes_Type');
      if (runtime === undefined || codeType === undefined || bytesType === undefined) continue;
      const bias = elfLoadBias(start, elf);
      return { runtime: runtime + bias, codeType: codeType + bias, bytesType: bytesType + bias };
    } finally {
      elf.close();
    }
  }
  throw new Error(`pid ${pid}: no mapped python image defines _PyRuntime`);
}

interface WalkedFrame {
  name: string;
  qualname: string | null;
  filename: string;
  firstlineno: number;
  argcount: number;
}

/** Reads a compact str (ASCII or 1-byte kind), the only kinds the workload's names use. */
function readStr(mem: ProcessMemory, l: PyLayout, addr: bigint): string {
  const state = mem.u32(addr + BigInt(l.unicode.state));
  const kind = (state >> 2) & 7;
  const compact = (state >> 5) & 1;
  const ascii = (state >> 6) & 1;
  expect(compact, 'str is compact').toBe(1);
  expect(kind, 'str is 1 byte per character').toBe(1);
  const length = Number(mem.i64(addr + BigInt(l.unicode.length)));
  expect(length).toBeGreaterThan(0);
  expect(length).toBeLessThan(256);
  const data = addr + BigInt(ascii ? l.unicode.asciiData : l.unicode.compactData);
  return mem.read(data, length).toString('latin1');
}

/** Walks the main thread's stack as the BPF walker would, checking each step. */
function walk(mem: ProcessMemory, l: PyLayout, syms: Symbols, pid: number): { frames: WalkedFrame[]; shims: number } {
  const interp = mem.u64(syms.runtime + BigInt(l.runtime.interpretersHead));
  expect(interp, 'interpreters.head').not.toBe(0n);
  const tstate = mem.u64(interp + BigInt(l.interpreter.threadsHead));
  expect(tstate, 'threads head').not.toBe(0n);
  expect(mem.u64(tstate + BigInt(l.thread.next)), 'one thread only').toBe(0n);
  if (l.thread.nativeThreadId >= 0) expect(mem.u64(tstate + BigInt(l.thread.nativeThreadId)), 'native_thread_id').toBe(BigInt(pid));
  expect(mem.u64(tstate + BigInt(l.thread.threadId)), 'thread_id (pthread_t)').not.toBe(0n);

  let frame = mem.u64(tstate + BigInt(l.thread.frame));
  if (l.cframe) frame = mem.u64(frame + BigInt(l.cframe.currentFrame));
  const frames: WalkedFrame[] = [];
  let shims = 0;
  for (let depth = 0; frame !== 0n && depth < 64; depth++) {
    const code = mem.u64(frame + BigInt(l.frame.code)) & ~BigInt(l.frame.codeTagMask);
    const isCode = mem.u64(code + 8n) === syms.codeType; // ob_type
    const owner = l.frame.owner >= 0 ? mem.read(frame + BigInt(l.frame.owner), 1)[0]! : -1;
    if (l.frame.ownerCStack !== null && owner === l.frame.ownerCStack) {
      // 3.12's shim runs the interpreter's trampoline code object; 3.13+ put None there
      const what = isCode ? readStr(mem, l, mem.u64(code + BigInt(l.code.name))) : 'not a code object';
      expect(what, `frame ${depth} with owner ${owner} is a shim`).toBe(l.version.minor === 12 ? '<interpreter trampoline>' : 'not a code object');
      shims++;
    } else {
      expect(isCode, `frame ${depth} (owner ${owner}) holds a code object`).toBe(true);
      const at = (o: number): bigint => code + BigInt(o);
      frames.push({
        name: readStr(mem, l, mem.u64(at(l.code.name))),
        qualname: l.code.qualname >= 0 ? readStr(mem, l, mem.u64(at(l.code.qualname))) : null,
        filename: readStr(mem, l, mem.u64(at(l.code.filename))),
        firstlineno: mem.i32(at(l.code.firstlineno)),
        argcount: mem.i32(at(l.code.argcount)),
      });
      const table = mem.u64(at(l.code.linetable));
      expect(mem.u64(table + 8n), 'line table is a bytes object').toBe(syms.bytesType);
      const tableSize = Number(mem.i64(table + BigInt(l.bytes.size)));
      expect(tableSize).toBeGreaterThan(0);
      expect(tableSize).toBeLessThan(4096);
      mem.read(table + BigInt(l.bytes.data), tableSize);
      if (l.frame.lastiIsPointer) {
        const ip = mem.u64(frame + BigInt(l.frame.lasti));
        const first = code + BigInt(l.code.adaptive);
        expect(ip >= first && ip < first + 4096n, `frame ${depth}: instruction pointer inside co_code_adaptive`).toBe(true);
      } else {
        const lasti = mem.i32(frame + BigInt(l.frame.lasti));
        expect(lasti >= 0 && lasti < 4096, `frame ${depth}: f_lasti ${lasti}`).toBe(true);
      }
    }
    frame = mem.u64(frame + BigInt(l.frame.back));
  }
  expect(frame, 'stack ends within 64 frames').toBe(0n);
  return { frames, shims };
}

function exactVersion(py: PythonInterpreter): PythonVersion {
  const out = execFileSync(py.command[0]!, [...py.command.slice(1), '-c', 'import sys; print(*sys.version_info[:3])'], {
    encoding: 'utf8',
  });
  const [major, minor, patch] = out.trim().split(' ').map(Number) as [number, number, number];
  return { major, minor, patch };
}

async function checkInterpreter(py: PythonInterpreter): Promise<void> {
  const version = exactVersion(py);
  const minor = version.minor;
  const child = await startWorkload(py);
  const pid = child.pid!;
  const mem = new ProcessMemory(pid);
  try {
    const syms = findSymbols(pid);
    let layout: PyLayout;
    if (minor >= 13) {
      layout = readDebugOffsets(mem, syms.runtime, version);
      expect(layout.version, `${py.label}: version reported by _Py_DebugOffsets`).toEqual(version);
      const other = { ...version, minor: minor + 1 };
      expect(() => readDebugOffsets(mem, syms.runtime, other), 'a version mismatch is refused').toThrow(/expected 3\.\d+/);
      expect(() => readDebugOffsets(mem, syms.runtime + 8n, version), 'a bad cookie is refused').toThrow(/cookie/);
      checkDebugOffsetsFormat(py, version);
    } else {
      const table = tableLayout(version);
      expect(table, `${py.label}: a table for ${version.major}.${minor}`).toBeDefined();
      layout = table!;
    }
    compareWithHeaders(py, minor, layout);

    const { frames, shims } = walk(mem, layout, syms, pid);
    console.log(`${py.label}: Python ${version.major}.${minor}.${version.patch}, layout from ${layout.source}; stack ${frames.map((f) => f.name).join(' <- ')}, ${shims} shim frames`);
    expect(frames.map((f) => f.name), `${py.label}: function names, innermost first`).toEqual(['wörk', '<module>']);
    expect(frames[0], `${py.label}: code object of wörk`).toMatchObject({ filename: '<string>', firstlineno: 2, argcount: 1 });
    if (minor >= 11) expect(frames.map((f) => f.qualname)).toEqual(['wörk', '<module>']);
    // one entry frame per _PyEval_EvalFrameDefault: under <module> and under wörk
    expect(shims, `${py.label}: shim frames skipped`).toBe(minor >= 12 ? 2 : 0);
  } finally {
    mem.close();
    child.kill('SIGKILL');
  }
}

/** The shape Kiln assumes for _Py_DebugOffsets against the struct in the headers. */
function checkDebugOffsetsFormat(py: PythonInterpreter, version: PythonVersion): void {
  const format = debugOffsetsFormat(version);
  expect(format, `${py.label}: a _Py_DebugOffsets format`).toBeDefined();
  const { fields, size } = debugOffsetsFields(format!);
  const exprs = new Map<string, string>([['sizeof', 'sizeof(_Py_DebugOffsets)']]);
  for (const name of fields.keys()) exprs.set(name, `offsetof(_Py_DebugOffsets, ${name})`);
  const values = evalC(py, version.minor, exprs);
  expect(values.get('sizeof'), `${py.label}: sizeof(_Py_DebugOffsets) vs format ${format!.name}`).toBe(size);
  for (const [name, at] of fields) expect(at, `${py.label}: _Py_DebugOffsets.${name}`).toBe(values.get(name));
}

describe('CPython layouts against real interpreters', () => {
  for (const version of [...REQUIRED_VERSIONS, ...OPTIONAL_VERSIONS].sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))) {
    const pythons = pythonsFor(version);
    if (pythons.length === 0) {
      const env = `KILN_PYTHON_${version.replace('.', '_')}`;
      if (OPTIONAL_VERSIONS.includes(version)) {
        console.log(`layouts: no ${version} interpreter here; set ${env}=/path/to/python${version} (a build with its headers) to check the ${version} table`);
      } else {
        it(`${version}: required`, () => {
          expect.fail(`no ${version} interpreter: run \`bash test/setup-pythons.sh\` (or set ${env}=/path/to/python${version})`);
        });
      }
      continue;
    }
    for (const py of pythons) it(py.label, () => checkInterpreter(py), 60_000);
  }
});
