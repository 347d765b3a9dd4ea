/**
 * Crafted ELF files, as a hostile process could map and name like libpython:
 * headers that claim what the file does not hold. Sparse, so a 1 GiB symbol
 * table costs no disk.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export interface CraftedElf {
  /** bytes the symbol table claims (and, unless `beyondFile`, the file holds, as zeros) */
  symtabBytes: number;
  /** the symbol table's claimed extent runs past the end of the file */
  beyondFile?: boolean;
  /** fill the first bytes of the symbol table with data-object symbols naming random string offsets */
  junkSymbols?: number;
  /** program headers the header claims */
  phnum?: number;
}

const PAGE = 4096;
const STRTAB = Buffer.from('\0_PyRuntime\0Py_Version\0PyCode_Type\0');

export function writeCraftedElf(path: string, c: CraftedElf): void {
  const h = Buffer.alloc(PAGE);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = 2; // 64-bit
  h[5] = 1; // little-endian
  h[6] = 1;
  h.writeUInt16LE(3, 0x10); // ET_DYN
  h.writeUInt16LE(0x3e, 0x12); // x86-64
  h.writeUInt32LE(1, 0x14);
  h.writeBigUInt64LE(64n, 0x20); // e_phoff
  h.writeBigUInt64LE(256n, 0x28); // e_shoff
  h.writeUInt16LE(64, 0x34);
  h.writeUInt16LE(56, 0x36);
  h.writeUInt16LE(c.phnum ?? 1, 0x38);
  h.writeUInt16LE(64, 0x3a);
  h.writeUInt16LE(3, 0x3c);
  // one PT_LOAD of the first page
  h.writeUInt32LE(1, 64);
  h.writeBigUInt64LE(BigInt(PAGE), 64 + 0x20);
  h.writeBigUInt64LE(BigInt(PAGE), 64 + 0x28);
  const symtabAt = PAGE;
  const strtabAt = symtabAt + (c.beyondFile ? 0 : c.symtabBytes);
  const section = (i: number, type: number, offset: number, size: number, link: number) => {
    const s = 256 + i * 64;
    h.writeUInt32LE(type, s + 4);
    h.writeBigUInt64LE(BigInt(offset), s + 0x18);
    h.writeBigUInt64LE(BigInt(size), s + 0x20);
    h.writeUInt32LE(link, s + 0x28);
    h.writeBigUInt64LE(24n, s + 0x38);
  };
  section(1, 2, symtabAt, c.symtabBytes, 2); // SHT_SYMTAB
  section(2, 3, strtabAt, STRTAB.length, 0); // SHT_STRTAB
  const fd = openSync(path, 'w', 0o644);
  try {
    writeSync(fd, h, 0, h.length, 0);
    if (c.junkSymbols) {
      const syms = Buffer.alloc(c.junkSymbols * 24);
      for (let i = 0; i < c.junkSymbols; i++) {
        syms.writeUInt32LE(Math.floor(Math.random() * 0xffffffff), i * 24);
        syms[i * 24 + 4] = 1; // STT_OBJECT
        syms.writeUInt16LE(1, i * 24 + 6); // defined
      }
      writeSync(fd, syms, 0, syms.length, symtabAt);
    }
    writeSync(fd, STRTAB, 0, STRTAB.length, strtabAt);
  } finally {
    closeSync(fd);
  }
}
