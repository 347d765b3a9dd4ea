/**
 * Names one process's frames. The kernel reports each code object the first
 * time it sees it (a CodeEvent: an id, the code object's identity, and
 * copies of its name, qualname, filename and line table, read while it ran);
 * frames then carry the id. So a code object is symbolized once, when its
 * event arrives, and short-lived code (a module being imported, exec'd code)
 * is named from what the kernel copied, whether or not it still exists.
 *
 * Nothing is trusted: every object must look alive and have the process's
 * own type (PyUnicode_Type, PyBytes_Type); a name or table longer than the
 * kernel copied is read from the process and used only if it begins with the
 * copied bytes; without copies, the code object itself is read and must
 * still have the identity the kernel saw. Anything else is [unknown code],
 * counted per reason, never another name.
 */
import type { CodeEvent, CopiedObject, KernelFrame } from '../bpf/abi.js';
import { IDENT_INTS, IDENT_PTRS, type IdentPtr } from './kernel-layout.js';
import type { PyLayout, TypeObjects } from './layout.js';
import { lineIndex, type LineIndex } from './linetable.js';
import { MemoryReadError, ProcessMemory, ReadableRegions, type FileId } from './memory.js';
import { ObjectCheckError, checkObject, readBytes, readBytesStart, readStr, type Memory, type ObjectFault } from './objects.js';
import { SYNTHETIC_FRAMES, type Frame } from '../profile/profile.js';
import { SourceQualnames } from './qualname.js';

interface CodeInfo {
  frame: Omit<Frame, 'line'>;
  /** the table as read, until a sample first needs a line from it */
  lineTable: Buffer | undefined;
  /** false: only the start of the table (as copied by the kernel); lines past it are 0 */
  lineTableComplete: boolean;
  /** the table decoded, once */
  lines: LineIndex | undefined;
  /** the frame per instruction position, filled as positions are seen: one object per line */
  frames: Map<number, Frame>;
  byLine: Map<number, Frame>;
}


interface Known {
  /** null: reported, but could not be named */
  info: CodeInfo | null;
  /** the code object's address, to make the kernel forget it */
  code: bigint;
  /** the last drain a sample named it in */
  lastUsed: number;
}

export type CodeFault = ObjectFault | 'unreadable' | 'unreported';

export interface SymbolizerStats {
  /** first-sight events received */
  events: number;
  /** code objects named */
  named: number;
  /** code objects or frames that could not be named, by reason */
  faults: Record<CodeFault, number>;
  /** reads of the process's memory (names or tables longer than copied, or events without copies) */
  reads: number;
  /** time spent naming first sights, ns */
  learnNs: number;
  /** code objects named with only the start of their line table (the rest gone before it was read) */
  cutLineTables: number;
  /** bytes read from the process's memory (what the kernel did not copy) */
  readBytes: number;
  /** bytes of source files read (qualnames on 3.9 and 3.10) */
  sourceBytes: number;
  /** source files not read: missing, or refused (outside the process's reach, not regular, too large) */
  sourcesUnread: number;
  /** line-table bytes decoded */
  lineTableBytes: number;
}

export function emptySymbolizerStats(): SymbolizerStats {
  return {
    events: 0,
    named: 0,
    faults: { dead: 0, type: 0, shape: 0, changed: 0, identity: 0, unreadable: 0, unreported: 0 },
    reads: 0,
    learnNs: 0,
    cutLineTables: 0,
    readBytes: 0,
    sourceBytes: 0,
    sourcesUnread: 0,
    lineTableBytes: 0,
  };
}

/** a += b */
export function addSymbolizerStats(a: SymbolizerStats, b: SymbolizerStats): void {
  a.events += b.events;
  a.named += b.named;
  a.reads += b.reads;
  a.learnNs += b.learnNs;
  a.cutLineTables += b.cutLineTables;
  a.readBytes += b.readBytes;
  a.sourceBytes += b.sourceBytes;
  a.sourcesUnread += b.sourcesUnread;
  a.lineTableBytes += b.lineTableBytes;
  for (const k of Object.keys(a.faults) as CodeFault[]) a.faults[k] += b.faults[k];
}

/** A read outside what the kernel copied. */
class NotCopied extends Error {}

/** Memory as the kernel copied it into an event, at the time it saw the code run. */
class Copies implements Memory {
  constructor(private readonly copies: CopiedObject[]) {}

  read(address: bigint, length: number): Buffer {
    for (const c of this.copies) {
      const at = address - c.address;
      if (at >= 0n && at + BigInt(length) <= BigInt(c.bytes.length)) return c.bytes.subarray(Number(at), Number(at) + length);
    }
    throw new NotCopied();
  }
}

/**
 * The process's memory now, for objects longer than the kernel copied:
 * wherever a read overlaps a copy, it must hold what the kernel copied, or
 * the object is not the one the kernel saw any more.
 */
class Checked implements Memory {
  constructor(
    private readonly process: Memory,
    private readonly copies: CopiedObject[],
  ) {}

  read(address: bigint, length: number): Buffer {
    const now = this.process.read(address, length);
    const end = address + BigInt(length);
    for (const c of this.copies) {
      const cEnd = c.address + BigInt(c.bytes.length);
      const from = address > c.address ? address : c.address;
      const to = end < cEnd ? end : cEnd;
      if (from >= to) continue;
      // A header (read from the object's first byte) is checked afresh, not
      // compared: its refcount moves, and str and bytes fill some fields
      // lazily (hash, utf8). The characters and table bytes never change.
      if (address === c.address) continue;
      const copied = c.bytes.subarray(Number(from - c.address), Number(to - c.address));
      const current = now.subarray(Number(from - address), Number(to - address));
      if (!copied.equals(current))
        throw new ObjectCheckError('changed', `0x${address.toString(16)}: no longer what the kernel copied`);
    }
    return now;
  }
}

/** Code objects a process may have, in memory at once, before the least used are dropped. */
const MAX_CODES = 200_000;

export class Symbolizer {
  private mem: ProcessMemory | undefined;
  private readonly codes = new Map<number, Known>();
  /** for builds without co_qualname */
  private readonly sources: SourceQualnames;
  private drainNo = 0;
  readonly stats: SymbolizerStats = emptySymbolizerStats();

  constructor(
    readonly pid: number,
    readonly layout: PyLayout,
    readonly types: TypeObjects,
    /** the interpreter image: objects are read from it and from anonymous memory only */
    image: FileId,
  ) {
    this.sources = new SourceQualnames(pid);
    try {
      this.mem = new ProcessMemory(pid, new ReadableRegions(pid, image));
    } catch {
      this.mem = undefined; // gone already: only what the kernel copied can be named
    }
  }

  /** After the process exits, frames are named from what is known only. */
  detach(): void {
    this.mem?.close();
    this.mem = undefined;
  }

  /** Takes a first sight: names the code object now, from the copies (or the process). */
  learn(ev: CodeEvent): void {
    const t0 = process.hrtime.bigint();
    const memBytes = this.mem?.bytesRead ?? 0;
    const { bytesRead: sourceBytes, unread } = this.sources;
    this.stats.events++;
    let info: CodeInfo | null = null;
    try {
      info = this.read(ev);
      this.stats.named++;
    } catch (err) {
      if (err instanceof ObjectCheckError) this.stats.faults[err.fault]++;
      else if (err instanceof MemoryReadError) this.stats.faults.unreadable++;
      else throw err;
    }
    if (this.codes.size >= MAX_CODES) this.dropLeastUsed();
    this.codes.set(ev.codeId, { info, code: ev.code, lastUsed: this.drainNo });
    this.stats.readBytes += (this.mem?.bytesRead ?? memBytes) - memBytes;
    this.stats.sourceBytes += this.sources.bytesRead - sourceBytes;
    this.stats.sourcesUnread += this.sources.unread - unread;
    this.stats.learnNs += Number(process.hrtime.bigint() - t0);
  }

  /** The frame the kernel recorded, one object per code object and line (so callers may key by identity). */
  frame(kf: KernelFrame): Frame {
    const known = kf.codeId === 0 ? undefined : this.codes.get(kf.codeId);
    if (known) known.lastUsed = this.drainNo;
    const info = known?.info;
    if (!info) {
      if (!known) this.stats.faults.unreported++;
      return SYNTHETIC_FRAMES.unknownCode;
    }
    let frame = info.frames.get(kf.lasti);
    if (frame === undefined) {
      const unit = this.layout.frame.lastiIsPointer ? 2 : this.layout.frame.lastiUnitBytes;
      if (!info.lines) {
        info.lines = lineIndex(this.layout.code.lineTableFormat, info.lineTable!, info.frame.startLine, info.lineTableComplete);
        this.stats.lineTableBytes += info.lineTable!.length;
        info.lineTable = undefined;
      }
      const line = info.lines.line(kf.lasti * unit);
      frame = info.byLine.get(line);
      if (!frame) info.byLine.set(line, (frame = Object.freeze({ ...info.frame, line })));
      info.frames.set(kf.lasti, frame);
    }
    return frame;
  }

  /** Code objects named by a stack symbolized earlier, used again. */
  touch(codeIds: number[]): void {
    for (const id of codeIds) {
      const k = this.codes.get(id);
      if (k) k.lastUsed = this.drainNo;
    }
  }

  /** Marks the start of a drain: what its samples name is in use. */
  beginDrain(): void {
    this.drainNo++;
  }

  /**
   * The code objects no sample has named for `idleDrains` drains: the caller
   * makes the kernel forget them (a later sample reports them again), then
   * calls forget() with them a drain later, once no sample counted before
   * can name them any more.
   */
  idle(idleDrains: number): { code: bigint; codeId: number }[] {
    const idle: { code: bigint; codeId: number }[] = [];
    for (const [codeId, k] of this.codes) if (this.drainNo - k.lastUsed > idleDrains) idle.push({ code: k.code, codeId });
    return idle;
  }

  forget(ids: number[]): void {
    for (const id of ids) {
      const k = this.codes.get(id);
      // named again meanwhile: kept (the kernel reports it anew if it forgot it)
      if (k && this.drainNo - k.lastUsed > 1) this.codes.delete(id);
    }
  }

  /** Every code object the kernel reported for this process (to make it forget them all). */
  reported(): bigint[] {
    return [...new Set([...this.codes.values()].map((k) => k.code))];
  }

  get size(): number {
    return this.codes.size;
  }

  private dropLeastUsed(): void {
    const byUse = [...this.codes.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [id] of byUse.slice(0, byUse.length >> 1)) this.codes.delete(id);
  }

  private read(ev: CodeEvent): CodeInfo {
    const { layout: l, types } = this;
    const ptr = (k: IdentPtr) => ev.identPtrs[IDENT_PTRS.indexOf(k)]!;
    const int = (k: (typeof IDENT_INTS)[number]) => ev.identInts[IDENT_INTS.indexOf(k)]! | 0;
    if (ev.copies.every((c) => c.bytes.length === 0)) this.checkStillThere(ev);
    const str = (k: IdentPtr) => this.decode(ev, (mem) => readStr(mem, l, types, ptr(k)));
    const firstLineNo = int('firstlineno');
    const name = str('name');
    const filename = str('filename');
    const qualname = l.code.qualname >= 0 ? str('qualname') : this.sources.qualname(filename, firstLineNo, name);
    return {
      frame: { name: qualname, systemName: name, filename, startLine: firstLineNo },
      ...this.lineTable(ev, ptr('linetable')),
      lines: undefined,
      frames: new Map(),
      byLine: new Map(),
    };
  }

  /**
   * The line table; if it is longer than the kernel copied and the rest can
   * no longer be read (a module's code is freed as soon as its import is
   * done), the copied start of it: the frame keeps its name, and the lines
   * the start does not cover are 0.
   */
  private lineTable(ev: CodeEvent, addr: bigint): { lineTable: Buffer; lineTableComplete: boolean } {
    const { layout: l, types } = this;
    try {
      return { lineTable: this.decode(ev, (mem) => readBytes(mem, l, types, addr)), lineTableComplete: true };
    } catch (err) {
      const copy = ev.copies[IDENT_PTRS.indexOf('linetable')];
      if (!(err instanceof ObjectCheckError || err instanceof MemoryReadError) || !copy?.bytes.length) throw err;
      const start = readBytesStart(new Copies([copy]), l, types, addr, copy.bytes.length);
      this.stats.cutLineTables++;
      return { lineTable: start, lineTableComplete: false };
    }
  }

  /**
   * An object as the kernel copied it; if it goes on past the copy, as the
   * process has it now, checked afresh (alive, of its type) and against the
   * copy.
   */
  private decode<T>(ev: CodeEvent, read: (mem: Memory) => T): T {
    try {
      return read(new Copies(ev.copies));
    } catch (err) {
      if (!(err instanceof NotCopied)) throw err;
    }
    if (!this.mem) throw new MemoryReadError(this.pid, ev.code, 0, 'not copied whole, and the process is gone');
    this.stats.reads++;
    return read(new Checked(this.mem, ev.copies));
  }

  /**
   * Without copies the objects are read from the process now, some time
   * after the kernel saw them: only if the code object is still there, alive,
   * with the identity the kernel saw (then so are the objects it holds).
   */
  private checkStillThere(ev: CodeEvent): void {
    if (!this.mem) throw new MemoryReadError(this.pid, ev.code, 0, 'the process is gone');
    const c = this.layout.code;
    const offsets = [this.layout.object.refcnt, this.layout.object.type, ...IDENT_PTRS.map((k) => c[k]), ...IDENT_INTS.map((k) => c[k])];
    this.stats.reads++;
    const w = this.mem.read(ev.code, Math.max(...offsets) + 8);
    checkObject(w, this.layout, this.types.code, 'code object', ev.code);
    const same =
      IDENT_INTS.every((k, i) => c[k] < 0 || w.readUInt32LE(c[k]) === ev.identInts[i]) &&
      IDENT_PTRS.every((k, i) => c[k] < 0 || w.readBigUInt64LE(c[k]) === ev.identPtrs[i]);
    if (!same) throw new ObjectCheckError('identity', `code object at 0x${ev.code.toString(16)} is not the one the kernel saw`);
  }
}
