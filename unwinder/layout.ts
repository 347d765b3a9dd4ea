/**
 * What Kiln needs to know about one CPython build, as data. The BPF walker
 * gets the frame/thread part (bpf/abi.ts encodes it); the symbolizer reads
 * code objects and strings with the rest. Offsets are in bytes; -1 means the
 * build has no such field.
 *
 * Versions up to 3.12 come from a table (unwinder/layouts/); 3.13 and later
 * are read from the process's own _Py_DebugOffsets (unwinder/debug-offsets.ts).
 */

export interface PythonVersion {
  major: number;
  minor: number;
  patch: number;
}

export function formatVersion(v: PythonVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** How co_linetable / co_lnotab encodes instruction -> line. */
export type LineTableFormat =
  | 'lnotab' // <= 3.9: co_lnotab, (byte offset delta, line delta) pairs
  | 'linetable310' // 3.10: PEP 626 co_linetable, (start delta, line delta) pairs
  | 'locations311'; // 3.11+: location table (Objects/locations.md)

export interface PyLayout {
  version: PythonVersion;
  /** Where these offsets come from: a table entry and its header, or _Py_DebugOffsets. */
  source: string;

  object: {
    /** PyObject.ob_refcnt */
    refcnt: number;
    /** PyObject.ob_type */
    type: number;
  };
  runtime: {
    /** _PyRuntime.interpreters.head */
    interpretersHead: number;
  };
  interpreter: {
    /** PyInterpreterState.next */
    next: number;
    /** PyInterpreterState.tstate_head (<= 3.11) / threads.head (3.12+) */
    threadsHead: number;
  };
  thread: {
    /** PyThreadState.next */
    next: number;
    /** PyThreadState.native_thread_id (3.11+), -1 before */
    nativeThreadId: number;
    /** PyThreadState.thread_id (a pthread_t) */
    threadId: number;
    /** frame (<= 3.10), cframe (3.11, 3.12), current_frame (3.13+) */
    frame: number;
    /** PyThreadState.datastack_chunk (3.11+), -1 before: the newest chunk of the thread's frame stack */
    datastackChunk: number;
  };
  /** _PyStackChunk (3.11+): frames live in these, contiguous; null when frames are heap objects */
  stackChunk: { previous: number; size: number; data: number } | null;
  /** _PyCFrame, for 3.11 and 3.12 only: tstate->cframe->current_frame */
  cframe: { currentFrame: number } | null;
  frame: {
    /** f_back (PyFrameObject) / previous (_PyInterpreterFrame) */
    back: number;
    /** f_code / f_executable */
    code: number;
    /** f_lasti (int) or prev_instr / instr_ptr (pointer into the bytecode) */
    lasti: number;
    /** true when `lasti` is a pointer into the code object's bytecode */
    lastiIsPointer: boolean;
    /**
     * For an int f_lasti: bytes per unit (1 on 3.9, where f_lasti is a byte
     * offset; 2 on 3.10, where it counts code units). Pointers always give
     * code units (2 bytes).
     */
    lastiUnitBytes: 1 | 2;
    /** owner (char), -1 when the build has none */
    owner: number;
    /** owner value of frames owned by the C stack (shims), skipped; null when none */
    ownerCStack: number | null;
    /** low bits to clear from `code` (3.14: f_executable is a tagged _PyStackRef) */
    codeTagMask: number;
  };
  code: {
    argcount: number;
    firstlineno: number;
    name: number;
    /** co_qualname (3.11+), -1 before */
    qualname: number;
    filename: number;
    /** co_linetable (3.10+) or co_lnotab (<= 3.9) */
    linetable: number;
    lineTableFormat: LineTableFormat;
    /** offset of the first code unit inside the code object (co_code_adaptive), -1 when the bytecode is a separate bytes object */
    adaptive: number;
  };
  bytes: {
    /** PyVarObject.ob_size */
    size: number;
    /** PyBytesObject.ob_sval */
    data: number;
  };
  unicode: {
    /** PyASCIIObject.length */
    length: number;
    /** PyASCIIObject.state (bitfield: interned 2 bits, kind 3, compact 1, ascii 1) */
    state: number;
    /** where the characters of a compact ASCII string start (sizeof PyASCIIObject) */
    asciiData: number;
    /** where the characters of a compact non-ASCII string start (sizeof PyCompactUnicodeObject) */
    compactData: number;
  };
}

/**
 * Where one process keeps the type objects Kiln checks what it reads
 * against (from its own symbols): an object is taken for a code object, a
 * str or a bytes only when its ob_type is the address here.
 */
export interface TypeObjects {
  code: bigint;
  unicode: bigint;
  bytes: bigint;
}
