import type { PyLayout } from '../layout.js';

/**
 * CPython 3.11, x86-64, GIL build. From Include/internal/pycore_runtime.h,
 * pycore_interp.h, pycore_frame.h and Include/cpython/{pystate,code,bytesobject,
 * unicodeobject}.h of v3.11.2 (Debian bookworm's python3.11-dev); no field the
 * walker reads moved within 3.11. Checked by test/layouts.test.ts.
 */
export const cpython311: Omit<PyLayout, 'version'> = {
  source: 'table cpython-3.11 (v3.11.2 Include/internal/pycore_frame.h, pycore_interp.h, cpython/pystate.h, cpython/code.h)',
  object: { refcnt: 0, type: 8 },
  runtime: { interpretersHead: 40 },
  interpreter: { next: 0, threadsHead: 16 },
  thread: { next: 8, nativeThreadId: 160, threadId: 152, frame: 56, datastackChunk: 296 },
  stackChunk: { previous: 0, size: 8, data: 24 },
  cframe: { currentFrame: 8 },
  frame: {
    back: 48,
    code: 32,
    lasti: 56,
    lastiIsPointer: true,
    lastiUnitBytes: 2,
    owner: 69,
    ownerCStack: null,
    codeTagMask: 0,
  },
  code: {
    argcount: 56,
    firstlineno: 72,
    name: 120,
    qualname: 128,
    filename: 112,
    linetable: 136,
    lineTableFormat: 'locations311',
    adaptive: 184,
  },
  bytes: { size: 16, data: 32 },
  unicode: { length: 16, state: 32, asciiData: 48, compactData: 72 },
};
