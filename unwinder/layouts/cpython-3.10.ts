import type { PyLayout } from '../layout.js';

/**
 * CPython 3.10, x86-64. No Debian build of 3.10 is reachable, so these were
 * counted by hand from the headers of tag v3.10.13 (as installed by pyenv):
 * cpython/pystate.h (struct _ts: _PyErr_StackItem still holds 4 pointers),
 * cpython/frameobject.h (struct _frame: f_stackdepth replaced f_stacktop),
 * cpython/code.h, internal/pycore_runtime.h, internal/pycore_interp.h.
 * The same fields precede these offsets in v3.10.0 (compared with bindings
 * generated from v3.10.0 by benfred/py-spy). test/layouts.test.ts checks them
 * with offsetof() and a live walk when KILN_PYTHON_3_10 names a 3.10
 * interpreter with its headers (pyenv's 3.10.13 passed).
 *
 * Same frame era as 3.9, but f_lasti counts 2-byte code units (PEP 626) and
 * co_linetable replaced co_lnotab.
 */
export const cpython310: Omit<PyLayout, 'version'> = {
  source: 'table cpython-3.10 (v3.10.13 cpython/pystate.h, cpython/frameobject.h, cpython/code.h, internal/pycore_runtime.h; counted)',
  object: { refcnt: 0, type: 8 },
  runtime: { interpretersHead: 32 },
  interpreter: { next: 0, threadsHead: 8 },
  thread: { next: 8, nativeThreadId: -1, threadId: 176, frame: 24, datastackChunk: -1 },
  stackChunk: null,
  cframe: null,
  frame: {
    back: 24,
    code: 32,
    lasti: 96,
    lastiIsPointer: false,
    lastiUnitBytes: 2,
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
    lineTableFormat: 'linetable310',
    adaptive: -1,
  },
  bytes: { size: 16, data: 32 },
  unicode: { length: 16, state: 32, asciiData: 48, compactData: 72 },
};
