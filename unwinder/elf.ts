import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/**
 * Just enough ELF to find CPython's globals (_PyRuntime, PyCode_Type) in a
 * python binary or libpython: symbol values from .dynsym and .symtab, and the
 * load bias of a mapped image. 64-bit little-endian only, as Kiln is x86-64.
 *
 * The file is the profiled process's and may be crafted: every offset and
 * size is checked against the file before it is read, header tables are
 * bounded, symbol tables are scanned in pieces (never held whole) and only
 * data-object symbols have their names looked at, and a symbol or string
 * table larger than any CPython's is not read at all.
 */

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const PT_LOAD = 1;
const SHN_UNDEF = 0;
const STT_OBJECT = 1;
const SYM_SIZE = 24;
const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const PHDR_SIZE = 56;

/** Real CPython images have ~20k symbols (0.5 MB) and ~1 MB of names; these are ten times that and more. */
export const MAX_SYMTAB_BYTES = 16 << 20;
export const MAX_STRTAB_BYTES = 16 << 20;
/** Program headers read at most (real images have about ten). */
const MAX_PHNUM = 1024;
/** The symbol table is scanned in pieces of this size. */
const PIECE = 64 << 10;

export class ElfError extends Error {}

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
}

/** An open ELF file of known size (it owns the descriptor): every read must lie inside it. */
export class ElfFile {
  /** bytes read from the file so far */
  bytesRead = 0;

  readonly size: number;

  constructor(
    private readonly fd: number,
    /** the descriptor's fstat, taken when it was opened */
    readonly stat: Stats,
    readonly label: string,
  ) {
    this.size = stat.size;
  }

  /** A file Kiln trusts the name of (its own, a test's). */
  static open(path: string): ElfFile {
    const fd = openSync(path, 'r');
    return new ElfFile(fd, fstatSync(fd), path);
  }

  close(): void {
    closeSync(this.fd);
  }

  read(offset: number, length: number): Buffer {
    if (!this.holds(offset, length))
      throw new ElfError(`${this.label}: ${length} bytes at ${offset} lie outside the file (${this.size} bytes)`);
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) throw new ElfError(`${this.label}: truncated ELF (wanted ${length} bytes at ${offset})`);
      done += n;
    }
    this.bytesRead += length;
    return buf;
  }

  header(): Buffer {
    const h = this.read(0, EHDR_SIZE);
    if (h.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${this.label}: not an ELF file`);
    if (h[4] !== 2 || h[5] !== 1) throw new ElfError(`${this.label}: not a 64-bit little-endian ELF`);
    return h;
  }

  sections(h: Buffer): Section[] {
    const shoff = u64(h, 0x28);
    const shentsize = h.readUInt16LE(0x3a);
    const shnum = h.readUInt16LE(0x3c);
    if (shoff === 0 || shnum === 0) return [];
    if (shentsize !== SHDR_SIZE) throw new ElfError(`${this.label}: section headers of ${shentsize} bytes`);
    const table = this.read(shoff, SHDR_SIZE * shnum);
    const out: Section[] = [];
    for (let i = 0; i < shnum; i++) {
      const s = i * SHDR_SIZE;
      out.push({ type: table.readUInt32LE(s + 0x04), offset: u64(table, s + 0x18), size: u64(table, s + 0x20), link: table.readUInt32LE(s + 0x28) });
    }
    return out;
  }

  /** Whether [offset, offset+size) lies inside the file. */
  holds(offset: number, size: number): boolean {
    return offset >= 0 && size >= 0 && offset + size <= this.size;
  }
}

/** A 64-bit field as a number: file offsets and sizes past 2^53 are refused by the bounds checks anyway. */
function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/**
 * Values (link-time virtual addresses) of the named data objects that the file
 * defines, from .dynsym and .symtab; names not defined are absent from the map.
 * Add the load bias to get an address in a process. A symbol table that is
 * malformed or larger than MAX_SYMTAB_BYTES is passed over.
 */
export function readElfSymbols(elf: ElfFile, names: string[]): Map<string, bigint> {
  const wanted = names.map((n) => ({ name: n, bytes: Buffer.from(n + '\0', 'latin1') }));
  const found = new Map<string, bigint>();
  const sections = elf.sections(elf.header());
  for (const sec of sections) {
    if (sec.type !== SHT_DYNSYM && sec.type !== SHT_SYMTAB) continue;
    const strSec = sections[sec.link];
    if (!strSec || sec.size > MAX_SYMTAB_BYTES || strSec.size > MAX_STRTAB_BYTES) continue;
    if (!elf.holds(sec.offset, sec.size) || !elf.holds(strSec.offset, strSec.size)) continue;
    // names are looked up at random: the table is read whole (it is bounded), the symbols in pieces
    const strs = elf.read(strSec.offset, strSec.size);
    const count = Math.floor(sec.size / SYM_SIZE);
    const perPiece = Math.floor(PIECE / SYM_SIZE);
    for (let first = 0; first < count && found.size < wanted.length; first += perPiece) {
      const n = Math.min(perPiece, count - first);
      const syms = elf.read(sec.offset + first * SYM_SIZE, n * SYM_SIZE);
      for (let s = 0; s < syms.length && found.size < wanted.length; s += SYM_SIZE) {
        if ((syms[s + 4]! & 0xf) !== STT_OBJECT) continue; // the globals Kiln wants are all data
        if (syms.readUInt16LE(s + 6) === SHN_UNDEF) continue; // imported, not defined here
        const nameOff = syms.readUInt32LE(s);
        for (const w of wanted) {
          if (!found.has(w.name) && nameOff + w.bytes.length <= strs.length && strs.compare(w.bytes, 0, w.bytes.length, nameOff, nameOff + w.bytes.length) === 0) {
            found.set(w.name, syms.readBigUInt64LE(s + 8));
            break;
          }
        }
      }
    }
  }
  return found;
}

/**
 * Load bias of an ELF image given where its file offset 0 is mapped (the
 * start of its /proc/PID/maps line with offset 0): mapStart minus the virtual
 * address the first PT_LOAD assigns to file offset 0. 0 for a non-PIE
 * executable mapped at its link address (Debian's python3.X binaries).
 */
export function elfLoadBias(mapStart: bigint, elf: ElfFile): bigint {
  const h = elf.header();
  const phoff = u64(h, 0x20);
  const phentsize = h.readUInt16LE(0x36);
  const phnum = h.readUInt16LE(0x38);
  if (phentsize !== PHDR_SIZE || phnum > MAX_PHNUM) throw new ElfError(`${elf.label}: ${phnum} program headers of ${phentsize} bytes`);
  const table = elf.read(phoff, PHDR_SIZE * phnum);
  let base: bigint | undefined;
  for (let i = 0; i < phnum; i++) {
    const p = i * PHDR_SIZE;
    if (table.readUInt32LE(p) !== PT_LOAD) continue;
    const offset = table.readBigUInt64LE(p + 0x08);
    const vaddr = table.readBigUInt64LE(p + 0x10);
    // the segment maps file offset `offset` at `vaddr`, so offset 0 at vaddr - offset
    const zero = vaddr - offset;
    if (base === undefined || zero < base) base = zero;
  }
  if (base === undefined) throw new ElfError(`${elf.label}: no PT_LOAD segment`);
  return mapStart - base;
}
