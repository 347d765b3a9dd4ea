/**
 * The agent's on-disk upload queue: every profile is written here before it
 * is sent, and removed only once ingest has taken it, so an unreachable
 * ingest or an agent restart loses nothing. Bounded in bytes; past the bound
 * the oldest profiles are dropped, and counted.
 *
 * The agent runs as root, and the directory may hold files it did not write
 * (or fill up), so: files are created with O_EXCL|O_NOFOLLOW (a planted
 * symlink is never followed, nothing outside the queue is ever written),
 * read with O_NOFOLLOW, and only regular files whose names the agent gives
 * are taken as queued profiles; anything else is left alone and counted. A
 * write that fails (a full disk) drops that profile, counted by reason, and
 * the queue goes on.
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readUpTo } from '../unwinder/proc.js';

export interface QueuedProfile {
  /**
   * file name stem; orders the queue, and is the profile's idempotency key at
   * ingest (with the host): a retried upload is stored once
   */
  id: string;
  /** query parameters for POST /api/v1/profiles */
  params: Record<string, string>;
  body: Buffer;
}

/** Why a profile was dropped from the queue (or never made it in). */
export type QueueDrop = 'queue_full' | 'no_space' | 'write_failed' | 'unreadable';

interface Entry {
  id: string;
  bytes: number;
}

/** <sequence, 12 digits>-<ms since 1970>-<12 hex digits>: the only names the agent writes. */
const ID = String.raw`(\d{12})-\d{1,16}-[0-9a-f]{12}`;
const QUEUED = new RegExp(`^${ID}\\.pb\\.gz$`);
const PARTIAL = new RegExp(`^${ID}\\.pb\\.gz\\.tmp$`);

/**
 * The largest sequence a name holds. A name found at it (planted, since the
 * agent would need a billion years to get there) does not push later names to
 * 13 digits, which a later start would not take as the agent's: the sequence
 * stays there and the queue's order falls to the names' times.
 */
const MAX_SEQ = 10 ** 12 - 1;

/** Errors that mean the disk (or the agent's quota) is full. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Creates `path` and writes `data` to it: never through a symlink, never over
 * an existing file (O_CREAT|O_EXCL|O_NOFOLLOW). On failure nothing it
 * created is left behind.
 */
export function writeNewFile(path: string, data: Buffer): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
    closeSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(path);
    throw err;
  }
}

export class DiskQueue {
  private entries: Entry[] = [];
  private totalBytes = 0;
  private seq = 0;
  /** profiles dropped, by reason */
  readonly dropped = new Map<QueueDrop, number>();
  /** entries in the directory that are not the agent's (left alone), and the first few names */
  foreign = 0;
  readonly foreignNames: string[] = [];

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // what an earlier run left: send it first, oldest first
    for (const f of readdirSync(dir).sort()) {
      const path = join(dir, f);
      let st;
      try {
        st = lstatSync(path);
      } catch {
        continue; // gone meanwhile
      }
      // a write cut short (or something planted where the agent writes): never a whole profile
      if (PARTIAL.test(f) && !st.isDirectory() && removed(path)) continue;
      const queued = QUEUED.exec(f);
      if (queued && st.isFile()) {
        this.entries.push({ id: f.slice(0, -'.pb.gz'.length), bytes: st.size });
        this.totalBytes += st.size;
        this.seq = Math.max(this.seq, Number(queued[1]) + 1);
      } else if (this.foreign++ < 5) {
        this.foreignNames.push(f);
      }
    }
  }

  get length(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Queues a profile; if it cannot be written, it is dropped and the reason is returned (and counted). */
  push(params: Record<string, string>, body: Buffer): QueueDrop | undefined {
    // The random part keeps ids apart across agent restarts and hosts that share a name.
    const id = `${String(Math.min(this.seq++, MAX_SEQ)).padStart(12, '0')}-${Date.now()}-${randomBytes(6).toString('hex')}`;
    const meta = Buffer.from(JSON.stringify(params));
    const record = Buffer.concat([lengthPrefix(meta.length), meta, body]);
    if (record.length > this.maxBytes) return this.drop('queue_full');
    const path = join(this.dir, `${id}.pb.gz`);
    try {
      // write then rename: a crash never leaves half a profile in the queue
      writeNewFile(path + '.tmp', record);
      renameSync(path + '.tmp', path);
    } catch (err) {
      removed(path + '.tmp'); // if the rename failed; a failed write has cleaned up already
      return this.drop(NO_SPACE.has((err as NodeJS.ErrnoException).code ?? '') ? 'no_space' : 'write_failed');
    }
    this.entries.push({ id, bytes: record.length });
    this.totalBytes += record.length;
    while (this.totalBytes > this.maxBytes && this.entries.length > 1) {
      this.remove(this.entries[0]!.id);
      this.drop('queue_full');
    }
    return undefined;
  }

  /** The oldest profile that can be read; ones that cannot are dropped (counted as unreadable). */
  oldest(): QueuedProfile | undefined {
    while (this.entries.length) {
      const e = this.entries[0]!;
      const read = this.read(e.id);
      if (read) return read;
      this.remove(e.id);
      this.drop('unreadable');
    }
    return undefined;
  }

  remove(id: string): void {
    removed(join(this.dir, `${id}.pb.gz`));
    const at = this.entries.findIndex((e) => e.id === id);
    if (at >= 0) {
      this.totalBytes -= this.entries[at]!.bytes;
      this.entries.splice(at, 1);
    }
  }

  private drop(reason: QueueDrop): QueueDrop {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    return reason;
  }

  /** A queued file, if it is still a regular file holding a record the agent writes. */
  private read(id: string): QueuedProfile | undefined {
    let fd: number;
    try {
      fd = openSync(join(this.dir, `${id}.pb.gz`), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > this.maxBytes) return undefined;
      const raw = readUpTo(fd, this.maxBytes, st.size);
      if (raw.length < 4 || raw.length > this.maxBytes) return undefined;
      const n = raw.readUInt32LE(0);
      if (n > raw.length - 4) return undefined;
      const params: unknown = JSON.parse(raw.subarray(4, 4 + n).toString());
      if (!params || typeof params !== 'object' || Array.isArray(params)) return undefined;
      if (!Object.values(params).every((v) => typeof v === 'string')) return undefined;
      return { id, params: params as Record<string, string>, body: raw.subarray(4 + n) };
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
  }
}

/** Unlinks a file (a symlink itself, never its target); false if it cannot be. */
function removed(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
