/**
 * TypeScript mirror of bpf/kiln.h: constants, struct layouts and their
 * encoders/decoders. test/abi.test.ts compiles kiln.h and checks every size
 * and offset listed in STRUCTS against the C compiler. Like the header, it
 * knows nothing of CPython: unwinder/kernel-layout.ts says what to put here.
 */

export const KILN_MAX_DEPTH = 4096;
export const KILN_CHUNK_FRAMES = 64;
export const KILN_READ_WINDOW = 256;
export const KILN_CODE_IDENT_INTS = 2;
export const KILN_CODE_IDENT_PTRS = 4;

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
  'not_code',
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
    size: 56,
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
      object_type: s16(26),
      code_ident_int: s16(28),
      code_ident_ptr: s16(32),
      frame_read_size: u16(40),
      code_read_size: u16(42),
      lasti_is_pointer: u8(44),
      owner_cstack: u8(45),
      match_native_tid: u8(46),
      code_tag_mask: u64(48),
    },
  },
  kiln_proc: {
    size: 72,
    fields: { runtime: u64(0), code_type: u64(8), layout: { offset: 16, type: 'struct' } },
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

/**
 * struct kiln_py_layout in TypeScript terms: where the walker finds each
 * thing, in bytes, -1 where the build has no such field.
 */
export interface KernelLayout {
  runtimeInterpretersHead: number;
  interpNext: number;
  interpThreadsHead: number;
  tstateNext: number;
  tstateNativeThreadId: number;
  tstateThreadId: number;
  tstateFrame: number;
  /** -1: tstateFrame points at the frame itself */
  cframeCurrentFrame: number;
  frameBack: number;
  frameCode: number;
  frameLasti: number;
  frameOwner: number;
  codeAdaptive: number;
  objectType: number;
  /** offsets of the 32-bit fields of a code object's identity (at most KILN_CODE_IDENT_INTS) */
  codeIdentInts: number[];
  /** offsets of the pointer fields of a code object's identity (at most KILN_CODE_IDENT_PTRS) */
  codeIdentPtrs: number[];
  lastiIsPointer: boolean;
  /** owner value from which frames are shims, skipped; null when none */
  ownerCStack: number | null;
  /** match native_thread_id to the tid (else thread_id to the fs base) */
  matchNativeTid: boolean;
  codeTagMask: number;
}

/** struct kiln_proc: a process to walk. */
export interface KernelProc {
  runtime: bigint;
  /** address of the process's PyCode_Type */
  codeType: bigint;
  layout: KernelLayout;
}

/** Bytes of an object to read so that `offsets` (each followed by `width` bytes) are covered. */
function readSize(offsets: number[], width: number): number {
  const size = Math.max(...offsets.filter((o) => o >= 0)) + width;
  if (size > KILN_READ_WINDOW) throw new Error(`layout needs a ${size}-byte read, over the ${KILN_READ_WINDOW}-byte window`);
  return size;
}

/** The identity fields padded to their fixed count with -1 (absent). */
function identFields(offsets: number[], count: number, what: string): number[] {
  if (offsets.length > count) throw new Error(`${offsets.length} ${what} identity fields, the kernel takes ${count}`);
  return [...offsets, ...Array<number>(count - offsets.length).fill(-1)];
}

/** Bytes of a code object the kernel reads: every field it hashes or checks. */
export function codeReadSize(l: KernelLayout): number {
  return Math.max(readSize([l.objectType, ...l.codeIdentPtrs], 8), readSize(l.codeIdentInts, 4));
}

export function encodeProc(proc: KernelProc): Buffer {
  const b = Buffer.alloc(STRUCTS.kiln_proc.size);
  b.writeBigUInt64LE(proc.runtime, STRUCTS.kiln_proc.fields.runtime.offset);
  b.writeBigUInt64LE(proc.codeType, STRUCTS.kiln_proc.fields.code_type.offset);
  const o = STRUCTS.kiln_proc.fields.layout.offset;
  const l = proc.layout;
  const s16s: [number, number][] = [
    [l.runtimeInterpretersHead, L.runtime_interpreters_head.offset],
    [l.interpNext, L.interp_next.offset],
    [l.interpThreadsHead, L.interp_threads_head.offset],
    [l.tstateNext, L.tstate_next.offset],
    [l.tstateNativeThreadId, L.tstate_native_thread_id.offset],
    [l.tstateThreadId, L.tstate_thread_id.offset],
    [l.tstateFrame, L.tstate_frame.offset],
    [l.cframeCurrentFrame, L.cframe_current_frame.offset],
    [l.frameBack, L.frame_back.offset],
    [l.frameCode, L.frame_code.offset],
    [l.frameLasti, L.frame_lasti.offset],
    [l.frameOwner, L.frame_owner.offset],
    [l.codeAdaptive, L.code_adaptive.offset],
    [l.objectType, L.object_type.offset],
    ...identFields(l.codeIdentInts, KILN_CODE_IDENT_INTS, 'int').map((v, i): [number, number] => [v, L.code_ident_int.offset + 2 * i]),
    ...identFields(l.codeIdentPtrs, KILN_CODE_IDENT_PTRS, 'pointer').map((v, i): [number, number] => [v, L.code_ident_ptr.offset + 2 * i]),
  ];
  for (const [v, at] of s16s) b.writeInt16LE(v, o + at);
  b.writeUInt16LE(readSize([l.frameBack, l.frameCode, l.frameLasti, l.frameOwner], 8), o + L.frame_read_size.offset);
  b.writeUInt16LE(codeReadSize(l), o + L.code_read_size.offset);
  b.writeUInt8(l.lastiIsPointer ? 1 : 0, o + L.lasti_is_pointer.offset);
  b.writeUInt8(l.ownerCStack ?? 0xff, o + L.owner_cstack.offset);
  b.writeUInt8(l.matchNativeTid ? 1 : 0, o + L.match_native_tid.offset);
  b.writeBigUInt64LE(BigInt(l.codeTagMask), o + L.code_tag_mask.offset);
  return b;
}

const MASK64 = (1n << 64n) - 1n;
const HASH_SEED = 0x6b696c6en;
const HASH_MUL = 0x9e3779b97f4a7c15n;

function mix(h: bigint, v: bigint): bigint {
  h = ((h ^ v) * HASH_MUL) & MASK64;
  return h ^ (h >> 29n);
}

/**
 * kiln_frame.fingerprint of a code object, as the kernel computes it from
 * the first bytes of the object (`window`, at least codeReadSize bytes).
 */
export function codeIdentity(window: Buffer, l: KernelLayout): number {
  let h = HASH_SEED;
  for (const off of identFields(l.codeIdentInts, KILN_CODE_IDENT_INTS, 'int')) h = mix(h, off < 0 ? 0n : BigInt(window.readUInt32LE(off)));
  for (const off of identFields(l.codeIdentPtrs, KILN_CODE_IDENT_PTRS, 'pointer')) h = mix(h, off < 0 ? 0n : window.readBigUInt64LE(off));
  return Number((h ^ (h >> 32n)) & 0xffffffffn);
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
