/**
 * An ingest log written by the version before profile types ("KLR1" records,
 * rows without a type and with 32-bit values) is read back in today's row
 * layout, as CPU: a restart after the upgrade stores what was acknowledged.
 */

import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CPU_TYPE_ID } from '../profile/profile-type.js';
import { readIngestRows, upgradeV3Rows } from '../ingest/rowbinary.js';
import { decodeRecords } from '../ingest/wal.js';

/** Schema v3's kiln_ingest rows, written out byte by byte. */
function v3Rows(service: string): { data: Uint8Array; rows: number } {
  const b: number[] = [];
  const u32 = (n: number): void => void b.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  const str = (s: string): void => {
    const x = Buffer.from(s);
    b.push(x.length, ...x);
  };
  const zeros = (n: number): void => void b.push(...new Array<number>(n).fill(0));
  for (const [lh, sh, v] of [
    [3, 4, 7],
    [5, 6, 0xfffffff0],
  ] as const) {
    b.push(0);
    str(service);
    u32(1_700_000_000);
    u32(lh), u32(0), u32(sh), u32(0), u32(v);
    zeros(1 + 8 + 8 + 8 + 4 + 1 + 16);
  }
  b.push(1);
  str(service);
  u32(1_700_000_000);
  zeros(20);
  b.push(1);
  str('host');
  str('h1');
  u32(10), u32(0), u32(100), u32(0), u32(9), u32(0), u32(2);
  str('pprof');
  u32(42), zeros(12);
  return { data: Uint8Array.from(b), rows: 3 };
}

describe('ingest log from before profile types', () => {
  it('upgrades schema v3 rows to typed rows with 64-bit values', () => {
    const { data, rows } = v3Rows('svc');
    const up = upgradeV3Rows(data, rows, CPU_TYPE_ID)!;
    const read = readIngestRows(up, rows, 'svc');
    expect(read.map((r) => [r.kind, r.type, r.ts, r.labelsHash, r.stackHash, r.value])).toEqual([
      [0, CPU_TYPE_ID, 1_700_000_000, '3', '4', 7],
      [0, CPU_TYPE_ID, 1_700_000_000, '5', '6', 0xfffffff0],
      [1, CPU_TYPE_ID, 1_700_000_000, '0', '0', 0],
    ]);
    expect(read[2]).toMatchObject({ series: [['host', 'h1']], durationNs: 10n, periodNs: 100n, samples: 9n, rows: 2, source: 'pprof', key: '42' });
    // Cut short anywhere, or with a byte too many: refused, never misread.
    for (const n of [1, 17, data.length - 1]) expect(upgradeV3Rows(data.subarray(0, n), rows, CPU_TYPE_ID)).toBeUndefined();
    expect(upgradeV3Rows(Uint8Array.from([...data, 0]), rows, CPU_TYPE_ID)).toBeUndefined();
  });

  it('reads a KLR1 record of a log as typed rows', () => {
    const { data, rows } = v3Rows('svc');
    const head = Buffer.alloc(4 * 7 + 16);
    head.writeUInt32LE(rows, 0);
    head.writeUInt32LE(0, 4);
    head.writeUInt32LE(data.length, 8);
    head.writeBigUInt64LE(42n, 28);
    const payload = Buffer.concat([head, data]);
    const frame = Buffer.alloc(12);
    frame.writeUInt32LE(0x4b4c5231, 0);
    frame.writeUInt32LE(payload.length, 4);
    frame.writeUInt32LE(crc32(payload), 8);
    const [rec] = decodeRecords(Buffer.concat([frame, payload]));
    expect(rec?.key).toBe('42');
    expect(readIngestRows(rec!.data, rec!.dataRows, 'svc').map((r) => r.type)).toEqual([CPU_TYPE_ID, CPU_TYPE_ID, CPU_TYPE_ID]);
  });
});
