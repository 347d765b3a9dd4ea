/**
 * Turns the kernel's (code object, instruction position, identity) frames of
 * one process into functions, files and lines by reading the code objects
 * from the process's memory. Nothing read is trusted: the code object, its
 * strings and its line table must each be a live object of the process's own
 * type, and the code object must hash to the identity the kernel saw, or the
 * frame is [unknown code]. Code objects are cached by address and identity,
 * so a hot function is read once.
 */
import { codeIdentity, type KernelFrame, type KernelLayout } from '../bpf/abi.js';
import { kernelLayout } from './kernel-layout.js';
import type { PyLayout, TypeObjects } from './layout.js';
import { lineForOffset } from './linetable.js';
import { ProcessMemory } from './memory.js';
import { ObjectCheckError, checkObject, readBytes, readStr, type ObjectFault } from './objects.js';
import { SYNTHETIC, syntheticFrame, type Frame } from '../profile/profile.js';
import { SourceQualnames } from './qualname.js';

interface CodeInfo {
  name: string;
  qualname: string;
  filename: string;
  firstLineNo: number;
  lineTable: Buffer;
  /** line per instruction position, filled as positions are seen */
  lines: Map<number, number>;
}

const RETRY_FAILED_READ_MS = 1000;
const MAX_CACHED_CODE = 100_000;
const MAX_FAILURES = 10_000;

export interface SymbolizerStats {
  codeReads: number;
  /** reads that failed: the memory is unmapped, or the process gone */
  codeReadErrors: number;
  /** code objects whose identity was not the one the kernel saw (the address was reused) */
  identityMismatches: number;
  /** objects refused by their header: freed, of another type, or malformed */
  objectFaults: Record<ObjectFault, number>;
}

export class Symbolizer {
  private mem: ProcessMemory | undefined;
  private readonly cache = new Map<string, CodeInfo | null>();
  private readonly failures = new Map<string, number>();
  private readonly codeWindow: number;
  /** for builds without co_qualname */
  private readonly sources: SourceQualnames;
  private readonly kernel: KernelLayout;
  readonly stats: SymbolizerStats = {
    codeReads: 0,
    codeReadErrors: 0,
    identityMismatches: 0,
    objectFaults: { dead: 0, type: 0, shape: 0 },
  };

  constructor(
    readonly pid: number,
    readonly layout: PyLayout,
    readonly types: TypeObjects,
  ) {
    const c = layout.code;
    this.sources = new SourceQualnames(pid);
    this.kernel = kernelLayout(layout);
    this.codeWindow = Math.max(layout.object.refcnt, layout.object.type, c.argcount, c.firstlineno, c.name, c.qualname, c.filename, c.linetable) + 8;
    try {
      this.mem = new ProcessMemory(pid);
    } catch {
      this.mem = undefined; // gone already: only cached code can be named
    }
  }

  /** After the process exits, frames are named from the cache only. */
  detach(): void {
    this.mem?.close();
    this.mem = undefined;
  }

  frame(kf: KernelFrame): Frame {
    const info = this.code(kf);
    if (!info) return syntheticFrame(SYNTHETIC.unknownCode);
    let line = info.lines.get(kf.lasti);
    if (line === undefined) {
      const unit = this.layout.frame.lastiIsPointer ? 2 : this.layout.frame.lastiUnitBytes;
      line = lineForOffset(this.layout.code.lineTableFormat, info.lineTable, info.firstLineNo, kf.lasti * unit);
      info.lines.set(kf.lasti, line);
    }
    return { name: info.qualname, systemName: info.name, filename: info.filename, startLine: info.firstLineNo, line };
  }

  private code(kf: KernelFrame): CodeInfo | null {
    if (kf.code === 0n) return null; // the kernel found no code object there
    const key = `${kf.code}:${kf.fingerprint}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    if (!this.mem) return null;
    // a read that failed is tried again, but not more than once a second
    const failedAt = this.failures.get(key);
    if (failedAt !== undefined && Date.now() - failedAt < RETRY_FAILED_READ_MS) return null;
    let info: CodeInfo | null = null;
    try {
      this.stats.codeReads++;
      info = this.readCode(this.mem, kf);
    } catch (err) {
      if (err instanceof ObjectCheckError) {
        // not a transient failure: that memory is not this code object any more
        this.stats.objectFaults[err.fault]++;
        this.remember(key, null);
        return null;
      }
      this.stats.codeReadErrors++;
      if (this.failures.size >= MAX_FAILURES) this.failures.clear();
      this.failures.set(key, Date.now());
      return null;
    }
    this.failures.delete(key);
    this.remember(key, info);
    return info;
  }

  private remember(key: string, info: CodeInfo | null): void {
    if (this.cache.size >= MAX_CACHED_CODE) this.cache.clear();
    this.cache.set(key, info);
  }

  private readCode(mem: ProcessMemory, kf: KernelFrame): CodeInfo | null {
    const { layout: l, types } = this;
    const c = l.code;
    const w = mem.read(kf.code, this.codeWindow);
    checkObject(w, l, types.code, 'code object', kf.code);
    if (codeIdentity(w, this.kernel) !== kf.fingerprint) {
      this.stats.identityMismatches++;
      return null;
    }
    const firstLineNo = w.readInt32LE(c.firstlineno);
    const name = readStr(mem, l, types, w.readBigUInt64LE(c.name));
    const filename = readStr(mem, l, types, w.readBigUInt64LE(c.filename));
    return {
      name,
      qualname: c.qualname >= 0 ? readStr(mem, l, types, w.readBigUInt64LE(c.qualname)) : this.sources.qualname(filename, firstLineNo, name),
      filename,
      firstLineNo,
      lineTable: readBytes(mem, l, types, w.readBigUInt64LE(c.linetable)),
      lines: new Map(),
    };
  }
}
