import { closeSync, openSync, readSync } from 'node:fs';

/**
 * Just enough ELF to find CPython's globals (_PyRuntime, PyCode_Type) in a
 * python binary or libpython: symbol values from .dynsym and .symtab, and the
 * load bias of a mapped image. 64-bit little-endian only, as Kiln is x86-64.
 * Reads only the headers and tables it needs, never the whole file.
 */

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const PT_LOAD = 1;
const SHN_UNDEF = 0;
const SYM_SIZE = 24;

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
}

class ElfFile {
  private fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
  }

  read(offset: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) throw new Error(`${this.path}: truncated ELF (wanted ${length} bytes at ${offset})`);
      done += n;
    }
    return buf;
  }

  header(): Buffer {
    const h = this.read(0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${this.path}: not an ELF file`);
    if (h[4] !== 2 || h[5] !== 1) throw new Error(`${this.path}: not a 64-bit little-endian ELF`);
    return h;
  }

  sections(h: Buffer): Section[] {
    const shoff = Number(h.readBigUInt64LE(0x28));
    const shentsize = h.readUInt16LE(0x3a);
    const shnum = h.readUInt16LE(0x3c);
    if (shoff === 0 || shnum === 0) return [];
    const table = this.read(shoff, shentsize * shnum);
    const out: Section[] = [];
    for (let i = 0; i < shnum; i++) {
      const s = i * shentsize;
      out.push({
        type: table.readUInt32LE(s + 0x04),
        offset: Number(table.readBigUInt64LE(s + 0x18)),
        size: Number(table.readBigUInt64LE(s + 0x20)),
        link: table.readUInt32LE(s + 0x28),
      });
    }
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Values (link-time virtual addresses) of the named symbols that the file
 * defines, from .dynsym and .symtab; names not defined are absent from the map.
 * Add the load bias to get an address in a process.
 */
export function readElfSymbols(path: string, names: string[]): Map<string, bigint> {
  const wanted = new Set(names);
  const found = new Map<string, bigint>();
  const elf = new ElfFile(path);
  try {
    const sections = elf.sections(elf.header());
    for (const sec of sections) {
      if (sec.type !== SHT_DYNSYM && sec.type !== SHT_SYMTAB) continue;
      const strSec = sections[sec.link];
      if (!strSec) continue;
      const syms = elf.read(sec.offset, sec.size);
      const strs = elf.read(strSec.offset, strSec.size);
      for (let s = 0; s + SYM_SIZE <= syms.length && found.size < wanted.size; s += SYM_SIZE) {
        if (syms.readUInt16LE(s + 6) === SHN_UNDEF) continue; // imported, not defined here
        const nameOff = syms.readUInt32LE(s);
        const end = strs.indexOf(0, nameOff);
        const name = strs.toString('latin1', nameOff, end < 0 ? strs.length : end);
        if (wanted.has(name) && !found.has(name)) found.set(name, syms.readBigUInt64LE(s + 8));
      }
    }
  } finally {
    elf.close();
  }
  return found;
}

/**
 * Load bias of an ELF image given where its file offset 0 is mapped (the
 * start of its /proc/PID/maps line with offset 0): mapStart minus the virtual
 * address the first PT_LOAD assigns to file offset 0. 0 for a non-PIE
 * executable mapped at its link address (Debian's python3.X binaries).
 */
export function elfLoadBias(mapStart: bigint, path: string): bigint {
  const elf = new ElfFile(path);
  try {
    const h = elf.header();
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const table = elf.read(phoff, phentsize * phnum);
    let base: bigint | undefined;
    for (let i = 0; i < phnum; i++) {
      const p = i * phentsize;
      if (table.readUInt32LE(p) !== PT_LOAD) continue;
      const offset = table.readBigUInt64LE(p + 0x08);
      const vaddr = table.readBigUInt64LE(p + 0x10);
      // the segment maps file offset `offset` at `vaddr`, so offset 0 at vaddr - offset
      const zero = vaddr - offset;
      if (base === undefined || zero < base) base = zero;
    }
    if (base === undefined) throw new Error(`${path}: no PT_LOAD segment`);
    return mapStart - base;
  } finally {
    elf.close();
  }
}
