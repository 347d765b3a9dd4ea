/**
 * Reading CPython objects out of another process, trusting nothing: an
 * object is decoded only if it looks alive and its ob_type is the process's
 * own type object for what it should be. Memory that held an object and was
 * freed, or now holds something else, fails one of these checks and the
 * caller reports what it was reading as unknown rather than misnamed.
 */
import type { PyLayout, TypeObjects } from './layout.js';

/** Somewhere to read a process's memory from: /proc/PID/mem, or what the kernel copied of it. */
export interface Memory {
  read(address: bigint, length: number): Buffer;
}

/**
 * Why an object was refused: freed, of another type, malformed, not what the
 * kernel copied of it any more, or (a code object) not the one the kernel saw.
 */
export type ObjectFault = 'dead' | 'type' | 'shape' | 'changed' | 'identity';

/** What was read is not (any longer) the object it should be. */
export class ObjectCheckError extends Error {
  constructor(
    readonly fault: ObjectFault,
    message: string,
  ) {
    super(message);
  }
}

// PyASCIIObject.state bits, the same from 3.9 to 3.14: interned (2), kind (3), compact, ascii
const STATE_KIND_SHIFT = 2;
const STATE_COMPACT = 1 << 5;
const STATE_ASCII = 1 << 6;
export const MAX_STRING_CHARS = 4096;
export const MAX_BYTES = 1 << 20;

/**
 * Whether the first word of an object (ob_refcnt) is that of a live object.
 * A live object's count is at least 1 and below 2^32 (3.12's and 3.13's
 * immortal objects use 2^32 - 1; 3.14 keeps a 32-bit count in the low half
 * and flags in the top 16 bits). Freeing overwrites this word: pymalloc puts
 * its free-list link there (NULL, or an address in its mmap'd arena, far
 * above 2^32), glibc a pointer mangled with its address. So bits 32-47 set,
 * or a zero count, mean the memory is free (or never was an object).
 */
export function looksAlive(refcntWord: bigint): boolean {
  return (refcntWord & 0xffffffffn) !== 0n && ((refcntWord >> 32n) & 0xffffn) === 0n;
}

/** Checks the header of an object read into `head` (from its first byte). */
export function checkObject(head: Buffer, l: PyLayout, type: bigint, what: string, addr: bigint): void {
  if (!looksAlive(head.readBigUInt64LE(l.object.refcnt)))
    throw new ObjectCheckError('dead', `${what} at 0x${addr.toString(16)} is not a live object`);
  const actual = head.readBigUInt64LE(l.object.type);
  if (actual !== type)
    throw new ObjectCheckError('type', `${what} at 0x${addr.toString(16)} has type 0x${actual.toString(16)}, not 0x${type.toString(16)}`);
}

/**
 * A str, checked; at most MAX_STRING_CHARS characters of it. Its kind must
 * agree with its characters, as CPython keeps it: ASCII data below 0x80, and
 * (when all of it is read) a 1-, 2- or 4-byte kind only when some character
 * needs it; anything else is not a str CPython made.
 */
export function readStr(mem: Memory, l: PyLayout, types: TypeObjects, addr: bigint): string {
  const u = l.unicode;
  const head = mem.read(addr, Math.max(u.length, u.state, l.object.type) + 8);
  checkObject(head, l, types.unicode, 'str', addr);
  const length = Number(head.readBigInt64LE(u.length));
  const state = head.readUInt32LE(u.state);
  const bad = (why: string) => new ObjectCheckError('shape', `str at 0x${addr.toString(16)} ${why}`);
  if (!(state & STATE_COMPACT)) throw bad('is not compact');
  if (length < 0) throw bad(`has length ${length}`);
  const n = Math.min(length, MAX_STRING_CHARS);
  const kind = (state >> STATE_KIND_SHIFT) & 7;
  if (state & STATE_ASCII) {
    if (kind !== 1) throw bad(`is ASCII of kind ${kind}`);
    const data = mem.read(addr + BigInt(u.asciiData), n);
    if (data.some((b) => b >= 0x80)) throw bad('is ASCII with a byte past 0x7f');
    return data.toString('latin1');
  }
  if (kind !== 1 && kind !== 2 && kind !== 4) throw bad(`has kind ${kind}`);
  const data = mem.read(addr + BigInt(u.compactData), n * kind);
  let s = '';
  let widest = 0;
  for (let i = 0; i < n; i++) {
    const cp = kind === 1 ? data[i]! : kind === 2 ? data.readUInt16LE(i * 2) : data.readUInt32LE(i * 4);
    if (cp > 0x10ffff) throw bad(`holds code point ${cp}`);
    if (cp > widest) widest = cp;
    s += String.fromCodePoint(cp);
  }
  const least = kind === 1 ? 0x80 : kind === 2 ? 0x100 : 0x10000;
  if (n === length && widest < least) throw bad(`of kind ${kind} holds no character that needs it`);
  return s;
}

/** A bytes object's contents, checked; refused beyond `max` bytes. */
export function readBytes(mem: Memory, l: PyLayout, types: TypeObjects, addr: bigint, max = MAX_BYTES): Buffer {
  const size = bytesSize(mem, l, types, addr, max);
  return size === 0 ? Buffer.alloc(0) : mem.read(addr + BigInt(l.bytes.data), size);
}

/** The first bytes of a bytes object of which only the first `have` bytes (header included) are at hand. */
export function readBytesStart(mem: Memory, l: PyLayout, types: TypeObjects, addr: bigint, have: number): Buffer {
  const size = bytesSize(mem, l, types, addr, MAX_BYTES);
  const n = Math.max(0, Math.min(size, have - l.bytes.data));
  return mem.read(addr + BigInt(l.bytes.data), n);
}

function bytesSize(mem: Memory, l: PyLayout, types: TypeObjects, addr: bigint, max: number): number {
  const head = mem.read(addr, Math.max(l.bytes.size, l.object.type) + 8);
  checkObject(head, l, types.bytes, 'bytes', addr);
  const size = Number(head.readBigInt64LE(l.bytes.size));
  if (size < 0 || size > max) throw new ObjectCheckError('shape', `bytes at 0x${addr.toString(16)} has size ${size}`);
  return size;
}
