/**
 * Ingest's write-ahead log. A push is acknowledged once its rows are here
 * and on disk; storing them in ClickHouse happens later, in large batches
 * (commit.ts), so an INSERT's fixed cost is shared by hundreds of profiles
 * however few clients are waiting.
 *
 * The log is a directory of segment files. Pushes are appended to the open
 * segment in groups: whatever arrived while the previous group was being
 * written goes out in one write and one fdatasync, so a disk that takes 4 ms
 * per fsync still logs thousands of pushes a second. A segment is closed
 * (sealed) when the committer takes it as a batch; its name is the batch's
 * insert_deduplication_token, and it is deleted once the batch is stored.
 * At start-up every segment left is stored again with its token, so a batch
 * the engine had (partly) taken is not stored twice and one it had not is
 * completed.
 *
 * A sealed segment holds exactly the records that were on disk when it was
 * sealed (sealing waits for the group being written), so what a replay
 * inserts under a token is what the first attempt inserted under it.
 *
 * Record: magic u32 ("KLR2"; "KLR1" from before profile types) | payload length u32 | CRC-32 of the payload u32 | payload.
 * Payload: data rows u32 | dictionary rows u32 | data length u32 |
 * 4 dictionary lengths u32 | key (UInt128 LE) | data (RowBinary) | 4
 * dictionary bodies (TabSeparated, DICT_TABLES order). A torn or corrupt
 * record ends a segment: it was being written when the process died, so it
 * was never acknowledged.
 */

import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { DICT_TABLES, type DictTable } from './rows.js';
import { upgradeV3Rows } from './rowbinary.js';
import { CPU_TYPE_ID } from '../profile/profile-type.js';

/** One push as logged. */
export interface LogRecord {
  /** Idempotency key, UInt128 decimal. */
  key: string;
  /** kiln_ingest rows, RowBinary. */
  data: Uint8Array;
  dataRows: number;
  /** Dictionary rows this push brings, TabSeparated per table. */
  dict: Record<DictTable, Uint8Array>;
  dictRows: number;
}

/** Records since profile types ("KLR2"); "KLR1" records hold rows in schema v3's layout, upgraded when read. */
const MAGIC = 0x4b4c5232;
const MAGIC_V3_ROWS = 0x4b4c5231;
const FRAME_HEAD = 12;
const PAYLOAD_HEAD = 4 * 7 + 16;

/** A segment: the records of one batch, in log order. */
export class Segment {
  readonly records: LogRecord[] = [];
  rows = 0;
  bytes = 0;
  /** When its first record was appended (performance.now()). */
  since = 0;
  sealed = false;
  /** Sequence numbers of its first and last record (the log's, over all segments). */
  firstSeq = 0;
  lastSeq = 0;
  file: FileHandle | undefined;
  /** Bytes of the file known to be whole records. */
  goodBytes = 0;
  /** Writes in flight; sealing waits for them. */
  writing = 0;
  private idle: (() => void)[] = [];

  constructor(
    readonly token: string,
    readonly path: string,
  ) {}

  /** Resolves when no write to it is in flight. */
  settled(): Promise<void> {
    if (this.writing === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  wrote(): void {
    if (--this.writing === 0) for (const r of this.idle.splice(0)) r();
  }
}

interface Pending {
  segment: Segment;
  record: LogRecord;
  seq: number;
  frame: Uint8Array[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface LogStats {
  /** Groups written (one write and one fdatasync each). */
  groups: number;
  records: number;
  bytes: number;
  /** Time spent writing groups (write, fdatasync), ms. */
  writeMs: number;
}

export class IngestLog {
  private current: Segment | undefined;
  private pending: Pending[] = [];
  private writing = false;
  private seq = 0;
  private segments = 0;
  private readonly prefix = `${Date.now().toString(36).padStart(9, '0')}-${Math.random().toString(36).slice(2, 10).padEnd(8, '0')}`;
  readonly stats: LogStats = { groups: 0, records: 0, bytes: 0, writeMs: 0 };
  /** Bytes in segments not yet removed. */
  bytesOnDisk = 0;

  /** The directory is made when the first segment is (a service whose store never answers writes nothing). */
  private made = false;

  constructor(readonly dir: string) {}

  /** The sequence number of the last record appended so far. */
  get lastSeq(): number {
    return this.seq;
  }

  /** The segment records are appended to now, if any. */
  get open(): Segment | undefined {
    return this.current;
  }

  /**
   * Appends a record to the open segment. Resolves once it is on disk;
   * rejects if it could not be written (it is then in no segment).
   */
  append(record: LogRecord): { segment: Segment; seq: number; durable: Promise<void> } {
    let segment = this.current;
    if (!segment) {
      const token = `${this.prefix}-${String(this.segments++).padStart(8, '0')}`;
      segment = new Segment(token, join(this.dir, `${token}.log`));
      segment.since = performance.now();
      segment.firstSeq = this.seq + 1;
      this.current = segment;
    }
    const seq = ++this.seq;
    segment.lastSeq = seq;
    segment.records.push(record);
    segment.rows += record.dataRows + record.dictRows;
    const frame = encodeRecord(record);
    const size = frame.reduce((a, b) => a + b.length, 0);
    segment.bytes += size;
    segment.writing++;
    this.bytesOnDisk += size;
    const durable = new Promise<void>((resolve, reject) => this.pending.push({ segment, record, seq, frame, resolve, reject }));
    if (!this.writing) void this.writeGroups();
    return { segment, seq, durable };
  }

  /**
   * Closes the open segment for appends. Its records are all on disk once
   * its settled() resolves (a failed write takes its records out of it).
   */
  seal(): Segment | undefined {
    const s = this.current;
    if (!s) return undefined;
    this.current = undefined;
    s.sealed = true;
    return s;
  }

  /** One group at a time: everything appended meanwhile goes out in the next write. */
  private async writeGroups(): Promise<void> {
    this.writing = true;
    try {
      // The appends of this tick (a lookup round's pushes, in one loop) join
      // the first group: without it the first push went out alone and the
      // rest waited for a second write and fdatasync.
      await Promise.resolve();
      while (this.pending.length > 0) {
        const group = this.pending;
        this.pending = [];
        // A group may span a segment that was just sealed and the next one.
        const bySegment = new Map<Segment, Pending[]>();
        for (const p of group) {
          const list = bySegment.get(p.segment);
          if (list) list.push(p);
          else bySegment.set(p.segment, [p]);
        }
        const t0 = performance.now();
        await Promise.all([...bySegment].map(([s, list]) => this.writeTo(s, list)));
        this.stats.writeMs += performance.now() - t0;
        this.stats.groups++;
      }
    } finally {
      this.writing = false;
    }
  }

  private async writeTo(s: Segment, list: Pending[]): Promise<void> {
    const chunks = list.flatMap((p) => p.frame);
    const size = chunks.reduce((a, b) => a + b.length, 0);
    try {
      let created = false;
      if (!s.file) {
        if (!this.made) {
          await mkdir(this.dir, { recursive: true });
          this.made = true;
        }
        s.file = await open(s.path, 'wx');
        created = true;
      }
      await s.file.writev(chunks, s.goodBytes);
      await s.file.datasync();
      // A new file's name must be on disk too, or a crash could lose the whole segment.
      if (created) await syncDir(this.dir);
      s.goodBytes += size;
      this.stats.records += list.length;
      this.stats.bytes += size;
      for (const p of list) p.resolve();
    } catch (e) {
      // Not on disk: these records leave the segment, whose file is cut back to its whole records.
      const failed = new Set(list.map((p) => p.record));
      const keep = s.records.filter((r) => !failed.has(r));
      s.records.length = 0;
      s.records.push(...keep);
      s.rows -= list.reduce((a, p) => a + p.record.dataRows + p.record.dictRows, 0);
      s.bytes -= size;
      this.bytesOnDisk -= size;
      await s.file?.truncate(s.goodBytes).catch(() => {});
      for (const p of list) p.reject(e);
    } finally {
      for (let i = 0; i < list.length; i++) s.wrote();
    }
  }

  /** The batch is stored: its file goes. */
  async remove(s: Segment): Promise<void> {
    await s.file?.close().catch(() => {});
    s.file = undefined;
    this.bytesOnDisk -= s.bytes;
    await rm(s.path, { force: true });
  }

  /**
   * Takes the directory for this process: a second process (or a second
   * service in this one) storing and removing another's live segments could
   * leave acknowledged pushes only in a deleted file. A lock whose process is
   * gone (kill -9) is taken over.
   */
  async lock(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.made = true;
    const path = join(this.dir, 'lock');
    const mine = `${process.pid} ${this.prefix}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(path, mine, { flag: 'wx' });
        this.locked = path;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = Number((await readFile(path, 'utf8').catch(() => '')).split(' ')[0]);
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
        throw new Error(`the ingest log ${this.dir} is in use by process ${holder}${holder === process.pid ? ' (another service in this one)' : ''}; give each process its own --ingest-log`);
      }
      await rm(path, { force: true });
    }
    throw new Error(`cannot take the ingest log ${this.dir}`);
  }

  private locked: string | undefined;

  /** Segments an earlier run left, oldest first, with the records that were whole on disk. */
  async leftovers(): Promise<Segment[]> {
    // This process's own segments are live, not left over.
    const names = existsSync(this.dir) ? (await readdir(this.dir)).filter((n) => n.endsWith('.log') && !n.startsWith(this.prefix)).sort() : [];
    const out: Segment[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      const s = new Segment(name.slice(0, -'.log'.length), path);
      s.sealed = true;
      for (const r of decodeRecords(await readFile(path))) {
        s.records.push(r);
        s.rows += r.dataRows + r.dictRows;
        s.bytes += FRAME_HEAD + PAYLOAD_HEAD + r.data.length + DICT_TABLES.reduce((a, t) => a + r.dict[t].length, 0);
      }
      this.bytesOnDisk += s.bytes;
      if (s.records.length === 0) await rm(path, { force: true });
      else out.push(s);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.current?.settled();
    await this.current?.file?.close().catch(() => {});
    if (this.locked) await rm(this.locked, { force: true });
    this.locked = undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function encodeRecord(r: LogRecord): Uint8Array[] {
  const head = Buffer.alloc(FRAME_HEAD + PAYLOAD_HEAD);
  let p = FRAME_HEAD;
  head.writeUInt32LE(r.dataRows, p);
  head.writeUInt32LE(r.dictRows, p + 4);
  head.writeUInt32LE(r.data.length, p + 8);
  p += 12;
  for (const t of DICT_TABLES) {
    head.writeUInt32LE(r.dict[t].length, p);
    p += 4;
  }
  const key = BigInt(r.key);
  head.writeBigUInt64LE(key & 0xffff_ffff_ffff_ffffn, p);
  head.writeBigUInt64LE(key >> 64n, p + 8);
  // Empty parts are left out: zlib.crc32 of an empty view over a zero-length buffer (what
  // TextEncoder gives for '') answers 0, not the running value (Node 20.20).
  const parts = [head.subarray(FRAME_HEAD), r.data, ...DICT_TABLES.map((t) => r.dict[t])].filter((b) => b.length > 0);
  let crc = 0;
  let length = 0;
  for (const part of parts) {
    crc = crc32(part, crc);
    length += part.length;
  }
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(length, 4);
  head.writeUInt32LE(crc, 8);
  return [head, ...parts.slice(1)];
}

/** The whole records at the start of a segment file; reading stops at the first torn or corrupt one. */
export function decodeRecords(buf: Buffer): LogRecord[] {
  const out: LogRecord[] = [];
  let p = 0;
  while (p + FRAME_HEAD + PAYLOAD_HEAD <= buf.length) {
    const magic = buf.readUInt32LE(p);
    if (magic !== MAGIC && magic !== MAGIC_V3_ROWS) break;
    const length = buf.readUInt32LE(p + 4);
    const start = p + FRAME_HEAD;
    if (length < PAYLOAD_HEAD || start + length > buf.length) break;
    const payload = buf.subarray(start, start + length);
    if (crc32(payload) !== buf.readUInt32LE(p + 8)) break;
    const dataRows = payload.readUInt32LE(0);
    const dictRows = payload.readUInt32LE(4);
    const dataLen = payload.readUInt32LE(8);
    const dictLens = DICT_TABLES.map((_, i) => payload.readUInt32LE(12 + 4 * i));
    const key = (payload.readBigUInt64LE(28 + 8) << 64n) | payload.readBigUInt64LE(28);
    if (PAYLOAD_HEAD + dataLen + dictLens.reduce((a, b) => a + b, 0) !== length) break;
    let q = PAYLOAD_HEAD;
    let data: Uint8Array | undefined = payload.subarray(q, q + dataLen);
    // Logged by the version before profile types: its rows were all CPU.
    if (magic === MAGIC_V3_ROWS) data = upgradeV3Rows(data, dataRows, CPU_TYPE_ID);
    if (!data) break;
    q += dataLen;
    const dict = {} as Record<DictTable, Uint8Array>;
    DICT_TABLES.forEach((t, i) => {
      dict[t] = payload.subarray(q, q + dictLens[i]!);
      q += dictLens[i]!;
    });
    out.push({ key: key.toString(), data, dataRows, dict, dictRows });
    p = start + length;
  }
  return out;
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
