/**
 * Reading /proc: memory maps, process identity, thread names. A process
 * shapes what these files hold (its maps, command line, environment), so each
 * is read up to a bound.
 */
import { closeSync, openSync, readSync, readdirSync } from 'node:fs';

/**
 * Up to maxBytes + 1 bytes of an open file, from its start: a result longer
 * than maxBytes says the file goes on past the bound.
 */
export function readUpTo(fd: number, maxBytes: number, sizeHint = 4096): Buffer {
  let buf = Buffer.allocUnsafe(Math.min(maxBytes, Math.max(sizeHint, 4096)) + 1);
  let done = 0;
  for (;;) {
    if (done === buf.length) {
      if (done > maxBytes) return buf;
      const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, buf.length * 2));
      buf.copy(bigger, 0, 0, done);
      buf = bigger;
    }
    const n = readSync(fd, buf, done, buf.length - done, null);
    if (n === 0) return buf.subarray(0, done);
    done += n;
  }
}

/** The start of a /proc file, at most maxBytes of it, as UTF-8 (`cut`: it went on). */
export function readProcFile(path: string, maxBytes: number): { text: string; cut: boolean } {
  const fd = openSync(path, 'r');
  try {
    const b = readUpTo(fd, maxBytes);
    return { text: b.toString('utf8', 0, Math.min(b.length, maxBytes)), cut: b.length > maxBytes };
  } finally {
    closeSync(fd);
  }
}

/** Bounds on what is read of a process's /proc files (a Python process's maps are ~100 KB). */
export const MAX_MAPS_BYTES = 8 << 20;
const MAX_CMDLINE_BYTES = 64 << 10;
const MAX_ENVIRON_BYTES = 256 << 10;
export const MAX_SMALL_BYTES = 64 << 10;

export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  /** device of the mapped file, major and minor */
  major: number;
  minor: number;
  inode: number;
  /** path as the reading process sees it (for a chrooted target: the host path) */
  path: string;
}

export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    // start-end perms offset dev inode path (path may contain spaces)
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: BigInt('0x' + m[1]),
      end: BigInt('0x' + m[2]),
      perms: m[3]!,
      offset: BigInt('0x' + m[4]),
      major: parseInt(m[5]!, 16),
      minor: parseInt(m[6]!, 16),
      inode: Number(m[7]),
      path: m[8] ?? '',
    });
  }
  return out;
}

/** A process whose /proc files are larger than Kiln reads. */
export class ProcTooLargeError extends Error {}

export function readMaps(pid: number): Mapping[] {
  const { text, cut } = readProcFile(`/proc/${pid}/maps`, MAX_MAPS_BYTES);
  if (cut) throw new ProcTooLargeError(`pid ${pid}: its memory maps are larger than the ${MAX_MAPS_BYTES >> 20} MiB Kiln reads`);
  return parseMaps(text);
}

/**
 * The fields of a /proc stat file (/proc/PID/stat, /proc/PID/task/TID/stat)
 * after the command name: field N of proc(5) is at index N - 3.
 */
export function statFields(path: string): string[] {
  const stat = readProcFile(path, MAX_SMALL_BYTES).text;
  // comm may contain spaces and parentheses: fields start after the last ')'
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU time a process (or a task's stat file) has used, utime + stime, in ms (USER_HZ = 100). */
export function cpuMsOf(path: string): number {
  const f = statFields(path);
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // fields 14 and 15
}

/** Process start time in clock ticks since boot: with the pid, it names one process for its whole life. */
export function startTime(pid: number): number | undefined {
  try {
    return Number(statFields(`/proc/${pid}/stat`)[19]);
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  return startTime(pid) !== undefined;
}

export function listPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

export function commOf(pid: number, tid = pid): string {
  try {
    return readProcFile(`/proc/${pid}/task/${tid}/comm`, 64).text.trim();
  } catch {
    return '';
  }
}

/** The environment variable `name` of a process, if readable. */
export function environOf(pid: number, name: string): string | undefined {
  try {
    const env = readProcFile(`/proc/${pid}/environ`, MAX_ENVIRON_BYTES).text;
    for (const kv of env.split('\0')) if (kv.startsWith(name + '=')) return kv.slice(name.length + 1);
  } catch {
    /* gone, or not ours to read */
  }
  return undefined;
}

export function cmdlineOf(pid: number): string[] {
  try {
    return readProcFile(`/proc/${pid}/cmdline`, MAX_CMDLINE_BYTES).text.split('\0').filter(Boolean);
  } catch {
    return [];
  }
}
