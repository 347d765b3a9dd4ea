/**
 * What the agent's tests share: JSON from a running `kiln serve`, polling for
 * a condition with a deadline (never a fixed sleep), and a queue directory on
 * a small tmpfs of its own beside a file that must never be written through.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** GET `url` as JSON; throws with the body on a non-2xx answer. */
export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every 250 ms until it returns true; throws naming `what` after `ms`. */
export async function until(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(250);
  }
}

export interface QueueDisk {
  /** the tmpfs's mount point */
  mnt: string;
  /** the queue directory on it */
  queue: string;
  /** a directory beside it, off the tmpfs */
  outside: string;
  /** a file in `outside` whose content is PRECIOUS until the end */
  precious: string;
  unmount(): void;
}

export const PRECIOUS = "not the agent's\n";

/** Mounts a tmpfs of `size` (e.g. 256k) under `dir` (as root) with an empty queue directory on it. */
export function mountQueueDisk(dir: string, size: string, name: string): QueueDisk {
  const mnt = join(dir, 'mnt');
  const outside = join(dir, 'outside');
  const precious = join(outside, 'precious');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, name, mnt]);
  let mounted = true;
  const queue = join(mnt, 'queue');
  mkdirSync(queue);
  mkdirSync(outside);
  writeFileSync(precious, PRECIOUS);
  return {
    mnt,
    queue,
    outside,
    precious,
    unmount() {
      if (mounted) execFileSync('umount', [mnt]);
      mounted = false;
    },
  };
}
