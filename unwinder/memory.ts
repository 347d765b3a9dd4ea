import { closeSync, openSync, readSync } from 'node:fs';

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

/**
 * Reads a live process's memory through /proc/PID/mem, without stopping it.
 * Needs ptrace access to the target (root or CAP_SYS_PTRACE); never writes.
 */
export class ProcessMemory {
  private fd: number;
  /** bytes read so far (callers bound each read; this is what they add up to) */
  bytesRead = 0;

  constructor(readonly pid: number) {
    this.fd = openSync(`/proc/${pid}/mem`, 'r');
  }

  read(address: bigint, length: number): Buffer {
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
