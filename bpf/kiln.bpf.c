// SPDX-License-Identifier: GPL-2.0
/*
 * Kiln's sampler: at every CPU-clock tick that lands in a registered Python
 * process, find the sampled thread's PyThreadState, walk its Python frames
 * and count the stack. Each frame is recorded as (code id, instruction
 * position). A code object's id is assigned the first time the kernel sees
 * it at an address with an identity, and reported then through a ring
 * buffer with copies of its name, qualname, filename and line table, read
 * while it runs: userspace never has to find a short-lived code object
 * alive later to name it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "kiln.h"

#define EEXIST 17

char LICENSE[] SEC("license") = "GPL";

/* Sizes marked "resized" are set by the loader before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct kiln_proc);
} kiln_procs SEC(".maps");

/* tid -> its PyThreadState; tstate 0: none was found, not before `retry_ns` */
struct tstate_cache {
	__u64 tstate;
	__u32 pid;
	__u32 _pad;
	__u64 retry_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tstate_cache);
} kiln_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* resized */
	__type(key, struct kiln_code_key);
	__type(value, struct kiln_code_seen);
} kiln_codes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized */
} kiln_code_events SEC(".maps");

/* Only with KILN_STATE_SAMPLE_RING (sized to a page otherwise). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* resized */
} kiln_samples SEC(".maps");

/* The last code id handed out. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} kiln_code_ids SEC(".maps");

/* whole-stack hash -> its leaf chunk, while its chunks are known to be stored */
struct stack_seen {
	__u64 stack_id;
	__u32 generation;
	__u32 depth;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192); /* resized */
	__type(key, __u64);
	__type(value, struct stack_seen);
} kiln_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192); /* resized */
	__type(key, __u64);
	__type(value, struct kiln_chunk);
} kiln_chunks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192); /* resized */
	__type(key, struct kiln_sample_key);
	__type(value, __u64);
} kiln_counts_0 SEC(".maps"), kiln_counts_1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kiln_state);
} kiln_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KILN_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} kiln_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KILN_MAX_EVENTS);
	__type(key, __u32);
	__type(value, __u32);
} kiln_events SEC(".maps");

struct frame_walk {
	__u64 frame;
	__u64 hash;        /* of every (code id, lasti) so far */
	/* the data-stack chunk the walk is in: frames in [lo, hi); the one before
	 * it starts at `previous`, and holds [prev_lo, prev_hi) once read */
	__u64 lo, hi, previous, prev_lo, prev_hi;
	/* what s->win holds: [wbase, wbase + wlen) */
	__u64 wbase;
	__u32 wlen;
	__u32 depth;
	__u32 max_depth;
	__u32 flags;
	__u32 pid;
	__u32 seq;
	__u32 timing;
	__u32 _pad;
};

struct code_memo {
	__u64 code;
	__u32 seq;                       /* the sample it was filled in */
	__u32 code_id;
};

/* Per-CPU working memory, too large for the 512-byte BPF stack and for a
 * per-CPU map value (32 KiB), so a plain array indexed by CPU (resized to
 * the number of possible CPUs). A perf_event program never nests with itself
 * on one CPU, so each slot has one user at a time. */
struct walk_scratch {
	struct kiln_ring_sample rs;      /* right before frames: a ring sample is the two together */
	struct kiln_frame frames[KILN_MAX_DEPTH]; /* leaf first */
	/* in map memory rather than on the stack: the verifier then takes its
	 * fields for what they are, unknown numbers, and checks the walk's step
	 * once instead of once per possible value */
	struct frame_walk walk;
	struct kiln_chunk chunk;
	struct kiln_proc proc;
	struct code_memo memo[KILN_CODE_MEMO];
	__u32 seq;                       /* samples taken on this CPU: memo entries of older ones are stale */
	__u32 sights;                    /* first sights this sample asked for */
	__u8 tbuf[KILN_READ_WINDOW + 8];
	__u8 cbuf[KILN_READ_WINDOW + 8];
	/* a window of the data stack, room past its end for a frame's fields,
	 * and a frame read on its own (see frame_bytes) */
	__u8 win[2 * KILN_STACK_WINDOW + KILN_READ_WINDOW];
	struct kiln_code_event ev;
	__u8 copies[KILN_CODE_IDENT_PTRS * KILN_COPY_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized */
	__type(key, __u32);
	__type(value, struct walk_scratch);
} kiln_scratch SEC(".maps");

static __always_inline struct walk_scratch *scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&kiln_scratch, &cpu);
}

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&kiln_stats, &idx);
	if (v)
		*v += n;
}

/* Stage timing, only when userspace asks (a bench): two clock reads a stage. */
static __always_inline __u64 clock_if(__u32 timing)
{
	return timing ? bpf_ktime_get_ns() : 0;
}

static __always_inline void stage_done(__u32 timing, __u32 idx, __u64 since)
{
	if (timing)
		stat_add(idx, bpf_ktime_get_ns() - since);
}

/* Field loads from a window read earlier; offsets come from userspace data
 * and are bounded here so the verifier can check every access. */
static __always_inline __u64 load_u64(__u8 *buf, __s32 off)
{
	if (off < 0 || off > KILN_READ_WINDOW - 8)
		return 0;
	return *(__u64 *)(buf + (off & (KILN_READ_WINDOW - 1)));
}

static __always_inline __u32 load_u32(__u8 *buf, __s32 off)
{
	if (off < 0 || off > KILN_READ_WINDOW - 4)
		return 0;
	return *(__u32 *)(buf + (off & (KILN_READ_WINDOW - 1)));
}

static __always_inline __u8 load_u8(__u8 *buf, __s32 off)
{
	if (off < 0 || off > KILN_READ_WINDOW - 1)
		return 0;
	return buf[off & (KILN_READ_WINDOW - 1)];
}

static __always_inline __u64 read_ptr(__u64 base, __s16 off)
{
	__u64 v = 0;
	if (!base || off < 0)
		return 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(base + off)))
		return 0;
	return v;
}

/* A live object's reference count is between 1 and 2^32 - 1 (3.14 keeps
 * flags in the top 16 bits); freeing puts the allocator's free-list link
 * there (0, or an address far above 2^32). */
static __always_inline int looks_alive(__u64 refcnt)
{
	return (refcnt & 0xffffffffULL) && !((refcnt >> 32) & 0xffff);
}

/* ---- finding the sampled thread's PyThreadState ---- */

struct thread_walk {
	__u64 tstate;      /* candidate being looked at */
	__u64 want;        /* native tid or fs base */
	__s16 ident_off;
	__s16 next_off;
	__u32 _pad;
	__u64 found;
};

static long thread_step(__u64 i, struct thread_walk *w)
{
	if (!w->tstate)
		return 1;
	if (read_ptr(w->tstate, w->ident_off) == w->want) {
		w->found = w->tstate;
		return 1;
	}
	w->tstate = read_ptr(w->tstate, w->next_off);
	return 0;
}

static __always_inline __u64 thread_ident(struct kiln_py_layout *L, __u32 tid)
{
	if (L->match_native_tid)
		return tid;
	/* pthread_t is the thread's TCB address, which x86-64 keeps in fs */
	struct task_struct *task = bpf_get_current_task_btf();
	return BPF_CORE_READ(task, thread.fsbase);
}

/*
 * The thread's PyThreadState, its fields read into s->tbuf (one window from
 * tstate_read_base). A cached tstate is trusted only if the window still
 * names this thread. A thread found to have none is not searched for again
 * for KILN_NO_TSTATE_NS: a process's non-Python threads would otherwise walk
 * the whole thread list at every sample.
 */
static __always_inline __u64 find_tstate(struct walk_scratch *s, __u32 pid, __u32 tid)
{
	struct kiln_proc *p = &s->proc;
	struct kiln_py_layout *L = &p->layout;
	__s16 ident_off = L->match_native_tid ? L->tstate_native_thread_id : L->tstate_thread_id;
	__u64 want = thread_ident(L, tid);
	__u32 size = L->tstate_read_size;
	if (size > KILN_READ_WINDOW)
		size = KILN_READ_WINDOW;
	struct tstate_cache *c = bpf_map_lookup_elem(&kiln_threads, &tid);

	if (c && c->pid == pid) {
		if (!c->tstate && bpf_ktime_get_ns() < c->retry_ns)
			return 0;
		if (c->tstate && !bpf_probe_read_user(s->tbuf, size, (void *)(c->tstate + L->tstate_read_base)) &&
		    load_u64(s->tbuf, ident_off - L->tstate_read_base) == want)
			return c->tstate;
	}

	stat_add(KILN_STAT_TSTATE_WALKS, 1);
	struct thread_walk w = { .want = want, .ident_off = ident_off, .next_off = L->tstate_next };
	__u64 interp = read_ptr(p->runtime, L->runtime_interpreters_head);
	for (int i = 0; i < KILN_MAX_INTERPRETERS && interp && !w.found; i++) {
		w.tstate = read_ptr(interp, L->interp_threads_head);
		bpf_loop(KILN_MAX_THREADS, thread_step, &w, 0);
		interp = read_ptr(interp, L->interp_next);
	}
	struct tstate_cache nc = { .tstate = w.found, .pid = pid };
	if (!w.found)
		nc.retry_ns = bpf_ktime_get_ns() + KILN_NO_TSTATE_NS;
	else if (bpf_probe_read_user(s->tbuf, size, (void *)(w.found + L->tstate_read_base)))
		return 0;
	bpf_map_update_elem(&kiln_threads, &tid, &nc, BPF_ANY);
	return w.found;
}

/* ---- identifying code objects ---- */

/* Copies up to `want` bytes of the object at `addr` to s->copies + at;
 * returns how many. A read that crosses into an unmapped page is retried
 * up to the end of the object's first page. */
static __always_inline __u32 copy_object(struct walk_scratch *s, __u32 at, __u64 addr, __u32 want)
{
	if (!addr || !want || at > (KILN_CODE_IDENT_PTRS - 1) * KILN_COPY_MAX)
		return 0;
	if (want > KILN_COPY_MAX)
		want = KILN_COPY_MAX;
	if (!bpf_probe_read_user(s->copies + at, want, (void *)addr))
		return want;
	__u32 in_page = 4096 - (addr & 4095);
	if (in_page < want)
		want = in_page;
	if (!bpf_probe_read_user(s->copies + at, want, (void *)addr))
		return want;
	return 0;
}

/*
 * First sight of a code object at an address with an identity: a new id,
 * and an event carrying what names it. An id is used only once its event is
 * in the ring: if the ring is full, the frame is unnamed this time and the
 * next sample tries again. Events wake nobody: userspace takes them when it
 * drains, before the samples that name their ids.
 */
__noinline __u32 kiln_first_sight(__u32 pid, __u64 code, __u64 identity)
{
	struct kiln_code_key key = { .pid = pid, .code = code };
	struct walk_scratch *s = scratch();
	__u32 zero = 0;
	__u64 *next = bpf_map_lookup_elem(&kiln_code_ids, &zero);
	if (!s || !next)
		return 0;
	s->sights++;
	__u32 id = (__u32)(__sync_fetch_and_add(next, 1) + 1);
	if (!id) /* 0 means "unnamed": skip it when the counter wraps */
		id = (__u32)(__sync_fetch_and_add(next, 1) + 1);
	struct kiln_py_layout *L = &s->proc.layout;
	struct kiln_code_event *ev = &s->ev;
	ev->pid = pid;
	ev->code_id = id;
	ev->code = code;
	for (int i = 0; i < KILN_CODE_IDENT_INTS; i++)
		ev->ident_int[i] = load_u32(s->cbuf, L->code_ident_int[i]);
	__u32 len = 0;
	for (int i = 0; i < KILN_CODE_IDENT_PTRS; i++) {
		ev->ident_ptr[i] = load_u64(s->cbuf, L->code_ident_ptr[i]);
		__u32 n = copy_object(s, len, ev->ident_ptr[i], L->code_copy[i]);
		ev->copied[i] = n;
		len += n;
	}
	if (len > KILN_CODE_IDENT_PTRS * KILN_COPY_MAX)
		return 0;
	/* ev and the copies after it go out as one record */
	if (bpf_ringbuf_output(&kiln_code_events, ev, sizeof(*ev) + len, BPF_RB_NO_WAKEUP)) {
		stat_add(KILN_STAT_EVENT_DROPS, 1);
		return 0;
	}
	struct kiln_code_seen seen = { .identity = identity, .code_id = id };
	bpf_map_update_elem(&kiln_codes, &key, &seen, BPF_ANY);
	stat_add(KILN_STAT_CODE_EVENTS, 1);
	return id;
}

static __always_inline __u32 memo_slot(__u64 code)
{
	return ((code >> 4) ^ (code >> 12)) & (KILN_CODE_MEMO - 1);
}

/*
 * The id of the code object at `code`, not yet met in this sample (the walk
 * keeps a memo of those it has). Global, so the verifier checks it on its
 * own rather than at each call, which keeps the walk's step small.
 */
__noinline __u32 kiln_code_id(__u64 code, __u32 pid, __u32 seq, __u32 timing)
{
	struct walk_scratch *s = scratch();
	if (!s)
		return 0;
	struct code_memo *m = &s->memo[memo_slot(code)];
	__u64 t0 = clock_if(timing);
	struct kiln_py_layout *L = &s->proc.layout;
	__u32 id = 0;
	__u32 size = L->code_read_size;
	if (size > KILN_READ_WINDOW)
		size = KILN_READ_WINDOW;
	stat_add(KILN_STAT_CODE_READS, 1);
	if (bpf_probe_read_user(s->cbuf, size, (void *)code)) {
		stat_add(KILN_STAT_NOT_CODE, 1);
		goto out;
	}
	/* a torn or stale frame can point anywhere: only a live object of this
	 * process's own PyCode_Type is taken for a code object */
	if (load_u64(s->cbuf, L->object_type) != s->proc.code_type || !looks_alive(load_u64(s->cbuf, L->object_refcnt))) {
		stat_add(KILN_STAT_NOT_CODE, 1);
		goto out;
	}
	__u64 identity = KILN_HASH_SEED;
	for (int i = 0; i < KILN_CODE_IDENT_INTS; i++)
		identity = kiln_mix(identity, load_u32(s->cbuf, L->code_ident_int[i]));
	for (int i = 0; i < KILN_CODE_IDENT_PTRS; i++)
		identity = kiln_mix(identity, load_u64(s->cbuf, L->code_ident_ptr[i]));
	struct kiln_code_key key = { .pid = pid, .code = code };
	struct kiln_code_seen *seen = bpf_map_lookup_elem(&kiln_codes, &key);
	if (seen && seen->identity == identity) {
		id = seen->code_id;
	} else {
		__u64 t1 = clock_if(timing);
		id = kiln_first_sight(pid, code, identity);
		stage_done(timing, KILN_STAT_NS_EVENTS, t1);
	}
out:
	m->seq = seq;
	m->code = code;
	m->code_id = id;
	stage_done(timing, KILN_STAT_NS_CODE, t0);
	return id;
}

/* ---- walking the frame chain ---- */

/* Moves the walk into the data-stack chunk before the current one if
 * `frame` is there (its header is read once per walk). */
static __always_inline void enter_previous_chunk(struct frame_walk *w, struct kiln_py_layout *L, __u64 frame, __u32 size)
{
	if (!w->previous)
		return;
	if (!w->prev_hi) {
		__u64 chunk_size = read_ptr(w->previous, L->chunk_size);
		if (!chunk_size || chunk_size > (1ULL << 32)) {
			w->previous = 0;
			return;
		}
		w->prev_lo = w->previous + L->chunk_data;
		w->prev_hi = w->previous + chunk_size;
	}
	if (frame < w->prev_lo || frame + size > w->prev_hi)
		return; /* a frame outside the data stack (a generator's, say) */
	w->lo = w->prev_lo;
	w->hi = w->prev_hi;
	w->previous = read_ptr(w->previous, L->chunk_previous);
	w->prev_lo = w->prev_hi = 0;
}

/* Where in walk_scratch.win a frame read on its own goes: past the window
 * and the room after it, so that every frame's bytes are found at an offset
 * into the one buffer (one kind of pointer keeps the verifier's work small). */
#define SINGLE_AT (KILN_STACK_WINDOW + KILN_READ_WINDOW)
#define WIN_BYTES (2 * KILN_STACK_WINDOW)

/*
 * Where in s->win the first `size` bytes of the frame at w->frame are; -1
 * if it cannot be read. Frames in a data stack come from a window of up to
 * KILN_STACK_WINDOW bytes ending at the frame: its callers sit just below
 * it, so one read serves dozens of frames. Other frames (3.9/3.10's heap
 * frames, generators' frames, 3.12+'s C-stack entry frames) are read alone,
 * as is any frame whose window cannot be read.
 */
static __always_inline __s32 frame_bytes(struct walk_scratch *s, struct frame_walk *w, __u32 size)
{
	__u64 f = w->frame;
	if (f >= w->wbase && f + size <= w->wbase + w->wlen)
		return (__s32)((f - w->wbase) & (KILN_STACK_WINDOW - 1));
	struct kiln_py_layout *L = &s->proc.layout;
	if (w->hi && (f < w->lo || f + size > w->hi))
		enter_previous_chunk(w, L, f, size);
	stat_add(KILN_STAT_FRAME_READS, 1);
	if (w->hi && f >= w->lo && f + size <= w->hi) {
		__u64 start = f + size > w->lo + KILN_STACK_WINDOW ? f + size - KILN_STACK_WINDOW : w->lo;
		__u32 len = (__u32)(f + size - start);
		if (len <= KILN_STACK_WINDOW && len >= size &&
		    !bpf_probe_read_user(s->win, len, (void *)start)) {
			w->wbase = start;
			w->wlen = len;
			return (__s32)((f - start) & (KILN_STACK_WINDOW - 1));
		}
	}
	if (bpf_probe_read_user(s->win + SINGLE_AT, size, (void *)f))
		return -1;
	return SINGLE_AT;
}

static long frame_step(__u64 i, void *unused)
{
	struct walk_scratch *s = scratch();
	if (!s)
		return 1;
	struct frame_walk *w = &s->walk;
	if (!w->frame)
		return 1;
	struct kiln_py_layout *L = &s->proc.layout;

	__u32 size = L->frame_read_size;
	if (size > KILN_READ_WINDOW)
		size = KILN_READ_WINDOW;
	__s32 at = frame_bytes(s, w, size);
	if (at < 0) {
		w->flags |= KILN_F_READ_ERROR;
		return 1;
	}
	__u8 *fb = s->win + (at & (WIN_BYTES - 1));
	__u64 code = load_u64(fb, L->frame_code) & ~L->code_tag_mask;
	__u64 back = load_u64(fb, L->frame_back);
	/* owners from owner_cstack up are not Python frames: 3.12's and 3.13's
	 * C-stack entry shims, 3.14's interpreter-owned entry frames */
	int shim = L->frame_owner >= 0 && load_u8(fb, L->frame_owner) >= L->owner_cstack;

	if (!shim && code) {
		if (w->depth >= w->max_depth) {
			w->flags |= KILN_F_TRUNCATED;
			return 1;
		}
		__u32 lasti;
		if (L->lasti_is_pointer) {
			__u64 ip = load_u64(fb, L->frame_lasti);
			/* code units are 2 bytes; before the first one means "not started" */
			lasti = (__u32)((__s64)(ip - (code + L->code_adaptive)) >> 1);
		} else {
			lasti = load_u32(fb, L->frame_lasti);
		}
		/* within one sample the thread is stopped and its frames hold their
		 * code objects: the same address is the same code object */
		struct code_memo *m = &s->memo[memo_slot(code)];
		__u32 id = m->seq == w->seq && m->code == code ? m->code_id : kiln_code_id(code, w->pid, w->seq, w->timing);
		struct kiln_frame *kf = &s->frames[w->depth & (KILN_MAX_DEPTH - 1)];
		kf->code_id = id;
		kf->lasti = lasti;
		w->hash = kiln_mix(w->hash, ((__u64)id << 32) | lasti);
		w->depth++;
	}
	w->frame = back;
	return 0;
}

/* ---- storing the stack as root-first chunks ---- */

struct chunk_walk {
	__u64 parent;
	__u32 depth;
	__u32 lost;
};

static long chunk_step(__u64 k, struct chunk_walk *c)
{
	struct walk_scratch *s = scratch();
	if (!s)
		return 1;
	__u32 start = (__u32)k * KILN_CHUNK_FRAMES;
	if (start >= c->depth)
		return 1;
	__u32 len = c->depth - start;
	if (len > KILN_CHUNK_FRAMES)
		len = KILN_CHUNK_FRAMES;

	__u64 h = kiln_mix(kiln_mix(KILN_HASH_SEED, c->parent), len);
	for (__u32 j = 0; j < KILN_CHUNK_FRAMES; j++) {
		if (j >= len)
			break;
		/* root-first position start+j is leaf-first index depth-1-(start+j) */
		__u32 src = (c->depth - 1 - (start + j)) & (KILN_MAX_DEPTH - 1);
		struct kiln_frame *f = &s->frames[src];
		s->chunk.frames[j] = *f;
		h = kiln_mix(h, ((__u64)f->code_id << 32) | f->lasti);
	}
	if (!h)
		h = 1;
	s->chunk.parent = c->parent;
	s->chunk.len = len;
	long err = bpf_map_update_elem(&kiln_chunks, &h, &s->chunk, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		c->lost = 1;
		return 1;
	}
	c->parent = h;
	return 0;
}

/*
 * The stack's leaf chunk id. A stack already stored in this generation (the
 * chunks userspace has not taken yet) is found by its hash and not stored
 * again: a thread spinning in one place costs one lookup, not a chunk per
 * 64 frames. Returns 0 and sets *lost if the chunk map is full.
 */
static __always_inline __u64 store_stack(struct frame_walk *w, __u32 generation, __u32 *lost)
{
	__u64 key = kiln_mix(w->hash, w->depth);
	struct stack_seen *seen = bpf_map_lookup_elem(&kiln_stacks, &key);
	if (seen && seen->generation == generation && seen->depth == w->depth) {
		stat_add(KILN_STAT_STACKS_REUSED, 1);
		return seen->stack_id;
	}
	struct chunk_walk c = { .depth = w->depth };
	bpf_loop(KILN_MAX_DEPTH / KILN_CHUNK_FRAMES, chunk_step, &c, 0);
	if (c.lost) {
		*lost = 1;
		return 0;
	}
	struct stack_seen ns = { .stack_id = c.parent, .generation = generation, .depth = w->depth };
	bpf_map_update_elem(&kiln_stacks, &key, &ns, BPF_ANY);
	return c.parent;
}

static __always_inline void count(void *counts, struct kiln_sample_key *key)
{
	__u64 *v = bpf_map_lookup_elem(counts, key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	__u64 one = 1;
	long err = bpf_map_update_elem(counts, key, &one, BPF_NOEXIST);
	if (err == -EEXIST) {
		v = bpf_map_lookup_elem(counts, key);
		if (v)
			__sync_fetch_and_add(v, 1);
	} else if (err) {
		stat_add(KILN_STAT_COUNT_DROPS, 1);
	}
}

SEC("perf_event")
int kiln_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	if (!pid)
		return 0;
	struct kiln_proc *p = bpf_map_lookup_elem(&kiln_procs, &pid);
	if (!p)
		return 0;
	struct walk_scratch *s = scratch();
	__u32 zero = 0;
	struct kiln_state *st = bpf_map_lookup_elem(&kiln_state, &zero);
	if (!s || !st)
		return 0;
	__u32 timing = st->flags & KILN_STATE_TIMING;
	__u64 t = clock_if(timing);
	stat_add(KILN_STAT_SAMPLES, 1);
	s->proc = *p;
	s->seq++;
	s->sights = 0;

	struct kiln_sample_key key = { .pid = pid, .tid = tid };
	bpf_get_current_comm(key.comm, sizeof(key.comm));

	__u64 tstate = find_tstate(s, pid, tid);
	stage_done(timing, KILN_STAT_NS_THREAD, t);
	__u32 depth = 0, flags = 0;
	if (!tstate) {
		flags = KILN_F_NO_TSTATE;
		stat_add(KILN_STAT_NO_TSTATE, 1);
	} else {
		t = clock_if(timing);
		struct kiln_py_layout *L = &s->proc.layout;
		struct frame_walk *w = &s->walk;
		__builtin_memset(w, 0, sizeof(*w));
		w->hash = KILN_HASH_SEED;
		w->max_depth = st->max_depth;
		w->pid = pid;
		w->seq = s->seq;
		w->timing = timing;
		if (!w->max_depth || w->max_depth > KILN_MAX_DEPTH)
			w->max_depth = KILN_MAX_DEPTH;
		w->frame = load_u64(s->tbuf, L->tstate_frame - L->tstate_read_base);
		if (L->cframe_current_frame >= 0)
			w->frame = read_ptr(w->frame, L->cframe_current_frame);
		__u64 chunk = L->tstate_datastack_chunk >= 0 ? load_u64(s->tbuf, L->tstate_datastack_chunk - L->tstate_read_base) : 0;
		__u64 chunk_size = read_ptr(chunk, L->chunk_size);
		if (chunk && chunk_size && chunk_size <= (1ULL << 32)) {
			w->lo = chunk + L->chunk_data;
			w->hi = chunk + chunk_size;
			w->previous = read_ptr(chunk, L->chunk_previous);
		}
		/* twice the depth: shim frames take loop steps but no slots */
		bpf_loop(KILN_MAX_DEPTH * 2, frame_step, NULL, 0);
		if (w->frame && !(w->flags & (KILN_F_TRUNCATED | KILN_F_READ_ERROR)))
			w->flags |= KILN_F_TRUNCATED;
		stage_done(timing, KILN_STAT_NS_WALK, t);

		depth = w->depth;
		flags = w->flags;
		stat_add(KILN_STAT_FRAMES, depth);
		if (flags & KILN_F_TRUNCATED)
			stat_add(KILN_STAT_TRUNCATED, 1);
		if (flags & KILN_F_READ_ERROR)
			stat_add(KILN_STAT_READ_ERRORS, 1);
	}

	/* what this process asks of the event ring, for its budget in userspace */
	if (s->sights)
		__sync_fetch_and_add(&p->first_sights, s->sights);

	t = clock_if(timing);
	if (st->flags & KILN_STATE_SAMPLE_RING) {
		/* the alternative to storing and counting: every sample to userspace */
		s->rs.pid = pid;
		s->rs.tid = tid;
		s->rs.flags = flags;
		if (depth > KILN_MAX_DEPTH)
			depth = KILN_MAX_DEPTH;
		s->rs.depth = depth;
		__builtin_memcpy(s->rs.comm, key.comm, sizeof(key.comm));
		if (bpf_ringbuf_output(&kiln_samples, &s->rs, sizeof(s->rs) + depth * sizeof(struct kiln_frame), BPF_RB_NO_WAKEUP))
			stat_add(KILN_STAT_SAMPLE_DROPS, 1);
		stage_done(timing, KILN_STAT_NS_STORE, t);
		return 0;
	}
	key.flags = flags;
	if (depth) {
		__u32 lost = 0;
		__u64 stack_id = store_stack(&s->walk, st->generation, &lost);
		if (lost) {
			key.flags |= KILN_F_STACK_LOST;
			stat_add(KILN_STAT_CHUNK_DROPS, 1);
		} else {
			key.stack_id = stack_id;
			key.depth = depth;
		}
	}
	stage_done(timing, KILN_STAT_NS_STORE, t);

	t = clock_if(timing);
	if (st->generation & 1)
		count(&kiln_counts_1, &key);
	else
		count(&kiln_counts_0, &key);
	stage_done(timing, KILN_STAT_NS_COUNT, t);
	return 0;
}

/* An exec replaces the address space. For a registered process the layout
 * and _PyRuntime address are stale from this instant: stop walking it. Every
 * exec is reported, so that userspace looks at a process again only when it
 * may have become (or stopped being) Python, instead of rereading /proc. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(kiln_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 ev = KILN_EVENT_EXEC;
	if (bpf_map_lookup_elem(&kiln_procs, &pid)) {
		bpf_map_delete_elem(&kiln_procs, &pid);
		ev |= KILN_EVENT_WAS_FOLLOWED;
	}
	bpf_map_update_elem(&kiln_events, &pid, &ev, BPF_ANY);
	return 0;
}
