/**
 * Files a profiled process names (its sources, through co_filename; the
 * images it maps), opened the way the process itself would see them and no
 * further: the agent runs as root, the process may be hostile, and a name it
 * chose must never make the agent read a file outside the process's root,
 * block on a FIFO or a device, read without end, or read what the process
 * itself could not.
 *
 * - Names resolve inside the process's root with openat2(RESOLVE_IN_ROOT):
 *   `..` stops at that root and symlinks (absolute ones included) resolve
 *   inside it, as they would for the process; /proc magic links are refused.
 * - Resolved to an O_PATH handle first and checked with fstat (regular files
 *   only, of at most the caller's size) before anything is opened for
 *   reading: opening a device or a FIFO can itself act. Then reopened
 *   through /proc/self/fd, the same inode, for reading.
 * - Files of pseudo filesystems (proc, sysfs, ...) and FUSE are refused:
 *   their "regular" files may block or never end, and a FUSE daemon can be
 *   the hostile process itself.
 * - Sources must be readable by the process's own fs uid and groups (the
 *   permission bits; ACLs and capabilities aside).
 */
import { closeSync, fstatSync, openSync, type Stats } from 'node:fs';
import { isAbsolute } from 'node:path';
import koffi from 'koffi';
import { MAX_SMALL_BYTES, readProcFile, readUpTo } from './proc.js';

/** Why a file was not read: each is counted, none is fatal. */
export type FileRefusal = 'missing' | 'not_regular' | 'too_large' | 'filesystem' | 'permission' | 'changed';

export class TargetFileError extends Error {
  constructor(
    readonly reason: FileRefusal,
    message: string,
  ) {
    super(message);
  }
}

const SYS_openat2 = 437; // x86-64
const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_IN_ROOT = 0x10;
const OPEN_HOW_SIZE = 24; // struct open_how { u64 flags, mode, resolve }
const STATFS_SIZE = 120; // struct statfs on x86-64; f_type is its first field

/**
 * Filesystems whose files are not data at rest (f_type magics from
 * linux/magic.h): reading one may block, never end, or be answered by a
 * process (FUSE).
 */
const REFUSED_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x62656570, 'configfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0x65735546, 'fuse'],
  [0x1cd1, 'devpts'],
]);

let lib: ReturnType<typeof bind> | undefined;
function bind() {
  const libc = koffi.load('libc.so.6');
  return {
    syscall: libc.func('long syscall(long number, ...)'),
    fstatfs: libc.func('int fstatfs(int fd, _Out_ void *buf)'),
  };
}
function libc(): ReturnType<typeof bind> {
  return (lib ??= bind());
}

function errnoName(errno: number): string {
  return Object.entries(koffi.os.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
}

/**
 * openat2(dirfd, path, O_PATH|O_CLOEXEC, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS):
 * a handle (nothing opened for reading) on what `path` names without leaving
 * the root `dirfd`.
 */
function resolveInRoot(dirfd: number, path: string): number {
  const how = Buffer.alloc(OPEN_HOW_SIZE);
  how.writeBigUInt64LE(BigInt(O_PATH | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), 16);
  const fd = Number(libc().syscall(SYS_openat2, 'int', dirfd, 'const char *', path, 'void *', how, 'size_t', OPEN_HOW_SIZE));
  if (fd < 0) {
    const errno = koffi.errno();
    throw new TargetFileError('missing', `${path}: cannot open inside the process's root (${errnoName(errno)})`);
  }
  return fd;
}

/** A directory to resolve inside (O_PATH: nothing is read from it). */
function openDir(path: string): number {
  return openSync(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/** The filesystem an open file is on, if Kiln refuses to read it. */
function refusedFilesystem(fd: number): string | undefined {
  const buf = Buffer.alloc(STATFS_SIZE);
  if ((libc().fstatfs(fd, buf) as number) !== 0) return 'unknown';
  return REFUSED_FILESYSTEMS.get(Number(buf.readBigInt64LE(0) & 0xffffffffn));
}

/**
 * Checks a file (an O_PATH handle will do): a regular file of at most
 * maxBytes on a filesystem holding data at rest. Returns its fstat.
 */
function checkRegular(fd: number, what: string, maxBytes: number): Stats {
  const st = fstatSync(fd);
  if (!st.isFile()) throw new TargetFileError('not_regular', `${what}: not a regular file`);
  if (st.size > maxBytes) throw new TargetFileError('too_large', `${what}: ${st.size} bytes, more than the ${maxBytes} Kiln reads`);
  const fs = refusedFilesystem(fd);
  if (fs) throw new TargetFileError('filesystem', `${what}: on ${fs}, which Kiln does not read`);
  return st;
}

/** The credentials a process opens files with. */
export interface FileCredentials {
  uid: number;
  gids: Set<number>;
}

/** The fs uid and every group of a live process, from /proc/PID/status. */
export function fileCredentials(pid: number): FileCredentials | undefined {
  let status: string;
  try {
    status = readProcFile(`/proc/${pid}/status`, MAX_SMALL_BYTES).text;
  } catch {
    return undefined;
  }
  const fields = new Map<string, number[]>();
  for (const line of status.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim().split(/\s+/).filter(Boolean).map(Number));
  }
  // real, effective, saved, fs: files are opened with the fs ids
  const uid = fields.get('Uid')?.[3];
  const gid = fields.get('Gid')?.[3];
  if (uid === undefined || gid === undefined) return undefined;
  return { uid, gids: new Set([gid, ...(fields.get('Groups') ?? [])]) };
}

/** Whether permission bits let these credentials read a file (root may read anything). */
export function mayRead(st: Stats, creds: FileCredentials): boolean {
  if (creds.uid === 0) return true;
  if (st.uid === creds.uid) return (st.mode & 0o400) !== 0;
  if (creds.gids.has(st.gid)) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

/**
 * Opens a file as process `pid` names it (absolute: from its root; relative:
 * from its working directory, which it then may not leave), checked as
 * checkRegular does. The caller closes it.
 */
export function openProcessFile(pid: number, name: string, maxBytes: number): { fd: number; st: Stats } {
  const dir = openDir(`/proc/${pid}/${isAbsolute(name) ? 'root' : 'cwd'}`);
  let handle: number;
  try {
    handle = resolveInRoot(dir, name);
  } finally {
    closeSync(dir);
  }
  return openHandle(handle, name, maxBytes);
}

/** Opens a path (symlinks followed) for reading once checkRegular has passed it. */
export function openChecked(path: string, what: string, maxBytes: number): { fd: number; st: Stats } {
  return openHandle(openSync(path, O_PATH | O_CLOEXEC), what, maxBytes);
}

/** Checks an O_PATH handle, then opens its inode for reading; closes the handle either way. */
function openHandle(handle: number, what: string, maxBytes: number): { fd: number; st: Stats } {
  try {
    const st = checkRegular(handle, what, maxBytes);
    // the handle's own inode, not a path looked up again: nothing can be swapped in meanwhile
    return { fd: openSync(`/proc/self/fd/${handle}`, O_RDONLY | O_CLOEXEC), st };
  } finally {
    closeSync(handle);
  }
}

/** A source file as process `pid` names it, whole, if it is a regular file of at most maxBytes the process may read. */
export function readProcessFile(pid: number, name: string, maxBytes: number): Buffer {
  const { fd, st } = openProcessFile(pid, name, maxBytes);
  try {
    const creds = fileCredentials(pid);
    if (!creds || !mayRead(st, creds)) throw new TargetFileError('permission', `${name}: pid ${pid} may not read it`);
    const bytes = readUpTo(fd, maxBytes, st.size);
    if (bytes.length > maxBytes) throw new TargetFileError('too_large', `${name}: grew past the ${maxBytes} bytes Kiln reads`);
    return bytes;
  } finally {
    closeSync(fd);
  }
}
