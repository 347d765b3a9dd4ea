/**
 * The agent's on-disk upload queue: every profile is written here before it
 * is sent, and removed only once ingest has taken it, so an unreachable
 * ingest or an agent restart loses nothing. Bounded in bytes; past the bound
 * the oldest profiles are dropped, and counted.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

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

interface Entry {
  id: string;
  bytes: number;
}

export class DiskQueue {
  private entries: Entry[] = [];
  private seq = 0;
  dropped = 0;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {
    mkdirSync(dir, { recursive: true });
    // what an earlier run left: send it first, oldest first
    for (const f of readdirSync(dir).sort()) {
      if (f.endsWith('.tmp')) rmSync(join(dir, f), { force: true });
      else if (f.endsWith('.pb.gz')) {
        const id = f.slice(0, -'.pb.gz'.length);
        this.entries.push({ id, bytes: statSync(join(dir, f)).size });
        this.seq = Math.max(this.seq, Number(id.split('-')[0]) + 1);
      }
    }
  }

  get length(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.entries.reduce((n, e) => n + e.bytes, 0);
  }

  push(params: Record<string, string>, body: Buffer): void {
    // The random part keeps ids apart across agent restarts and hosts that share a name.
    const id = `${String(this.seq++).padStart(12, '0')}-${Date.now()}-${randomBytes(6).toString('hex')}`;
    const meta = JSON.stringify(params);
    const record = Buffer.concat([lengthPrefix(meta), Buffer.from(meta), body]);
    const path = join(this.dir, `${id}.pb.gz`);
    // write then rename: a crash never leaves half a profile in the queue
    writeFileSync(path + '.tmp', record);
    renameSync(path + '.tmp', path);
    this.entries.push({ id, bytes: record.length });
    while (this.bytes > this.maxBytes && this.entries.length > 1) {
      this.remove(this.entries[0]!.id);
      this.dropped++;
    }
  }

  oldest(): QueuedProfile | undefined {
    while (this.entries.length) {
      const e = this.entries[0]!;
      try {
        const raw = readFileSync(join(this.dir, `${e.id}.pb.gz`));
        const n = raw.readUInt32LE(0);
        const params = JSON.parse(raw.subarray(4, 4 + n).toString()) as Record<string, string>;
        return { id: e.id, params, body: raw.subarray(4 + n) };
      } catch {
        this.remove(e.id); // unreadable: nothing to send
        this.dropped++;
      }
    }
    return undefined;
  }

  remove(id: string): void {
    rmSync(join(this.dir, `${id}.pb.gz`), { force: true });
    this.entries = this.entries.filter((e) => e.id !== id);
  }
}

function lengthPrefix(s: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(Buffer.byteLength(s));
  return b;
}
