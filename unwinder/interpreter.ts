/**
 * Finds the CPython runtime inside a process: which mapped image holds
 * _PyRuntime (the python binary with libpython linked in, or libpython3.X.so),
 * where it is, which version, and the layout Kiln walks it with.
 */
import { closeSync, type Stats } from 'node:fs';
import { basename } from 'node:path';
import { readDebugOffsets } from './debug-offsets.js';
import { ElfError, ElfFile, elfLoadBias, readElfSymbols } from './elf.js';
import { tableLayout } from './layouts/index.js';
import { formatVersion, type PyLayout, type PythonVersion, type TypeObjects } from './layout.js';
import { ProcessMemory, ReadableRegions, type FileId } from './memory.js';
import { readMaps, type Mapping } from './proc.js';
import { openChecked, openProcessFile } from './target-files.js';

export const MIN_VERSION = { major: 3, minor: 9 };
export const MAX_VERSION = { major: 3, minor: 14 };

export interface PythonProcess {
  pid: number;
  version: PythonVersion;
  /** "3.11.2", or "3.9" where the build does not say its patch release */
  versionText: string;
  /** address of _PyRuntime in the process */
  runtime: bigint;
  layout: PyLayout;
  /** its type objects, which what is read from it is checked against */
  types: TypeObjects;
  /** the image holding the runtime, as the target names it */
  image: string;
  /** that image's file, the only one Kiln reads the process's objects from besides its anonymous memory */
  imageFile: FileId;
}

/** The process runs no CPython Kiln can find. */
export class NotPythonError extends Error {
  constructor(readonly pid: number, reason: string) {
    super(`pid ${pid} is not a Python process: ${reason}`);
  }
}

/** A CPython Kiln cannot walk: outside the supported versions, or unreadable. */
export class UnsupportedPythonError extends Error {
  constructor(
    readonly pid: number,
    reason: string,
    readonly kind: 'version' | 'unreadable' = 'unreadable',
  ) {
    super(`pid ${pid}: ${reason}`);
  }
}

/**
 * No mapped python image defines _PyRuntime: a build whose symbols cannot be
 * read (stripped, or not CPython), or a process the dynamic loader has not
 * finished mapping yet (just exec'd, libpython still to come).
 */
export class NoRuntimeSymbolError extends UnsupportedPythonError {}

function supported(v: PythonVersion): boolean {
  const newer = v.major > MAX_VERSION.major || (v.major === MAX_VERSION.major && v.minor > MAX_VERSION.minor);
  const older = v.major < MIN_VERSION.major || (v.major === MIN_VERSION.major && v.minor < MIN_VERSION.minor);
  return !newer && !older;
}

const IMAGE_NAME = /^(lib)?python(\d)\.(\d+)[a-z]*(\.so.*|$)/;

/** Mapped images that may hold the runtime, libpython first: with it, the binary is only a stub. */
function candidateImages(maps: Mapping[]): Mapping[] {
  const first = new Map<string, Mapping>();
  for (const m of maps) {
    if (!m.path.startsWith('/') || m.offset !== 0n) continue;
    if (!IMAGE_NAME.test(basename(m.path))) continue;
    if (!first.has(m.path)) first.set(m.path, m);
  }
  return [...first.values()].sort((a, b) => Number(basename(b.path).startsWith('lib')) - Number(basename(a.path).startsWith('lib')));
}

/** Quick check used when scanning every process: does any mapping look like CPython? */
export function looksLikePython(maps: Mapping[]): boolean {
  return candidateImages(maps).length > 0;
}

function versionFromName(path: string): PythonVersion | undefined {
  const m = IMAGE_NAME.exec(basename(path));
  return m ? { major: Number(m[2]), minor: Number(m[3]), patch: -1 } : undefined;
}

/** Images larger than this are not CPython (libpython with debug info is ~100 MB). */
const MAX_IMAGE_BYTES = 1 << 30;

/**
 * Opens the file a process maps at `m`, as that very file: map_files names
 * the mapped inode itself, whatever the target's root or mount namespace (it
 * needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE); else the path inside the
 * process's root finds a container's file (resolved there, never leaving
 * it); else the path as-is finds a chroot's (maps shows paths from the
 * reader's root), used only if it is the same inode the process maps.
 * Regular files only, checked before they are opened for reading
 * (target-files.ts).
 */
function openImage(pid: number, m: Mapping): ElfFile {
  const range = `${m.start.toString(16)}-${m.end.toString(16)}`;
  const problems: string[] = [];
  const attempt = (label: string, open: () => { fd: number; st: Stats }): ElfFile | undefined => {
    try {
      const { fd, st } = open();
      return new ElfFile(fd, st, label);
    } catch (err) {
      problems.push(`${label}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const mapped = `/proc/${pid}/map_files/${range}`;
  const elf =
    attempt(mapped, () => openChecked(mapped, mapped, MAX_IMAGE_BYTES)) ??
    attempt(`${m.path} in pid ${pid}'s root`, () => openProcessFile(pid, m.path, MAX_IMAGE_BYTES)) ??
    attempt(m.path, () => {
      const opened = openChecked(m.path, m.path, MAX_IMAGE_BYTES);
      const { st } = opened;
      if (st.ino !== m.inode || major(st.dev) !== m.major || minor(st.dev) !== m.minor) {
        closeSync(opened.fd);
        throw new Error('not the file the process maps');
      }
      return opened;
    });
  if (!elf) throw new UnsupportedPythonError(pid, `cannot open ${m.path}: ${problems.join('; ')}`);
  return elf;
}

// Linux's dev_t encoding (glibc's gnu_dev_major/minor)
function major(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}
function minor(dev: number): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

const TYPE_SYMBOLS: Record<keyof TypeObjects, string> = { code: 'PyCode_Type', unicode: 'PyUnicode_Type', bytes: 'PyBytes_Type' };

/**
 * _PyRuntime, Py_Version and the type objects of an image, cached by file identity: a host runs
 * many processes of few interpreters, and a symbol table is megabytes to read.
 */
const symbolCache = new Map<string, Map<string, bigint>>();
function runtimeSymbols(elf: ElfFile): Map<string, bigint> {
  const st = elf.stat;
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  let syms = symbolCache.get(key);
  if (!syms) {
    syms = readElfSymbols(elf, ['_PyRuntime', 'Py_Version', ...Object.values(TYPE_SYMBOLS)]);
    if (symbolCache.size > 256) symbolCache.clear();
    symbolCache.set(key, syms);
  }
  return syms;
}

export function inspectProcess(pid: number, maps: Mapping[] = readMaps(pid)): PythonProcess {
  const images = candidateImages(maps);
  if (images.length === 0) throw new NotPythonError(pid, 'no python binary or libpython is mapped');
  const unreadable: string[] = [];
  for (const image of images) {
    let elf: ElfFile;
    try {
      elf = openImage(pid, image);
    } catch (err) {
      unreadable.push((err as Error).message);
      continue;
    }
    let syms: Map<string, bigint>;
    let bias: bigint;
    try {
      syms = runtimeSymbols(elf);
      if (!syms.has('_PyRuntime')) continue;
      bias = elfLoadBias(image.start, elf);
    } catch (err) {
      // a crafted or broken file: another mapped image may still be the interpreter
      if (!(err instanceof ElfError)) throw err;
      unreadable.push(err.message);
      continue;
    } finally {
      elf.close();
    }
    const runtime = bias + syms.get('_PyRuntime')!;
    const imageFile = { major: image.major, minor: image.minor, inode: image.inode };
    const mem = new ProcessMemory(pid, new ReadableRegions(pid, imageFile, maps));
    try {
      let version = versionFromName(image.path);
      const versionSym = syms.get('Py_Version');
      if (versionSym !== undefined) {
        // PY_VERSION_HEX: major << 24 | minor << 16 | micro << 8 | release level and serial
        const hex = mem.u32(bias + versionSym);
        version = { major: hex >>> 24, minor: (hex >>> 16) & 0xff, patch: (hex >>> 8) & 0xff };
      }
      if (!version) throw new UnsupportedPythonError(pid, `cannot tell the Python version of ${image.path}`);
      const text = version.patch < 0 ? `${version.major}.${version.minor}` : formatVersion(version);
      if (!supported(version))
        throw new UnsupportedPythonError(pid, `CPython ${text} is not supported (Kiln walks 3.9 to 3.14)`, 'version');
      const layout = version.minor >= 13 ? readDebugOffsets(mem, runtime, version) : tableLayout(version);
      if (!layout) throw new UnsupportedPythonError(pid, `no layout for CPython ${text}`, 'version');
      const types = {} as TypeObjects;
      for (const [key, name] of Object.entries(TYPE_SYMBOLS) as [keyof TypeObjects, string][]) {
        const sym = syms.get(name);
        if (sym === undefined) throw new UnsupportedPythonError(pid, `${image.path} defines no ${name}: Kiln cannot check what it reads`);
        types[key] = bias + sym;
      }
      return { pid, version, versionText: text, runtime, layout, types, image: image.path, imageFile };
    } catch (err) {
      if (err instanceof UnsupportedPythonError) throw err;
      throw new UnsupportedPythonError(pid, `cannot read the CPython runtime: ${(err as Error).message}`);
    } finally {
      mem.close();
    }
  }
  // CPython before 3.7 has no _PyRuntime: say which version it is when the name tells
  const old = images.map((m) => versionFromName(m.path)).find((v) => v && !supported(v));
  if (old) throw new UnsupportedPythonError(pid, `CPython ${old.major}.${old.minor} is not supported (Kiln walks 3.9 to 3.14)`, 'version');
  if (unreadable.length) throw new UnsupportedPythonError(pid, unreadable.join('; '));
  throw new NoRuntimeSymbolError(pid, `cannot read the symbols of ${images.map((m) => m.path).join(', ')}: no _PyRuntime (a stripped or non-CPython build?)`);
}
