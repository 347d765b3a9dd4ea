/**
 * What the BPF walker is told about one CPython build: bpf/ defines its own
 * struct (KernelLayout, knowing nothing of CPython), and this is the one
 * place that translates a PyLayout into it.
 */
import type { KernelLayout, KernelProc } from '../bpf/abi.js';
import type { PyLayout, TypeObjects } from './layout.js';

export function kernelLayout(l: PyLayout): KernelLayout {
  const c = l.code;
  return {
    runtimeInterpretersHead: l.runtime.interpretersHead,
    interpNext: l.interpreter.next,
    interpThreadsHead: l.interpreter.threadsHead,
    tstateNext: l.thread.next,
    tstateNativeThreadId: l.thread.nativeThreadId,
    tstateThreadId: l.thread.threadId,
    tstateFrame: l.thread.frame,
    cframeCurrentFrame: l.cframe ? l.cframe.currentFrame : -1,
    frameBack: l.frame.back,
    frameCode: l.frame.code,
    frameLasti: l.frame.lasti,
    frameOwner: l.frame.owner,
    codeAdaptive: c.adaptive,
    objectType: l.object.type,
    // Immutable fields that tell one code object from another allocated later
    // at the same address: where it starts, how it is called, and the objects
    // it names (a code object holds them, so they live as long as it does).
    codeIdentInts: [c.firstlineno, c.argcount],
    codeIdentPtrs: [c.filename, c.name, c.qualname, c.linetable],
    lastiIsPointer: l.frame.lastiIsPointer,
    ownerCStack: l.frame.ownerCStack,
    matchNativeTid: l.thread.nativeThreadId >= 0,
    codeTagMask: l.frame.codeTagMask,
  };
}

export function kernelProc(runtime: bigint, layout: PyLayout, types: TypeObjects): KernelProc {
  return { runtime, codeType: types.code, layout: kernelLayout(layout) };
}
