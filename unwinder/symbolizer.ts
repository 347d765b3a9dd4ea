/**
 * Turns the kernel's (code object, instruction position, fingerprint) frames
 * of one process into functions, files and lines by reading the code objects
 * from the process's memory. Code objects are cached by address and
 * fingerprint, so a hot function is read once; a fingerprint that no longer
 * matches means the address now holds another object, and the frame is
 * reported as unknown rather than misnamed.
 */
import type { KernelFrame } from '../bpf/abi.js';
import { fingerprint } from '../bpf/abi.js';
import type { PyLayout } from './layout.js';
import { lineForOffset } from './linetable.js';
import { ProcessMemory } from './memory.js';
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

// PyASCIIObject.state bits, the same from 3.9 to 3.14: interned (2), kind (3), compact, ascii
const STATE_KIND_SHIFT = 2;
const STATE_COMPACT = 1 << 5;
const STATE_ASCII = 1 << 6;
const MAX_STRING_CHARS = 4096;
const MAX_LINE_TABLE = 1 << 20;
const RETRY_FAILED_READ_MS = 1000;
const MAX_FAILURES = 10_000;

export interface SymbolizerStats {
  codeReads: number;
  codeReadErrors: number;
  fingerprintMismatches: number;
}

export class Symbolizer {
  private mem: ProcessMemory | undefined;
  private readonly cache = new Map<string, CodeInfo | null>();
  private readonly failures = new Map<string, number>();
  private readonly codeWindow: number;
  /** for builds without co_qualname */
  private readonly sources: SourceQualnames;
  readonly stats: SymbolizerStats = { codeReads: 0, codeReadErrors: 0, fingerprintMismatches: 0 };

  constructor(
    readonly pid: number,
    readonly layout: PyLayout,
  ) {
    const c = layout.code;
    this.sources = new SourceQualnames(pid);
    this.codeWindow = Math.max(c.argcount, c.firstlineno, c.name, c.qualname, c.filename, c.linetable) + 8;
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
    } catch {
      this.stats.codeReadErrors++;
      if (this.failures.size >= MAX_FAILURES) this.failures.clear();
      this.failures.set(key, Date.now());
      return null;
    }
    this.failures.delete(key);
    this.cache.set(key, info);
    return info;
  }

  private readCode(mem: ProcessMemory, kf: KernelFrame): CodeInfo | null {
    const c = this.layout.code;
    const w = mem.read(kf.code, this.codeWindow);
    const firstLineNo = w.readInt32LE(c.firstlineno);
    if (fingerprint(firstLineNo, w.readInt32LE(c.argcount)) !== kf.fingerprint) {
      this.stats.fingerprintMismatches++;
      return null;
    }
    const name = this.readString(mem, w.readBigUInt64LE(c.name));
    const filename = this.readString(mem, w.readBigUInt64LE(c.filename));
    return {
      name,
      qualname:
        c.qualname >= 0
          ? this.readString(mem, w.readBigUInt64LE(c.qualname))
          : this.sources.qualname(filename, firstLineNo, name),
      filename,
      firstLineNo,
      lineTable: this.readBytes(mem, w.readBigUInt64LE(c.linetable)),
      lines: new Map(),
    };
  }

  private readString(mem: ProcessMemory, addr: bigint): string {
    const u = this.layout.unicode;
    const head = mem.read(addr, Math.max(u.length, u.state) + 8);
    const length = Number(head.readBigInt64LE(u.length));
    const state = head.readUInt32LE(u.state);
    if (!(state & STATE_COMPACT)) throw new Error('non-compact string');
    const n = Math.min(Math.max(length, 0), MAX_STRING_CHARS);
    if (state & STATE_ASCII) return mem.read(addr + BigInt(u.asciiData), n).toString('latin1');
    const kind = (state >> STATE_KIND_SHIFT) & 7;
    const data = mem.read(addr + BigInt(u.compactData), n * kind);
    if (kind === 1) return data.toString('latin1');
    if (kind === 2) return data.toString('utf16le');
    if (kind === 4) {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCodePoint(data.readUInt32LE(i * 4));
      return s;
    }
    throw new Error(`bad string kind ${kind}`);
  }

  private readBytes(mem: ProcessMemory, addr: bigint): Buffer {
    const b = this.layout.bytes;
    const size = Number(mem.i64(addr + BigInt(b.size)));
    if (size < 0 || size > MAX_LINE_TABLE) throw new Error(`implausible bytes size ${size}`);
    return size === 0 ? Buffer.alloc(0) : mem.read(addr + BigInt(b.data), size);
  }
}
