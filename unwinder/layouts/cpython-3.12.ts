import type { PyLayout } from '../layout.js';

/**
 * CPython 3.12, x86-64, GIL build. No Debian build of 3.12 is reachable, so
 * these were counted by hand from the headers of tag v3.12.1 (as installed by
 * pyenv): cpython/pystate.h (struct _ts, _PyCFrame), internal/pycore_frame.h
 * (_PyInterpreterFrame, enum _frameowner), cpython/code.h (_PyCode_DEF),
 * internal/pycore_interp.h (struct _is: threads.head after the id and
 * monitoring fields), internal/pycore_runtime.h. The same fields precede
 * these offsets in v3.12.0 (compared with bindings generated from v3.12.0 by
 * benfred/py-spy). test/layouts.test.ts checks them with offsetof() and a live
 * walk when KILN_PYTHON_3_12 names a 3.12 interpreter with its headers
 * (pyenv's 3.12.1 passed).
 *
 * _PyCFrame lost use_tracing (current_frame is now its first field); the
 * entry frame each _PyEval_EvalFrameDefault pushes is owned by
 * FRAME_OWNED_BY_CSTACK (3) and runs the "<interpreter trampoline>" code
 * object, so it must be skipped by owner; PyASCIIObject lost wstr, so the
 * compact string headers are 8 and 16 bytes shorter than in 3.11.
 */
export const cpython312: Omit<PyLayout, 'version'> = {
  source: 'table cpython-3.12 (v3.12.1 cpython/pystate.h, internal/pycore_frame.h, cpython/code.h, internal/pycore_interp.h; counted)',
  object: { refcnt: 0, type: 8 },
  runtime: { interpretersHead: 40 },
  interpreter: { next: 0, threadsHead: 72 },
  thread: { next: 8, nativeThreadId: 144, threadId: 136, frame: 56, datastackChunk: 232 },
  stackChunk: { previous: 0, size: 8, data: 24 },
  cframe: { currentFrame: 0 },
  frame: {
    back: 8,
    code: 0,
    lasti: 56,
    lastiIsPointer: true,
    lastiUnitBytes: 2,
    owner: 70,
    ownerCStack: 3,
    codeTagMask: 0,
  },
  code: {
    argcount: 52,
    firstlineno: 68,
    name: 120,
    qualname: 128,
    filename: 112,
    linetable: 136,
    lineTableFormat: 'locations311',
    adaptive: 192,
  },
  bytes: { size: 16, data: 32 },
  unicode: { length: 16, state: 32, asciiData: 40, compactData: 56 },
};
