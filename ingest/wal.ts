/**
 * Ingest's write-ahead log: each batch is written to a file before its
 * INSERTs and removed once they all succeeded. A batch found here at start-up
 * (the process died mid-batch) is inserted again with the same
 * insert_deduplication_token, so whatever part of it reached the tables is
 * not stored twice and whatever did not is completed: every profile of the
 * batch ends up stored exactly once, acknowledged or not.
 *
 * File: a 4-byte length, a JSON header, then the TabSeparated bodies, one
 * segment per profile and table, in header order.
 */

import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DictTable } from './rows.js';
import { DICT_TABLES } from './rows.js';

export interface WalBatch {
  token: string;
  /** Per profile, in batch order: its kiln_ingest rows and its dictionary rows per table. */
  parts: { data: Uint8Array; dict: Record<DictTable, Uint8Array> }[];
}

interface Header {
  token: string;
  data: number[];
  dict: Record<DictTable, number[]>;
}

export class Wal {
  constructor(readonly dir: string) {}

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  private path(token: string): string {
    return join(this.dir, `${token}.wal`);
  }

  async write(b: WalBatch): Promise<void> {
    const header: Header = {
      token: b.token,
      data: b.parts.map((p) => p.data.length),
      dict: Object.fromEntries(DICT_TABLES.map((t) => [t, b.parts.map((p) => p.dict[t].length)])) as Record<DictTable, number[]>,
    };
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length);
    const chunks: Uint8Array[] = [len, json];
    for (const p of b.parts) {
      chunks.push(p.data);
      for (const t of DICT_TABLES) chunks.push(p.dict[t]);
    }
    const path = this.path(b.token);
    // Write, then rename: a batch file is whole or absent.
    await writeFile(`${path}.tmp`, chunks);
    await rename(`${path}.tmp`, path);
  }

  async remove(token: string): Promise<void> {
    await rm(this.path(token), { force: true });
  }

  /** The batches a previous run left, oldest first. */
  async pending(): Promise<WalBatch[]> {
    const names = (await readdir(this.dir)).sort();
    const out: WalBatch[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        await rm(path, { force: true });
        continue;
      }
      if (!name.endsWith('.wal')) continue;
      const raw = await readFile(path);
      const n = raw.readUInt32LE(0);
      const h = JSON.parse(raw.subarray(4, 4 + n).toString('utf8')) as Header;
      let pos = 4 + n;
      const take = (len: number): Uint8Array => {
        const s = raw.subarray(pos, pos + len);
        pos += len;
        return s;
      };
      const parts = h.data.map((len, i) => {
        const data = take(len);
        const dict = {} as Record<DictTable, Uint8Array>;
        for (const t of DICT_TABLES) dict[t] = take(h.dict[t][i] ?? 0);
        return { data, dict };
      });
      out.push({ token: h.token, parts });
    }
    return out;
  }
}
