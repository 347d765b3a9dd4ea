/**
 * TypeScript mirror of bpf/kiln.h: constants, struct layouts and their
 * encoders/decoders. test/abi.test.ts compiles kiln.h and checks every size
 * and offset listed in STRUCTS against the C compiler.
 */
import type { PyLayout } from '../unwinder/layout.js';

export const KILN_MAX_DEPTH = 4096;
export const KILN_CHUNK_FRAMES = 64;
export const KILN_READ_WINDOW = 256;

export const KILN_F_TRUNCATED = 1 << 0;
export const KILN_F_NO_TSTATE = 1 << 1;
export const KILN_F_READ_ERROR = 1 << 2;
export const KILN_F_STACK_LOST = 1 << 3;

export const KILN_MAX_EVENTS = 8192;
export const KILN_EVENT_EXEC = 1;
export const KILN_EVENT_WAS_FOLLOWED = 2;

export const STAT_NAMES = [
  'samples',
  'count_drops',
  'chunk_drops',
  'truncated',
  'no_tstate',
  'read_errors',
  'tstate_walks',
  'frames',
] as const;
export type StatName = (typeof STAT_NAMES)[number];
export type KernelStats = Record<StatName, number>;

type FieldType = 's16' | 'u16' | 'u8' | 'u32' | 'u64' | 'char[16]' | 'struct';
interface Field {
  offset: number;
  type: FieldType;
}
interface StructLayout {
  size: number;
  fields: Record<string, Field>;
}

const s16 = (offset: number): Field => ({ offset, type: 's16' });
const u8 = (offset: number): Field => ({ offset, type: 'u8' });
const u16 = (offset: number): Field => ({ offset, type: 'u16' });
const u32 = (offset: number): Field => ({ offset, type: 'u32' });
const u64 = (offset: number): Field => ({ offset, type: 'u64' });

export const STRUCTS = {
  kiln_py_layout: {
    size: 48,
    fields: {
      runtime_interpreters_head: s16(0),
      interp_next: s16(2),
      interp_threads_head: s16(4),
      tstate_next: s16(6),
      tstate_native_thread_id: s16(8),
      tstate_thread_id: s16(10),
      tstate_frame: s16(12),
      cframe_current_frame: s16(14),
      frame_back: s16(16),
      frame_code: s16(18),
      frame_lasti: s16(20),
      frame_owner: s16(22),
      code_adaptive: s16(24),
      code_firstlineno: s16(26),
      code_argcount: s16(28),
      frame_read_size: u16(30),
      code_read_size: u16(32),
      lasti_is_pointer: u8(34),
      owner_cstack: u8(35),
      match_native_tid: u8(36),
      code_tag_mask: u64(40),
    },
  },
  kiln_proc: {
    size: 56,
    fields: { runtime: u64(0), layout: { offset: 8, type: 'struct' } },
  },
  kiln_frame: {
    size: 16,
    fields: { code: u64(0), lasti: u32(8), fingerprint: u32(12) },
  },
  kiln_chunk: {
    size: 16 + KILN_CHUNK_FRAMES * 16,
    fields: { parent: u64(0), len: u32(8), frames: { offset: 16, type: 'struct' } },
  },
  kiln_sample_key: {
    size: 40,
    fields: {
      pid: u32(0),
      tid: u32(4),
      stack_id: u64(8),
      depth: u32(16),
      flags: u32(20),
      comm: { offset: 24, type: 'char[16]' },
    },
  },
  kiln_state: {
    size: 8,
    fields: { generation: u32(0), max_depth: u32(4) },
  },
} satisfies Record<string, StructLayout>;

const L = STRUCTS.kiln_py_layout.fields;

export function fingerprint(firstLineNo: number, argCount: number): number {
  return ((firstLineNo & 0xffffff) | (argCount << 24)) >>> 0;
}

/** Bytes of an object to read so that `offsets` (each followed by `width` bytes) are covered. */
function readSize(offsets: number[], width: number): number {
  const size = Math.max(...offsets.filter((o) => o >= 0)) + width;
  if (size > KILN_READ_WINDOW) throw new Error(`layout needs a ${size}-byte read, over the ${KILN_READ_WINDOW}-byte window`);
  return size;
}

/** struct kiln_proc for a process whose _PyRuntime is at `runtime`. */
export function encodeProc(runtime: bigint, layout: PyLayout): Buffer {
  const b = Buffer.alloc(STRUCTS.kiln_proc.size);
  b.writeBigUInt64LE(runtime, STRUCTS.kiln_proc.fields.runtime.offset);
  const o = STRUCTS.kiln_proc.fields.layout.offset;
  const f = layout.frame;
  const c = layout.code;
  b.writeInt16LE(layout.runtime.interpretersHead, o + L.runtime_interpreters_head.offset);
  b.writeInt16LE(layout.interpreter.next, o + L.interp_next.offset);
  b.writeInt16LE(layout.interpreter.threadsHead, o + L.interp_threads_head.offset);
  b.writeInt16LE(layout.thread.next, o + L.tstate_next.offset);
  b.writeInt16LE(layout.thread.nativeThreadId, o + L.tstate_native_thread_id.offset);
  b.writeInt16LE(layout.thread.threadId, o + L.tstate_thread_id.offset);
  b.writeInt16LE(layout.thread.frame, o + L.tstate_frame.offset);
  b.writeInt16LE(layout.cframe ? layout.cframe.currentFrame : -1, o + L.cframe_current_frame.offset);
  b.writeInt16LE(f.back, o + L.frame_back.offset);
  b.writeInt16LE(f.code, o + L.frame_code.offset);
  b.writeInt16LE(f.lasti, o + L.frame_lasti.offset);
  b.writeInt16LE(f.owner, o + L.frame_owner.offset);
  b.writeInt16LE(c.adaptive, o + L.code_adaptive.offset);
  b.writeInt16LE(c.firstlineno, o + L.code_firstlineno.offset);
  b.writeInt16LE(c.argcount, o + L.code_argcount.offset);
  b.writeUInt16LE(readSize([f.back, f.code, f.lasti, f.owner], 8), o + L.frame_read_size.offset);
  b.writeUInt16LE(readSize([c.firstlineno, c.argcount], 4), o + L.code_read_size.offset);
  b.writeUInt8(f.lastiIsPointer ? 1 : 0, o + L.lasti_is_pointer.offset);
  b.writeUInt8(f.ownerCStack ?? 0xff, o + L.owner_cstack.offset);
  b.writeUInt8(layout.thread.nativeThreadId >= 0 ? 1 : 0, o + L.match_native_tid.offset);
  b.writeBigUInt64LE(BigInt(f.codeTagMask), o + L.code_tag_mask.offset);
  return b;
}

export interface KernelFrame {
  code: bigint;
  /** raw instruction position, signed (negative: the frame has not started) */
  lasti: number;
  fingerprint: number;
}

export interface Chunk {
  parent: bigint;
  /** root first */
  frames: KernelFrame[];
}

export function decodeChunk(b: Buffer): Chunk {
  const len = Math.min(b.readUInt32LE(STRUCTS.kiln_chunk.fields.len.offset), KILN_CHUNK_FRAMES);
  const frames: KernelFrame[] = [];
  for (let i = 0; i < len; i++) {
    const at = STRUCTS.kiln_chunk.fields.frames.offset + i * STRUCTS.kiln_frame.size;
    frames.push({
      code: b.readBigUInt64LE(at + STRUCTS.kiln_frame.fields.code.offset),
      lasti: b.readInt32LE(at + STRUCTS.kiln_frame.fields.lasti.offset),
      fingerprint: b.readUInt32LE(at + STRUCTS.kiln_frame.fields.fingerprint.offset),
    });
  }
  return { parent: b.readBigUInt64LE(STRUCTS.kiln_chunk.fields.parent.offset), frames };
}

export interface SampleKey {
  pid: number;
  tid: number;
  stackId: bigint;
  depth: number;
  flags: number;
  comm: string;
}

export function decodeSampleKey(b: Buffer, at = 0): SampleKey {
  const F = STRUCTS.kiln_sample_key.fields;
  const commBytes = b.subarray(at + F.comm.offset, at + F.comm.offset + 16);
  const nul = commBytes.indexOf(0);
  return {
    pid: b.readUInt32LE(at + F.pid.offset),
    tid: b.readUInt32LE(at + F.tid.offset),
    stackId: b.readBigUInt64LE(at + F.stack_id.offset),
    depth: b.readUInt32LE(at + F.depth.offset),
    flags: b.readUInt32LE(at + F.flags.offset),
    comm: commBytes.subarray(0, nul < 0 ? 16 : nul).toString('utf8'),
  };
}

export function encodeState(generation: number, maxDepth: number): Buffer {
  const b = Buffer.alloc(STRUCTS.kiln_state.size);
  b.writeUInt32LE(generation >>> 0, STRUCTS.kiln_state.fields.generation.offset);
  b.writeUInt32LE(maxDepth, STRUCTS.kiln_state.fields.max_depth.offset);
  return b;
}
