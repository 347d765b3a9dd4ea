/**
 * The agent's disk queue on a small tmpfs of its own (mounted here, as root,
 * and unmounted after), with what may be found in a queue directory: files
 * the agent did not write (junk names, symlinks named like its profiles and
 * like its partial writes, dangling or pointing outside), a profile left by
 * an earlier run, and a disk that fills up. Nothing outside the queue is ever
 * written, every profile pushed is either in the queue or counted as dropped,
 * and the queue never stops working.
 */
import { existsSync, mkdirSync, readFileSync, lstatSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskQueue, writeNewFile, type QueueDrop } from '../agent/queue.js';
import { tempDir } from '../kit/harness.js';
import { mountQueueDisk, PRECIOUS, type QueueDisk } from '../kit/agent-kit.js';

/** A record as the agent writes it: a length-prefixed JSON of parameters, then the body. */
function record(params: Record<string, string>, body: Buffer): Buffer {
  const meta = Buffer.from(JSON.stringify(params));
  const n = Buffer.alloc(4);
  n.writeUInt32LE(meta.length);
  return Buffer.concat([n, meta, body]);
}

function dropped(q: DiskQueue): number {
  return [...q.dropped.values()].reduce((a, b) => a + b, 0);
}

describe('the disk queue, on a small tmpfs', () => {
  const tmp = tempDir();
  let disk: QueueDisk;
  let mnt: string, queue: string, outside: string, target: string;

  beforeAll(() => {
    disk = mountQueueDisk(tmp.dir, '256k', 'kiln-queue-test');
    ({ mnt, queue, outside, precious: target } = disk);
  });

  afterAll(() => {
    disk?.unmount();
    tmp.cleanup();
  });

  it('creates files only where nothing is: a planted symlink, dangling or not, is never written through', () => {
    const planted = join(queue, 'planted.tmp');
    symlinkSync(target, planted);
    expect(() => writeNewFile(planted, Buffer.from('profile'))).toThrow(/EEXIST/);
    unlinkSync(planted);
    symlinkSync(join(outside, 'not-yet'), planted);
    expect(() => writeNewFile(planted, Buffer.from('profile'))).toThrow(/EEXIST/);
    unlinkSync(planted);
    expect(existsSync(join(outside, 'not-yet'))).toBe(false);
    expect(readFileSync(target, 'utf8')).toBe(PRECIOUS);
  });

  it('keeps every name its own when the largest found is the last sequence there is', () => {
    const dir = join(mnt, 'queue-last-seq');
    mkdirSync(dir);
    const last = '999999999999-1700000000000-0123456789ab';
    writeFileSync(join(dir, `${last}.pb.gz`), record({ service: 'planted' }, Buffer.from('body')));
    const q = new DiskQueue(dir, 1 << 20);
    expect(q.push({ service: 'svc', n: '1' }, Buffer.from('a'))).toBeUndefined();
    // at the last sequence, names order by their millisecond: the next one in a later one
    for (const t = Date.now(); Date.now() === t; );
    expect(q.push({ service: 'svc', n: '2' }, Buffer.from('b'))).toBeUndefined();
    // a later start takes all three as queued profiles, oldest first
    const again = new DiskQueue(dir, 1 << 20);
    expect(again.foreign).toBe(0);
    expect(again.length).toBe(3);
    const order: string[] = [];
    for (let item = again.oldest(); item; item = again.oldest()) {
      order.push(item.params.n ?? item.params.service!);
      again.remove(item.id);
    }
    expect(order).toEqual(['planted', '1', '2']);
    rmSync(dir, { recursive: true });
  });

  it('starts whatever the directory holds, takes only its own files, and counts every profile until the disk is full and after', () => {
    const before = '000000000041-1700000000000-0123456789ab';
    writeFileSync(join(queue, `${before}.pb.gz`), record({ service: 'from-before' }, Buffer.from('body')));
    // what the agent did not write
    writeFileSync(join(queue, 'junk.pb.gz'), 'junk');
    writeFileSync(join(queue, 'NaN-1-zz.pb.gz'), 'junk');
    symlinkSync(join(outside, 'gone'), join(queue, '000000000090-1700000000000-aaaaaaaaaaaa.pb.gz')); // dangling
    symlinkSync(target, join(queue, '000000000091-1700000000000-bbbbbbbbbbbb.pb.gz'));
    mkdirSync(join(queue, '000000000092-1700000000000-cccccccccccc.pb.gz'));
    // partial writes (a crash), and symlinks planted where the agent writes them
    writeFileSync(join(queue, '000000000040-1700000000000-dddddddddddd.pb.gz.tmp'), 'half');
    symlinkSync(target, join(queue, '000000000042-1700000000000-eeeeeeeeeeee.pb.gz.tmp'));
    symlinkSync(join(outside, 'gone'), join(queue, '000000000043-1700000000000-ffffffffffff.pb.gz.tmp'));

    const q = new DiskQueue(queue, 64 << 20);
    expect(q.length).toBe(1);
    expect(q.foreign).toBe(5);
    const left = readdirSync(queue).sort();
    expect(left.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(q.oldest()?.params).toEqual({ service: 'from-before' });
    q.remove(before);

    // fill the disk: every push is queued or dropped as no_space, and the queue goes on
    const body = Buffer.alloc(20 * 1024, 7);
    let pushed = 0;
    let noSpace = 0;
    const reasons = new Set<QueueDrop | undefined>();
    for (let i = 0; i < 30; i++) {
      const r = q.push({ service: 'svc', n: String(i) }, body);
      pushed++;
      reasons.add(r);
      if (r === 'no_space') noSpace++;
    }
    expect(noSpace).toBeGreaterThan(0);
    expect(q.dropped.get('no_space')).toBe(noSpace);
    expect(q.length + dropped(q)).toBe(pushed);
    // no partial write left behind, and the ids continue after the largest valid one
    const files = readdirSync(queue);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const ids = files.filter((f) => /^\d{12}-/.test(f) && lstatSync(join(queue, f)).isFile()).map((f) => Number(f.slice(0, 12)));
    expect(Math.min(...ids)).toBe(42);
    expect(new Set(ids).size).toBe(q.length);

    // room again: sending (removing) the oldest makes writes succeed
    for (let i = 0; i < 3; i++) q.remove(q.oldest()!.id);
    expect(q.push({ service: 'svc', n: 'after' }, body)).toBeUndefined();

    // a queued file replaced by a symlink, or by garbage, is dropped as unreadable, not followed
    const first = q.oldest()!.id;
    unlinkSync(join(queue, `${first}.pb.gz`));
    symlinkSync(target, join(queue, `${first}.pb.gz`));
    const unreadable = q.dropped.get('unreadable') ?? 0;
    const next = q.oldest()!;
    expect(next.id).not.toBe(first);
    writeFileSync(join(queue, `${next.id}.pb.gz`), Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2]));
    expect(q.oldest()!.id).not.toBe(next.id);
    expect(q.dropped.get('unreadable')).toBe(unreadable + 2);

    // nothing outside the queue was touched
    expect(readFileSync(target, 'utf8')).toBe(PRECIOUS);
    expect(readdirSync(outside)).toEqual(['precious']);
    rmSync(join(queue, '000000000092-1700000000000-cccccccccccc.pb.gz'), { recursive: true });
  });
});
