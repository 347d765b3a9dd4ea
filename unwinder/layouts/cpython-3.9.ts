import type { PyLayout } from '../layout.js';

/**
 * CPython 3.9, x86-64. Computed with offsetof() against Debian bullseye's
 * python3.9-dev 3.9.2-1 (tag v3.9.2): internal/pycore_runtime.h,
 * internal/pycore_interp.h, cpython/{pystate,frameobject,code,bytesobject,
 * unicodeobject}.h. 3.9 patch releases kept these structs. Checked by
 * test/layouts.test.ts against the bullseye root.
 *
 * Frames are heap PyFrameObjects reached by tstate->frame and f_back;
 * f_lasti is a byte offset into co_code, a separate bytes object, so there is
 * no inline bytecode (adaptive -1). PyThreadState has no native_thread_id
 * before 3.11, and code objects no co_qualname.
 */
export const cpython39: Omit<PyLayout, 'version'> = {
  source: 'table cpython-3.9 (v3.9.2 cpython/pystate.h, cpython/frameobject.h, cpython/code.h, internal/pycore_runtime.h)',
  object: { refcnt: 0, type: 8 },
  runtime: { interpretersHead: 32 },
  interpreter: { next: 0, threadsHead: 8 },
  thread: { next: 8, nativeThreadId: -1, threadId: 176, frame: 24, datastackChunk: -1 },
  stackChunk: null,
  cframe: null,
  frame: {
    back: 24,
    code: 32,
    lasti: 104,
    lastiIsPointer: false,
    lastiUnitBytes: 1,
    owner: -1,
    ownerCStack: null,
    codeTagMask: 0,
  },
  code: {
    argcount: 16,
    firstlineno: 40,
    name: 112,
    qualname: -1,
    filename: 104,
    linetable: 120,
    lineTableFormat: 'lnotab',
    adaptive: -1,
  },
  bytes: { size: 16, data: 32 },
  unicode: { length: 16, state: 32, asciiData: 48, compactData: 72 },
};
