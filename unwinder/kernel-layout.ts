/**
 * What the BPF walker is told about one CPython build: bpf/ defines its own
 * struct (KernelLayout, knowing nothing of CPython), and this is the one
 * place that translates a PyLayout into it.
 */
import type { KernelLayout, KernelProc } from '../bpf/abi.js';
import type { PyLayout, TypeObjects } from './layout.js';

/**
 * The identity the kernel keeps of a code object, in this order: fields that
 * tell it from another code object later allocated at its address (where it
 * starts, how it is called, and the objects it names, which it holds, so
 * they live as long as it does).
 */
export const IDENT_INTS = ['firstlineno', 'argcount'] as const;
export const IDENT_PTRS = ['filename', 'name', 'qualname', 'linetable'] as const;
export type IdentPtr = (typeof IDENT_PTRS)[number];

/**
 * Bytes of each object a first-sight event copies, from its first byte: the
 * header and characters of names as long as nearly all are, and line tables
 * of functions of several hundred lines. Longer ones are read from the
 * process when the event is taken, and used only if they still begin with
 * what the kernel copied; a line table that is gone by then is used as far
 * as it was copied (lines past it are 0).
 */
export const COPY_BYTES: Record<IdentPtr, number> = { filename: 512, name: 256, qualname: 256, linetable: 4096 };

export interface KernelOptions {
  /**
   * Have the kernel copy the names and line table into first-sight events
   * (the default). Without, events carry only the identity, and userspace
   * must read the code object from the process before it is freed.
   */
  copyObjects: boolean;
}

export function kernelLayout(l: PyLayout, options: KernelOptions = { copyObjects: true }): KernelLayout {
  const c = l.code;
  return {
    runtimeInterpretersHead: l.runtime.interpretersHead,
    interpNext: l.interpreter.next,
    interpThreadsHead: l.interpreter.threadsHead,
    tstateNext: l.thread.next,
    tstateNativeThreadId: l.thread.nativeThreadId,
    tstateThreadId: l.thread.threadId,
    tstateFrame: l.thread.frame,
    tstateDatastackChunk: l.stackChunk ? l.thread.datastackChunk : -1,
    cframeCurrentFrame: l.cframe ? l.cframe.currentFrame : -1,
    chunkPrevious: l.stackChunk?.previous ?? -1,
    chunkSize: l.stackChunk?.size ?? -1,
    chunkData: l.stackChunk?.data ?? -1,
    frameBack: l.frame.back,
    frameCode: l.frame.code,
    frameLasti: l.frame.lasti,
    frameOwner: l.frame.owner,
    codeAdaptive: c.adaptive,
    objectRefcnt: l.object.refcnt,
    objectType: l.object.type,
    codeIdentInts: IDENT_INTS.map((k) => c[k]),
    codeIdentPtrs: IDENT_PTRS.map((k) => c[k]),
    codeCopy: IDENT_PTRS.map((k) => (options.copyObjects && c[k] >= 0 ? COPY_BYTES[k] : 0)),
    lastiIsPointer: l.frame.lastiIsPointer,
    ownerCStack: l.frame.ownerCStack,
    matchNativeTid: l.thread.nativeThreadId >= 0,
    codeTagMask: l.frame.codeTagMask,
  };
}

export function kernelProc(runtime: bigint, layout: PyLayout, types: TypeObjects, options?: KernelOptions): KernelProc {
  return { runtime, codeType: types.code, layout: kernelLayout(layout, options) };
}
