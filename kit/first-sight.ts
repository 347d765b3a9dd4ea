/**
 * First-sight events made in userspace the way the kernel makes them, for
 * tests that give the symbolizer a code object at a known address (the real
 * events are exercised by every profile test).
 */
import { KILN_CODE_IDENT_INTS, KILN_CODE_IDENT_PTRS, codeReadSize, type CodeEvent, type KernelLayout } from '../bpf/abi.js';
import type { ProcessMemory } from '../unwinder/memory.js';

let nextId = 1;

/** A fresh code id, as the kernel would give a code object it reports. */
export function nextCodeId(): number {
  return nextId++;
}

/** A first-sight event as the kernel makes it of the code object at `code` (with or without copies). */
export function firstSight(mem: ProcessMemory, pid: number, kl: KernelLayout, code: bigint, copy: boolean): CodeEvent {
  const w = mem.read(code, codeReadSize(kl));
  const identInts = Array.from({ length: KILN_CODE_IDENT_INTS }, (_, i) => (kl.codeIdentInts[i]! >= 0 ? w.readUInt32LE(kl.codeIdentInts[i]!) : 0));
  const identPtrs = Array.from({ length: KILN_CODE_IDENT_PTRS }, (_, i) => (kl.codeIdentPtrs[i]! >= 0 ? w.readBigUInt64LE(kl.codeIdentPtrs[i]!) : 0n));
  const copies = identPtrs.map((address, i) => {
    const want = copy && address ? kl.codeCopy[i]! : 0;
    if (!want) return { address, bytes: Buffer.alloc(0) };
    try {
      return { address, bytes: mem.read(address, want) };
    } catch {
      // as the kernel does: up to the end of the object's page
      return { address, bytes: mem.read(address, Math.min(want, 4096 - Number(address & 4095n))) };
    }
  });
  return { pid, codeId: nextId++, code, identInts, identPtrs, copies };
}
