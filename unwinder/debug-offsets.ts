import type { PyLayout, PythonVersion } from './layout.js';
import type { ProcessMemory } from './memory.js';

/**
 * From 3.13 on, CPython publishes its own struct offsets in _Py_DebugOffsets,
 * the first field of _PyRuntime (gh-106597). Reading them from the process
 * beats any table: they are right for that exact build. The struct itself is
 * not stable across minor versions (3.14 inserted fields into several
 * groups), so its shape is described here as data, one format per layout.
 */

const COOKIE = 'xdebugpy';

/** One shape of _Py_DebugOffsets: after cookie[8], every field is a uint64_t, in this order. */
export interface DebugOffsetsFormat {
  name: string;
  /** minor version and the patch releases (inclusive) this shape was seen in */
  minor: number;
  patches: [number, number];
  /** where the description comes from */
  source: string;
  /** "group: field field ..." in struct order; the first group is the top level after the cookie */
  groups: string[];
  supplement: Supplement;
}

/**
 * What Kiln needs that _Py_DebugOffsets does not publish, per minor version.
 * The frame owner value and the tag bits are enum/macro constants, not offsets;
 * PyCompactUnicodeObject's size is absent (only sizeof(PyASCIIObject) is there),
 * but it is PyASCIIObject plus utf8_length and the utf8 pointer in 3.12+.
 */
interface Supplement {
  /** owner of the C entry frame each _PyEval_EvalFrameDefault pushes (f_executable is None there) */
  ownerCStack: number;
  /** low bits to clear from f_executable */
  codeTagMask: number;
  /** sizeof(PyCompactUnicodeObject) - sizeof(PyASCIIObject) */
  compactUnicodeExtra: number;
  /** _PyStackChunk, unpublished: { previous, size, top, data[] } since 3.11 */
  stackChunk: { previous: number; size: number; data: number };
}

const FORMATS: DebugOffsetsFormat[] = [
  {
    name: '3.13',
    minor: 13,
    patches: [0, Infinity],
    // identical in v3.13.0 (pyenv headers) and v3.13.5 (Debian trixie), apart
    // from a _Py_NONSTRING attribute on the cookie. Later 3.13 releases were
    // not read; bloomberg/pystack, which needs this exact shape, has kept the
    // same 3.13 copy from 3.13.0rc2 on
    source: 'Include/internal/pycore_runtime.h of v3.13.0 and v3.13.5',
    groups: [
      'top: version free_threaded',
      'runtime_state: size finalizing interpreters_head',
      'interpreter_state: size id next threads_head gc imports_modules sysdict builtins ceval_gil gil_runtime_state gil_runtime_state_enabled gil_runtime_state_locked gil_runtime_state_holder',
      'thread_state: size prev next interp current_frame thread_id native_thread_id datastack_chunk status',
      'interpreter_frame: size previous executable instr_ptr localsplus owner',
      'code_object: size filename name qualname linetable firstlineno argcount localsplusnames localspluskinds co_code_adaptive',
      'pyobject: size ob_type',
      'type_object: size tp_name tp_repr tp_flags',
      'tuple_object: size ob_item ob_size',
      'list_object: size ob_item ob_size',
      'dict_object: size ma_keys ma_values',
      'float_object: size ob_fval',
      'long_object: size lv_tag ob_digit',
      'bytes_object: size ob_size ob_sval',
      'unicode_object: size state length asciiobject_size',
      'gc: size collecting',
    ],
    supplement: {
      // pycore_frame.h: FRAME_OWNED_BY_CSTACK = 3, the owner ceval.c gives its entry frame
      ownerCStack: 3,
      // f_executable is a plain PyObject *
      codeTagMask: 0,
      compactUnicodeExtra: 16,
      stackChunk: { previous: 0, size: 8, data: 24 },
    },
  },
  {
    name: '3.14',
    minor: 14,
    patches: [0, Infinity],
    // read from v3.14.10 (Debian sid); 760 bytes in all. Not read at v3.14.0
    // itself, but bloomberg/pystack, which needs this exact shape, has kept
    // the same 3.14 copy from 3.14.0b2 on
    source: 'Include/internal/pycore_debug_offsets.h of v3.14.10',
    groups: [
      'top: version free_threaded',
      'runtime_state: size finalizing interpreters_head',
      'interpreter_state: size id next threads_head threads_main gc imports_modules sysdict builtins ceval_gil gil_runtime_state gil_runtime_state_enabled gil_runtime_state_locked gil_runtime_state_holder code_object_generation tlbc_generation',
      'thread_state: size prev next interp current_frame thread_id native_thread_id datastack_chunk status',
      'interpreter_frame: size previous executable instr_ptr localsplus owner stackpointer tlbc_index',
      'code_object: size filename name qualname linetable firstlineno argcount localsplusnames localspluskinds co_code_adaptive co_tlbc',
      'pyobject: size ob_type',
      'type_object: size tp_name tp_repr tp_flags',
      'tuple_object: size ob_item ob_size',
      'list_object: size ob_item ob_size',
      'set_object: size used table mask',
      'dict_object: size ma_keys ma_values',
      'float_object: size ob_fval',
      'long_object: size lv_tag ob_digit',
      'bytes_object: size ob_size ob_sval',
      'unicode_object: size state length asciiobject_size',
      'gc: size collecting',
      'gen_object: size gi_name gi_iframe gi_frame_state',
      'llist_node: next prev',
      'debugger_support: eval_breaker remote_debugger_support remote_debugging_enabled debugger_pending_call debugger_script_path debugger_script_path_size',
    ],
    supplement: {
      // pycore_interpframe_structs.h renumbered the owners: FRAME_OWNED_BY_INTERPRETER = 3,
      // FRAME_OWNED_BY_CSTACK = 4. The entry frame ceval.c pushes is now owned by
      // FRAME_OWNED_BY_INTERPRETER, so the frame to skip is still 3 (CPython itself
      // treats owner >= FRAME_OWNED_BY_INTERPRETER as "not a Python frame").
      ownerCStack: 3,
      // f_executable is a _PyStackRef; Py_TAG_BITS is 3 in the GIL build
      // (pycore_stackref.h; 1 in free-threaded builds, which Kiln rejects)
      codeTagMask: 3,
      compactUnicodeExtra: 16,
      stackChunk: { previous: 0, size: 8, data: 24 },
    },
  },
];

/** The shape of _Py_DebugOffsets for a version, or undefined when Kiln knows none. */
export function debugOffsetsFormat(version: PythonVersion): DebugOffsetsFormat | undefined {
  if (version.major !== 3) return undefined;
  return FORMATS.find((f) => f.minor === version.minor && version.patch >= f.patches[0] && version.patch <= f.patches[1]);
}

/** Byte offset of every "group.field" of a format inside _Py_DebugOffsets, and the struct size. */
export function debugOffsetsFields(format: DebugOffsetsFormat): { fields: Map<string, number>; size: number } {
  const fields = new Map<string, number>();
  let at = COOKIE.length;
  for (const line of format.groups) {
    const [group, names] = line.split(':') as [string, string];
    for (const name of names.trim().split(/\s+/)) {
      fields.set(group === 'top' ? name : `${group}.${name}`, at);
      at += 8;
    }
  }
  return { fields, size: at };
}

/** PY_VERSION_HEX: 0xMMmmppLS (major, minor, patch, release level, serial). */
function decodeVersionHex(hex: bigint): PythonVersion {
  const v = Number(hex & 0xffffffffn);
  return { major: (v >>> 24) & 0xff, minor: (v >>> 16) & 0xff, patch: (v >>> 8) & 0xff };
}

/**
 * Builds a PyLayout from the _Py_DebugOffsets at runtimeAddress (the address
 * of _PyRuntime) in a 3.13+ process. `version` is what the caller believes the
 * interpreter is; its major.minor must match the struct's version field, and
 * the returned layout carries the exact version the process reports.
 * Throws when the cookie or the version do not match, when Kiln knows no
 * shape for that version, or for a free-threaded build (its frames and
 * strings differ in ways this layout cannot say).
 */
export function readDebugOffsets(mem: ProcessMemory, runtimeAddress: bigint, version: PythonVersion): PyLayout {
  const expected = `${version.major}.${version.minor}`;
  const at = `_Py_DebugOffsets at 0x${runtimeAddress.toString(16)} in pid ${mem.pid}`;
  const head = mem.read(runtimeAddress, 16);
  const cookie = head.toString('latin1', 0, 8);
  if (cookie !== COOKIE) {
    throw new Error(`${at}: cookie is ${JSON.stringify(cookie)}, not "${COOKIE}": not the _PyRuntime of a CPython ${expected}`);
  }
  const hex = head.readBigUInt64LE(8);
  const actual = decodeVersionHex(hex);
  if (actual.major !== version.major || actual.minor !== version.minor) {
    throw new Error(
      `${at}: version field is 0x${hex.toString(16)} (${actual.major}.${actual.minor}.${actual.patch}), expected ${expected}`,
    );
  }
  const format = debugOffsetsFormat(actual);
  if (!format) {
    throw new Error(`${at}: Kiln knows no _Py_DebugOffsets layout for ${actual.major}.${actual.minor}.${actual.patch}`);
  }

  const { fields, size } = debugOffsetsFields(format);
  const raw = mem.read(runtimeAddress, size);
  const get = (name: string): number => {
    const off = fields.get(name);
    if (off === undefined) throw new Error(`_Py_DebugOffsets format ${format.name} has no field ${name}`);
    return Number(raw.readBigUInt64LE(off));
  };
  if (get('free_threaded') !== 0) {
    throw new Error(`${at}: free-threaded build (${actual.major}.${actual.minor}t) is not supported`);
  }
  const s = format.supplement;
  const asciiSize = get('unicode_object.asciiobject_size');

  return {
    version: actual,
    source: `_Py_DebugOffsets (format ${format.name}: ${format.source}) + supplement ${format.name}`,
    // ob_refcnt is not published: it is the first field of every object in a GIL build
    object: { refcnt: 0, type: get('pyobject.ob_type') },
    runtime: { interpretersHead: get('runtime_state.interpreters_head') },
    interpreter: {
      next: get('interpreter_state.next'),
      threadsHead: get('interpreter_state.threads_head'),
    },
    thread: {
      next: get('thread_state.next'),
      nativeThreadId: get('thread_state.native_thread_id'),
      threadId: get('thread_state.thread_id'),
      frame: get('thread_state.current_frame'),
      datastackChunk: get('thread_state.datastack_chunk'),
    },
    stackChunk: s.stackChunk,
    // _PyCFrame is gone since 3.13: tstate->current_frame is the frame
    cframe: null,
    frame: {
      back: get('interpreter_frame.previous'),
      code: get('interpreter_frame.executable'),
      lasti: get('interpreter_frame.instr_ptr'),
      lastiIsPointer: true,
      lastiUnitBytes: 2,
      owner: get('interpreter_frame.owner'),
      ownerCStack: s.ownerCStack,
      codeTagMask: s.codeTagMask,
    },
    code: {
      argcount: get('code_object.argcount'),
      firstlineno: get('code_object.firstlineno'),
      name: get('code_object.name'),
      qualname: get('code_object.qualname'),
      filename: get('code_object.filename'),
      linetable: get('code_object.linetable'),
      lineTableFormat: 'locations311',
      adaptive: get('code_object.co_code_adaptive'),
    },
    bytes: { size: get('bytes_object.ob_size'), data: get('bytes_object.ob_sval') },
    unicode: {
      length: get('unicode_object.length'),
      state: get('unicode_object.state'),
      asciiData: asciiSize,
      compactData: asciiSize + s.compactUnicodeExtra,
    },
  };
}
