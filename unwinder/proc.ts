/** Reading /proc: memory maps, process identity, thread names. */
import { readFileSync, readdirSync } from 'node:fs';

export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  inode: number;
  /** path as the reading process sees it (for a chrooted target: the host path) */
  path: string;
}

export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    // start-end perms offset dev inode path (path may contain spaces)
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: BigInt('0x' + m[1]),
      end: BigInt('0x' + m[2]),
      perms: m[3]!,
      offset: BigInt('0x' + m[4]),
      inode: Number(m[5]),
      path: m[6] ?? '',
    });
  }
  return out;
}

export function readMaps(pid: number): Mapping[] {
  return parseMaps(readFileSync(`/proc/${pid}/maps`, 'utf8'));
}

/** Process start time in clock ticks since boot: with the pid, it names one process for its whole life. */
export function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
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
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The environment variable `name` of a process, if readable. */
export function environOf(pid: number, name: string): string | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'latin1');
    for (const kv of env.split('\0')) if (kv.startsWith(name + '=')) return kv.slice(name.length + 1);
  } catch {
    /* gone, or not ours to read */
  }
  return undefined;
}

export function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}
