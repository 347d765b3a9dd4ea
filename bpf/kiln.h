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
/* Largest window read from a thread state, a frame or a code object in one probe read. */
#define KILN_READ_WINDOW 256
/* Frames that live in a data stack (3.11+) are read this many bytes at a
 * time: one read covers dozens of callers. Power of two. */
#define KILN_STACK_WINDOW 4096
/* Code objects already identified in the current sample, by address. Power of two. */
#define KILN_CODE_MEMO 256
/* Most bytes copied from one object into a first-sight event. */
#define KILN_COPY_MAX 4096
/* A thread found to have no PyThreadState is not searched for again for this long. */
#define KILN_NO_TSTATE_NS 1000000000ULL

/* What makes a code object itself rather than another one later allocated
 * at its address: a few of its int fields and object pointers. The kernel
 * compares them (hashed) at every sample and reports a code object the
 * first time it sees it with these values at that address. */
#define KILN_CODE_IDENT_INTS 2
#define KILN_CODE_IDENT_PTRS 4

/* kiln_sample_key.flags */
#define KILN_F_TRUNCATED   (1u << 0) /* deeper than max_depth: the root side was cut */
#define KILN_F_NO_TSTATE   (1u << 1) /* thread of a Python process with no PyThreadState */
#define KILN_F_READ_ERROR  (1u << 2) /* a frame could not be read: the stack ends there */
#define KILN_F_STACK_LOST  (1u << 3) /* the chunk map was full: frames are not stored */

/* kiln_state.flags */
#define KILN_STATE_TIMING  (1u << 0) /* account each stage's time in kiln_stats (costs two clock reads a stage) */
#define KILN_STATE_SAMPLE_RING (1u << 1) /* send every sample through kiln_samples instead of storing and
					 * counting it in the kernel: the alternative the bench measures */

/* Indexes into the per-CPU kiln_stats array. */
enum kiln_stat {
	KILN_STAT_SAMPLES = 0,       /* samples of registered processes */
	KILN_STAT_COUNT_DROPS = 1,   /* samples lost: the counts map was full */
	KILN_STAT_CHUNK_DROPS = 2,   /* stacks lost: the chunk map was full */
	KILN_STAT_TRUNCATED = 3,     /* samples deeper than max_depth */
	KILN_STAT_NO_TSTATE = 4,     /* samples of threads without a thread state */
	KILN_STAT_READ_ERRORS = 5,   /* samples whose walk hit an unreadable address */
	KILN_STAT_TSTATE_WALKS = 6,  /* thread-list walks (no thread state cached for the thread) */
	KILN_STAT_FRAMES = 7,        /* Python frames recorded */
	KILN_STAT_NOT_CODE = 8,      /* frames whose code pointer was no live code object (recorded unnamed) */
	KILN_STAT_CODE_EVENTS = 9,   /* first sights of code objects reported */
	KILN_STAT_EVENT_DROPS = 10,  /* first sights not reported: the event ring was full (frame unnamed, retried) */
	KILN_STAT_STACKS_REUSED = 11,/* samples whose stack was stored already in this generation */
	KILN_STAT_FRAME_READS = 12,  /* reads of frame memory (windows and single frames) */
	KILN_STAT_CODE_READS = 13,   /* reads of code objects (once per code object per sample) */
	KILN_STAT_NS_THREAD = 14,    /* with KILN_STATE_TIMING: ns finding the thread state */
	KILN_STAT_NS_WALK = 15,      /* ns walking frames, code identification included */
	KILN_STAT_NS_CODE = 16,      /* ns identifying code objects not yet seen in the sample (part of the walk) */
	KILN_STAT_NS_EVENTS = 17,    /* ns reporting first sights (part of the code time) */
	KILN_STAT_NS_STORE = 18,     /* ns storing the stack (memo lookup, chunks) */
	KILN_STAT_NS_COUNT = 19,     /* ns counting the sample */
	KILN_STAT_SAMPLE_DROPS = 20, /* with KILN_STATE_SAMPLE_RING: samples the ring had no room for */
	KILN_STAT_MAX = 21,
};

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
	__s16 tstate_datastack_chunk;    /* PyThreadState.datastack_chunk (3.11+) */
	__s16 tstate_read_base;          /* the thread-state fields above are read in one window from here */
	__u16 tstate_read_size;          /* ... of this many bytes */
	__s16 cframe_current_frame;      /* _PyCFrame.current_frame; <0: tstate_frame is the frame */
	__s16 chunk_previous;            /* _PyStackChunk.previous */
	__s16 chunk_size;                /* _PyStackChunk.size (bytes, header included) */
	__s16 chunk_data;                /* _PyStackChunk.data: where frames start */
	__s16 frame_back;                /* f_back / previous */
	__s16 frame_code;                /* f_code / f_executable */
	__s16 frame_lasti;               /* f_lasti (int) or prev_instr / instr_ptr (pointer) */
	__s16 frame_owner;               /* owner (char); <0: none */
	__s16 code_adaptive;             /* first code unit inside the code object */
	__s16 object_refcnt;             /* PyObject.ob_refcnt */
	__s16 object_type;               /* PyObject.ob_type */
	__s16 code_ident_int[KILN_CODE_IDENT_INTS]; /* 32-bit fields of a code object's identity */
	__s16 code_ident_ptr[KILN_CODE_IDENT_PTRS]; /* pointer fields of a code object's identity */
	__u16 code_copy[KILN_CODE_IDENT_PTRS];      /* bytes of each of those objects a first-sight event copies */
	__u16 frame_read_size;           /* bytes of a frame to read: past the last field used */
	__u16 code_read_size;            /* bytes of a code object to read */
	__u8 lasti_is_pointer;           /* 1: frame_lasti points into the bytecode */
	__u8 owner_cstack;               /* frames whose owner is >= this are shims, skipped; 0xff: none */
	__u8 match_native_tid;           /* 1: match native_thread_id to the tid; 0: thread_id to fs base */
	__u8 _pad[3];
	__u64 code_tag_mask;             /* low bits to clear in frame_code (3.14 _PyStackRef tag) */
};

/* kiln_procs value: one registered Python process. */
struct kiln_proc {
	__u64 runtime;                   /* address of _PyRuntime in the process */
	__u64 code_type;                 /* address of its PyCode_Type: frames whose code is not one are not named */
	struct kiln_py_layout layout;
	__u64 first_sights;              /* written by the kernel: first sights the process's samples asked for,
	                                  * reported or not (its share of the event ring's demand) */
};

/* One Python frame as the kernel saw it. */
struct kiln_frame {
	__u32 code_id;                   /* a kiln_code_event's id; 0: not a code object, or not reported */
	__u32 lasti;                     /* raw instruction position (see kiln_py_layout.lasti_is_pointer) */
};

/* kiln_codes key and value: the code objects reported so far, per process. */
struct kiln_code_key {
	__u32 pid;
	__u32 _pad;
	__u64 code;                      /* address of the code object */
};

struct kiln_code_seen {
	__u64 identity;                  /* kiln_mix of the identity fields */
	__u32 code_id;
	__u32 _pad;
};

/* kiln_code_events record: a code object at an address, with an identity, seen
 * for the first time. Followed by copied[0] bytes of the object at
 * ident_ptr[0] (from its first byte), then copied[1] of ident_ptr[1], and so
 * on: as much of each as kiln_py_layout.code_copy asks (less at the end of a
 * mapping), read while the code object was running, hence alive. */
struct kiln_code_event {
	__u32 pid;
	__u32 code_id;
	__u64 code;
	__u32 ident_int[KILN_CODE_IDENT_INTS];
	__u64 ident_ptr[KILN_CODE_IDENT_PTRS];
	__u16 copied[KILN_CODE_IDENT_PTRS];
};

/* The hash of identities, stacks and chunks, mirrored by bpf/abi.ts. */
#define KILN_HASH_SEED 0x6b696c6eULL
#define KILN_HASH_MUL 0x9e3779b97f4a7c15ULL
static inline __u64 kiln_mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= KILN_HASH_MUL;
	return h ^ (h >> 29);
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

/* kiln_samples record (with KILN_STATE_SAMPLE_RING): one sample, followed by
 * its depth frames (struct kiln_frame, leaf first). */
struct kiln_ring_sample {
	__u32 pid;
	__u32 tid;
	__u32 depth;
	__u32 flags;                     /* KILN_F_* */
	char comm[16];
};

/* kiln_state[0]: runtime settings written by userspace. */
struct kiln_state {
	__u32 generation;                /* counts map in use: kiln_counts_{generation & 1} */
	__u32 max_depth;                 /* frames walked before marking a stack truncated */
	__u32 flags;                     /* KILN_STATE_* */
	__u32 _pad;
};

/* kiln_events (pid -> flags): processes that exec'd since userspace last looked.
 * When it is full, userspace rescans /proc instead. */
#define KILN_MAX_EVENTS 8192
#define KILN_EVENT_EXEC 1
#define KILN_EVENT_WAS_FOLLOWED 2 /* it was registered; the kernel unregistered it */

#endif /* KILN_H */
