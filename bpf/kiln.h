/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one boundary between the BPF sampler and userspace. Every struct here
 * is mirrored, field for field, by bpf/abi.ts; test/abi.test.ts compiles this
 * header and checks that both agree on every size and offset.
 *
 * Fixed-width types only, explicit padding, no bitfields: the layout must be
 * the same for clang -target bpf and for the host compiler.
 */
#ifndef KILN_H
#define KILN_H

/* Hard cap on Python frames walked per sample; the runtime limit
 * (kiln_state.max_depth) may be lower. Power of two: used as an index mask. */
#define KILN_MAX_DEPTH 4096
/* Stacks are stored as a chain of chunks, root first, each naming its parent.
 * Stacks that share their root-side frames share chunks. */
#define KILN_CHUNK_FRAMES 64
/* Bounds on the walks that find a thread's PyThreadState. */
#define KILN_MAX_INTERPRETERS 8
#define KILN_MAX_THREADS 4096
/* Largest window read from a frame or a code object in one probe read. */
#define KILN_READ_WINDOW 256

/* kiln_sample_key.flags */
#define KILN_F_TRUNCATED   (1u << 0) /* deeper than max_depth: the root side was cut */
#define KILN_F_NO_TSTATE   (1u << 1) /* thread of a Python process with no PyThreadState */
#define KILN_F_READ_ERROR  (1u << 2) /* a frame could not be read: the stack ends there */
#define KILN_F_STACK_LOST  (1u << 3) /* the chunk map was full: frames are not stored */

/* Indexes into the per-CPU kiln_stats array. */
enum kiln_stat {
	KILN_STAT_SAMPLES = 0,       /* samples of registered processes */
	KILN_STAT_COUNT_DROPS = 1,   /* samples lost: the counts map was full */
	KILN_STAT_CHUNK_DROPS = 2,   /* stacks lost: the chunk map was full */
	KILN_STAT_TRUNCATED = 3,     /* samples deeper than max_depth */
	KILN_STAT_NO_TSTATE = 4,     /* samples of threads without a thread state */
	KILN_STAT_READ_ERRORS = 5,   /* samples whose walk hit an unreadable address */
	KILN_STAT_TSTATE_WALKS = 6,  /* thread-state cache misses (full thread-list walks) */
	KILN_STAT_FRAMES = 7,        /* Python frames recorded */
	KILN_STAT_NOT_CODE = 8,      /* frames whose code pointer was not a code object (recorded unnamed) */
	KILN_STAT_MAX = 9,
};

/* What makes a code object itself rather than another one later allocated
 * at its address: a few of its int fields and object pointers, hashed by the
 * kernel into kiln_frame.fingerprint. Userspace hashes the same fields of the
 * code object it reads and names the frame only when both agree. */
#define KILN_CODE_IDENT_INTS 2
#define KILN_CODE_IDENT_PTRS 4

/* Where the walker finds things in one interpreter build. Offsets are in
 * bytes; a negative offset means the build has no such field. The kernel
 * knows nothing of CPython: userspace fills this from its own description of
 * the build (unwinder/kernel-layout.ts). */
struct kiln_py_layout {
	__s16 runtime_interpreters_head; /* _PyRuntime.interpreters.head */
	__s16 interp_next;               /* PyInterpreterState.next */
	__s16 interp_threads_head;       /* PyInterpreterState.tstate_head / threads.head */
	__s16 tstate_next;               /* PyThreadState.next */
	__s16 tstate_native_thread_id;   /* PyThreadState.native_thread_id (3.11+) */
	__s16 tstate_thread_id;          /* PyThreadState.thread_id (a pthread_t) */
	__s16 tstate_frame;              /* frame (<=3.10), cframe (3.11, 3.12), current_frame (3.13+) */
	__s16 cframe_current_frame;      /* _PyCFrame.current_frame; <0: tstate_frame is the frame */
	__s16 frame_back;                /* f_back / previous */
	__s16 frame_code;                /* f_code / f_executable */
	__s16 frame_lasti;               /* f_lasti (int) or prev_instr / instr_ptr (pointer) */
	__s16 frame_owner;               /* owner (char); <0: none */
	__s16 code_adaptive;             /* first code unit inside the code object */
	__s16 object_type;               /* PyObject.ob_type */
	__s16 code_ident_int[KILN_CODE_IDENT_INTS]; /* 32-bit fields of a code object's identity */
	__s16 code_ident_ptr[KILN_CODE_IDENT_PTRS]; /* pointer fields of a code object's identity */
	__u16 frame_read_size;           /* bytes of a frame to read: past the last field used */
	__u16 code_read_size;            /* bytes of a code object to read */
	__u8 lasti_is_pointer;           /* 1: frame_lasti points into the bytecode */
	__u8 owner_cstack;               /* frames whose owner is >= this are shims, skipped; 0xff: none */
	__u8 match_native_tid;           /* 1: match native_thread_id to the tid; 0: thread_id to fs base */
	__u8 _pad[1];
	__u64 code_tag_mask;             /* low bits to clear in frame_code (3.14 _PyStackRef tag) */
};

/* kiln_procs value: one registered Python process. */
struct kiln_proc {
	__u64 runtime;                   /* address of _PyRuntime in the process */
	__u64 code_type;                 /* address of its PyCode_Type: frames whose code is not one are not named */
	struct kiln_py_layout layout;
};

/* One Python frame as the kernel saw it. */
struct kiln_frame {
	__u64 code;                      /* address of the code object; 0: not a code object */
	__u32 lasti;                     /* raw instruction position (see kiln_py_layout.lasti_is_pointer) */
	__u32 fingerprint;               /* the code object's identity, hashed (see kiln_identity) */
};

/* The hash of kiln_frame.fingerprint, mirrored by bpf/abi.ts: every identity
 * field in order, ints then pointers, absent ones as 0, folded to 32 bits. */
#define KILN_HASH_SEED 0x6b696c6eULL
#define KILN_HASH_MUL 0x9e3779b97f4a7c15ULL
static inline __u64 kiln_mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= KILN_HASH_MUL;
	return h ^ (h >> 29);
}

static inline __u32 kiln_fold(__u64 h)
{
	return (__u32)(h ^ (h >> 32));
}

/* kiln_chunks value. frames[] is root first; the chunk's id is a hash of
 * (parent, len, frames), so equal prefixes are stored once. */
struct kiln_chunk {
	__u64 parent;                    /* id of the chunk nearer the root; 0 for the root chunk */
	__u32 len;                       /* frames used in frames[] */
	__u32 _pad;
	struct kiln_frame frames[KILN_CHUNK_FRAMES];
};

/* kiln_counts_{0,1} key; the value is a __u64 sample count. */
struct kiln_sample_key {
	__u32 pid;                       /* thread group id, as the host sees it */
	__u32 tid;
	__u64 stack_id;                  /* leaf chunk id; 0: no frames */
	__u32 depth;                     /* frames stored in the chunks */
	__u32 flags;                     /* KILN_F_* */
	char comm[16];                   /* thread name at sample time */
};

/* kiln_state[0]: runtime settings written by userspace. */
struct kiln_state {
	__u32 generation;                /* counts map in use: kiln_counts_{generation & 1} */
	__u32 max_depth;                 /* frames walked before marking a stack truncated */
};

/* kiln_events (pid -> flags): processes that exec'd since userspace last looked.
 * When it is full, userspace rescans /proc instead. */
#define KILN_MAX_EVENTS 8192
#define KILN_EVENT_EXEC 1
#define KILN_EVENT_WAS_FOLLOWED 2 /* it was registered; the kernel unregistered it */

#endif /* KILN_H */
