/**
 * TypeScript mirror of bpf/kiln.h: constants, struct layouts and their
 * encoders/decoders. test/abi.test.ts compiles kiln.h and checks every size
 * and offset listed in STRUCTS against the C compiler. Like the header, it
 * knows nothing of CPython: unwinder/kernel-layout.ts says what to put here.
 */

export const KILN_MAX_DEPTH = 4096;
export const KILN_CHUNK_FRAMES = 64;
export const KILN_READ_WINDOW = 256;
export const KILN_STACK_WINDOW = 4096;
export const KILN_CODE_MEMO = 256;
export const KILN_COPY_MAX = 4096;
export const KILN_CODE_IDENT_INTS = 2;
export const KILN_CODE_IDENT_PTRS = 4;

export const KILN_F_TRUNCATED = 1 << 0;
export const KILN_F_NO_TSTATE = 1 << 1;
export const KILN_F_READ_ERROR = 1 << 2;
export const KILN_F_STACK_LOST = 1 << 3;

export const KILN_STATE_TIMING = 1 << 0;
export const KILN_STATE_SAMPLE_RING = 1 << 1;

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
  'code_events',
  'event_drops',
  'stacks_reused',
  'frame_reads',
  'code_reads',
  'ns_thread',
  'ns_walk',
  'ns_code',
  'ns_events',
  'ns_store',
  'ns_count',
  'sample_drops',
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
    size: 80,
    fields: {
      runtime_interpreters_head: s16(0),
      interp_next: s16(2),
      interp_threads_head: s16(4),
      tstate_next: s16(6),
      tstate_native_thread_id: s16(8),
      tstate_thread_id: s16(10),
      tstate_frame: s16(12),
      tstate_datastack_chunk: s16(14),
      tstate_read_base: s16(16),
      tstate_read_size: u16(18),
      cframe_current_frame: s16(20),
      chunk_previous: s16(22),
      chunk_size: s16(24),
      chunk_data: s16(26),
      frame_back: s16(28),
      frame_code: s16(30),
      frame_lasti: s16(32),
      frame_owner: s16(34),
      code_adaptive: s16(36),
      object_refcnt: s16(38),
      object_type: s16(40),
      code_ident_int: s16(42),
      code_ident_ptr: s16(46),
      code_copy: u16(54),
      frame_read_size: u16(62),
      code_read_size: u16(64),
      lasti_is_pointer: u8(66),
      owner_cstack: u8(67),
      match_native_tid: u8(68),
      code_tag_mask: u64(72),
    },
  },
  kiln_proc: {
    size: 104,
    fields: { runtime: u64(0), code_type: u64(8), layout: { offset: 16, type: 'struct' }, first_sights: u64(96) },
  },
  kiln_frame: {
    size: 8,
    fields: { code_id: u32(0), lasti: u32(4) },
  },
  kiln_code_key: {
    size: 16,
    fields: { pid: u32(0), code: u64(8) },
  },
  kiln_code_seen: {
    size: 16,
    fields: { identity: u64(0), code_id: u32(8) },
  },
  kiln_code_event: {
    size: 64,
    fields: { pid: u32(0), code_id: u32(4), code: u64(8), ident_int: u32(16), ident_ptr: u64(24), copied: u16(56) },
  },
  kiln_chunk: {
    size: 16 + KILN_CHUNK_FRAMES * 8,
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
  kiln_ring_sample: {
    size: 32,
    fields: { pid: u32(0), tid: u32(4), depth: u32(8), flags: u32(12), comm: { offset: 16, type: 'char[16]' } },
  },
  kiln_state: {
    size: 16,
    fields: { generation: u32(0), max_depth: u32(4), flags: u32(8) },
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
  /** -1: frames are not kept in data-stack chunks */
  tstateDatastackChunk: number;
  /** -1: tstateFrame points at the frame itself */
  cframeCurrentFrame: number;
  chunkPrevious: number;
  chunkSize: number;
  chunkData: number;
  frameBack: number;
  frameCode: number;
  frameLasti: number;
  frameOwner: number;
  codeAdaptive: number;
  objectRefcnt: number;
  objectType: number;
  /** offsets of the 32-bit fields of a code object's identity (at most KILN_CODE_IDENT_INTS) */
  codeIdentInts: number[];
  /** offsets of the pointer fields of a code object's identity (at most KILN_CODE_IDENT_PTRS) */
  codeIdentPtrs: number[];
  /** bytes of each object of codeIdentPtrs a first-sight event copies (at most KILN_COPY_MAX each) */
  codeCopy: number[];
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

/** Bytes from `base` to read so that `offsets` (each followed by `width` bytes) are covered. */
function readSize(offsets: number[], width: number, base = 0): number {
  const size = Math.max(...offsets.filter((o) => o >= 0)) + width - base;
  if (size > KILN_READ_WINDOW) throw new Error(`layout needs a ${size}-byte read, over the ${KILN_READ_WINDOW}-byte window`);
  return size;
}

/** The fields padded to their fixed count with `pad`. */
function fixed(values: number[], count: number, what: string, pad = -1): number[] {
  if (values.length > count) throw new Error(`${values.length} ${what}, the kernel takes ${count}`);
  return [...values, ...Array<number>(count - values.length).fill(pad)];
}

/** Bytes of a code object the kernel reads: every field it hashes or checks. */
export function codeReadSize(l: KernelLayout): number {
  return Math.max(readSize([l.objectRefcnt, l.objectType, ...l.codeIdentPtrs], 8), readSize(l.codeIdentInts, 4));
}

export function encodeProc(proc: KernelProc): Buffer {
  const b = Buffer.alloc(STRUCTS.kiln_proc.size);
  b.writeBigUInt64LE(proc.runtime, STRUCTS.kiln_proc.fields.runtime.offset);
  b.writeBigUInt64LE(proc.codeType, STRUCTS.kiln_proc.fields.code_type.offset);
  const o = STRUCTS.kiln_proc.fields.layout.offset;
  const l = proc.layout;
  // the thread-state fields the kernel reads at every sample, in one window
  const tstateFields = [l.matchNativeTid ? l.tstateNativeThreadId : l.tstateThreadId, l.tstateFrame, l.tstateDatastackChunk].filter((x) => x >= 0);
  const tstateBase = Math.min(...tstateFields);
  const s16s: [number, number][] = [
    [l.runtimeInterpretersHead, L.runtime_interpreters_head.offset],
    [l.interpNext, L.interp_next.offset],
    [l.interpThreadsHead, L.interp_threads_head.offset],
    [l.tstateNext, L.tstate_next.offset],
    [l.tstateNativeThreadId, L.tstate_native_thread_id.offset],
    [l.tstateThreadId, L.tstate_thread_id.offset],
    [l.tstateFrame, L.tstate_frame.offset],
    [l.tstateDatastackChunk, L.tstate_datastack_chunk.offset],
    [tstateBase, L.tstate_read_base.offset],
    [l.cframeCurrentFrame, L.cframe_current_frame.offset],
    [l.chunkPrevious, L.chunk_previous.offset],
    [l.chunkSize, L.chunk_size.offset],
    [l.chunkData, L.chunk_data.offset],
    [l.frameBack, L.frame_back.offset],
    [l.frameCode, L.frame_code.offset],
    [l.frameLasti, L.frame_lasti.offset],
    [l.frameOwner, L.frame_owner.offset],
    [l.codeAdaptive, L.code_adaptive.offset],
    [l.objectRefcnt, L.object_refcnt.offset],
    [l.objectType, L.object_type.offset],
    ...fixed(l.codeIdentInts, KILN_CODE_IDENT_INTS, 'identity ints').map((v, i): [number, number] => [v, L.code_ident_int.offset + 2 * i]),
    ...fixed(l.codeIdentPtrs, KILN_CODE_IDENT_PTRS, 'identity pointers').map((v, i): [number, number] => [v, L.code_ident_ptr.offset + 2 * i]),
  ];
  for (const [v, at] of s16s) b.writeInt16LE(v, o + at);
  fixed(l.codeCopy, KILN_CODE_IDENT_PTRS, 'copy sizes', 0).forEach((n, i) => {
    if (n < 0 || n > KILN_COPY_MAX) throw new Error(`copy size ${n} is over ${KILN_COPY_MAX}`);
    b.writeUInt16LE(n, o + L.code_copy.offset + 2 * i);
  });
  b.writeUInt16LE(readSize(tstateFields, 8, tstateBase), o + L.tstate_read_size.offset);
  b.writeUInt16LE(readSize([l.frameBack, l.frameCode, l.frameLasti, l.frameOwner], 8), o + L.frame_read_size.offset);
  b.writeUInt16LE(codeReadSize(l), o + L.code_read_size.offset);
  b.writeUInt8(l.lastiIsPointer ? 1 : 0, o + L.lasti_is_pointer.offset);
  b.writeUInt8(l.ownerCStack ?? 0xff, o + L.owner_cstack.offset);
  b.writeUInt8(l.matchNativeTid ? 1 : 0, o + L.match_native_tid.offset);
  b.writeBigUInt64LE(BigInt(l.codeTagMask), o + L.code_tag_mask.offset);
  return b;
}

export interface KernelFrame {
  /** a CodeEvent's id; 0: the kernel found no code object there, or could not report it */
  codeId: number;
  /** raw instruction position, signed (negative: the frame has not started) */
  lasti: number;
}

/** An object the kernel copied into a first-sight event: its first bytes, read while the code ran. */
export interface CopiedObject {
  address: bigint;
  bytes: Buffer;
}

/** A code object the kernel saw for the first time at an address with an identity. */
export interface CodeEvent {
  pid: number;
  codeId: number;
  code: bigint;
  identInts: number[];
  identPtrs: bigint[];
  /** one per identity pointer, in order; empty bytes when nothing was copied */
  copies: CopiedObject[];
}

const E = STRUCTS.kiln_code_event.fields;

/** A kiln_code_event record; throws on one whose copies do not fit its length. */
export function decodeCodeEvent(b: Buffer): CodeEvent {
  if (b.length < STRUCTS.kiln_code_event.size) throw new Error(`code event of ${b.length} bytes`);
  const identInts = Array.from({ length: KILN_CODE_IDENT_INTS }, (_, i) => b.readUInt32LE(E.ident_int.offset + 4 * i));
  const identPtrs = Array.from({ length: KILN_CODE_IDENT_PTRS }, (_, i) => b.readBigUInt64LE(E.ident_ptr.offset + 8 * i));
  const copies: CopiedObject[] = [];
  let at = STRUCTS.kiln_code_event.size;
  for (let i = 0; i < KILN_CODE_IDENT_PTRS; i++) {
    const n = b.readUInt16LE(E.copied.offset + 2 * i);
    if (at + n > b.length) throw new Error(`code event copies ${n} bytes past its end`);
    // copied out of the ring: the record's memory is the kernel's again once consumed
    copies.push({ address: identPtrs[i]!, bytes: Buffer.from(b.subarray(at, at + n)) });
    at += n;
  }
  return {
    pid: b.readUInt32LE(E.pid.offset),
    codeId: b.readUInt32LE(E.code_id.offset),
    code: b.readBigUInt64LE(E.code.offset),
    identInts,
    identPtrs,
    copies,
  };
}

export function encodeCodeKey(pid: number, code: bigint, out = Buffer.alloc(STRUCTS.kiln_code_key.size), at = 0): Buffer {
  out.writeUInt32LE(pid, at + STRUCTS.kiln_code_key.fields.pid.offset);
  out.writeUInt32LE(0, at + 4);
  out.writeBigUInt64LE(code, at + STRUCTS.kiln_code_key.fields.code.offset);
  return out;
}

export interface Chunk {
  parent: bigint;
  /** root first */
  frames: KernelFrame[];
}

export function decodeChunk(b: Buffer, at = 0): Chunk {
  const C = STRUCTS.kiln_chunk.fields;
  const len = Math.min(b.readUInt32LE(at + C.len.offset), KILN_CHUNK_FRAMES);
  const frames: KernelFrame[] = [];
  for (let i = 0; i < len; i++) {
    const f = at + C.frames.offset + i * STRUCTS.kiln_frame.size;
    frames.push({
      codeId: b.readUInt32LE(f + STRUCTS.kiln_frame.fields.code_id.offset),
      lasti: b.readInt32LE(f + STRUCTS.kiln_frame.fields.lasti.offset),
    });
  }
  return { parent: b.readBigUInt64LE(at + C.parent.offset), frames };
}

/** A kiln_ring_sample record (KILN_STATE_SAMPLE_RING): the sample and its frames' raw bytes. */
export interface RingSample {
  pid: number;
  tid: number;
  flags: number;
  comm: string;
  /** depth kiln_frame structs, leaf first */
  frames: Buffer;
}

export function decodeRingSample(b: Buffer): RingSample {
  const F = STRUCTS.kiln_ring_sample.fields;
  const depth = b.readUInt32LE(F.depth.offset);
  const end = STRUCTS.kiln_ring_sample.size + depth * STRUCTS.kiln_frame.size;
  if (depth > KILN_MAX_DEPTH || end > b.length) throw new Error(`ring sample of ${depth} frames in ${b.length} bytes`);
  return {
    pid: b.readUInt32LE(F.pid.offset),
    tid: b.readUInt32LE(F.tid.offset),
    flags: b.readUInt32LE(F.flags.offset),
    comm: cString(b.subarray(F.comm.offset, F.comm.offset + 16)),
    frames: Buffer.from(b.subarray(STRUCTS.kiln_ring_sample.size, end)),
  };
}

/** Frames as the kernel packs them (kiln_frame), leaf first, to root first. */
export function decodeFrames(b: Buffer): KernelFrame[] {
  const frames: KernelFrame[] = [];
  for (let at = b.length - STRUCTS.kiln_frame.size; at >= 0; at -= STRUCTS.kiln_frame.size)
    frames.push({ codeId: b.readUInt32LE(at + STRUCTS.kiln_frame.fields.code_id.offset), lasti: b.readInt32LE(at + STRUCTS.kiln_frame.fields.lasti.offset) });
  return frames;
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
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
  return {
    pid: b.readUInt32LE(at + F.pid.offset),
    tid: b.readUInt32LE(at + F.tid.offset),
    stackId: b.readBigUInt64LE(at + F.stack_id.offset),
    depth: b.readUInt32LE(at + F.depth.offset),
    flags: b.readUInt32LE(at + F.flags.offset),
    comm: cString(b.subarray(at + F.comm.offset, at + F.comm.offset + 16)),
  };
}

export function encodeState(generation: number, maxDepth: number, flags = 0): Buffer {
  const b = Buffer.alloc(STRUCTS.kiln_state.size);
  b.writeUInt32LE(generation >>> 0, STRUCTS.kiln_state.fields.generation.offset);
  b.writeUInt32LE(maxDepth, STRUCTS.kiln_state.fields.max_depth.offset);
  b.writeUInt32LE(flags, STRUCTS.kiln_state.fields.flags.offset);
  return b;
}
