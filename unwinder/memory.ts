import { closeSync, openSync, readSync } from 'node:fs';
import { readMaps, type Mapping } from './proc.js';

/** A read of another process's memory failed: the address is unmapped, or the process is gone. */
export class MemoryReadError extends Error {
  constructor(
    readonly pid: number,
    readonly address: bigint,
    readonly length: number,
    cause: unknown,
  ) {
    super(`cannot read ${length} bytes at 0x${address.toString(16)} in pid ${pid}: ${String((cause as Error)?.message ?? cause)}`);
  }
}

/** A file as /proc/PID/maps names it: device and inode. */
export interface FileId {
  major: number;
  minor: number;
  inode: number;
}

/** How often a process's maps may be read again to find an address not in the ones known. */
const MAPS_REFRESH_MS = 1000;

/**
 * Where Kiln reads a process's objects from: its anonymous memory (heap,
 * arenas, stacks) and its interpreter image (static objects), where every
 * object it names lives. Nothing backed by another file: a page of a file on
 * FUSE (served by a process, perhaps the target itself) could block the read
 * for ever. (Anonymous memory a process registers with userfaultfd cannot:
 * unprivileged userfaultfd handles only faults from user mode.)
 */
export class ReadableRegions {
  private ranges: { start: bigint; end: bigint }[] = [];
  private readAt = -Infinity;

  constructor(
    readonly pid: number,
    readonly image: FileId,
    maps?: Mapping[],
  ) {
    if (maps) this.learn(maps);
  }

  /** Whether [address, address + length) lies in such memory; the maps are read again (at most once a second) to find it. */
  allows(address: bigint, length: number): boolean {
    if (this.covers(address, length)) return true;
    if (performance.now() - this.readAt < MAPS_REFRESH_MS) return false;
    try {
      this.learn(readMaps(this.pid));
    } catch {
      return false;
    }
    return this.covers(address, length);
  }

  private learn(maps: Mapping[]): void {
    this.readAt = performance.now();
    const { major, minor, inode } = this.image;
    const ok = maps.filter((m) => m.inode === 0 || (m.inode === inode && m.major === major && m.minor === minor)).sort((a, b) => (a.start < b.start ? -1 : 1));
    // adjacent ones merged, so a read across two of them is allowed
    const ranges: { start: bigint; end: bigint }[] = [];
    for (const m of ok) {
      const last = ranges.at(-1);
      if (last && last.end === m.start) last.end = m.end;
      else ranges.push({ start: m.start, end: m.end });
    }
    this.ranges = ranges;
  }

  private covers(address: bigint, length: number): boolean {
    const end = address + BigInt(length);
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.ranges[mid]!;
      if (address < r.start) hi = mid - 1;
      else if (address >= r.end) lo = mid + 1;
      else return end <= r.end;
    }
    return false;
  }
}

/**
 * Reads a live process's memory through /proc/PID/mem, without stopping it.
 * Needs ptrace access to the target (root or CAP_SYS_PTRACE); never writes.
 * With `regions`, only from those (see ReadableRegions).
 */
export class ProcessMemory {
  private fd: number;
  /** bytes read so far (callers bound each read; this is what they add up to) */
  bytesRead = 0;

  constructor(
    readonly pid: number,
    private readonly regions?: ReadableRegions,
  ) {
    this.fd = openSync(`/proc/${pid}/mem`, 'r');
  }

  read(address: bigint, length: number): Buffer {
    if (this.regions && !this.regions.allows(address, length))
      throw new MemoryReadError(this.pid, address, length, 'not in its anonymous memory or interpreter image');
    this.bytesRead += length;
    const buf = Buffer.alloc(length);
    let done = 0;
    try {
      while (done < length) {
        // positions above 2^53 never occur on x86-64 user addresses (47 bits)
        const n = readSync(this.fd, buf, done, length - done, Number(address) + done);
        if (n === 0) throw new Error('short read');
        done += n;
      }
    } catch (err) {
      throw new MemoryReadError(this.pid, address, length, err);
    }
    return buf;
  }

  u64(address: bigint): bigint {
    return this.read(address, 8).readBigUInt64LE(0);
  }

  i64(address: bigint): bigint {
    return this.read(address, 8).readBigInt64LE(0);
  }

  i32(address: bigint): number {
    return this.read(address, 4).readInt32LE(0);
  }

  u32(address: bigint): number {
    return this.read(address, 4).readUInt32LE(0);
  }

  close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}
