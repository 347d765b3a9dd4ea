// SPDX-License-Identifier: GPL-2.0
/*
 * Kiln's sampler: at every CPU-clock tick that lands in a registered Python
 * process, find the sampled thread's PyThreadState, walk its Python frames
 * and count the stack. Symbolization happens in userspace; the kernel only
 * records code-object addresses, instruction positions and identities.
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

struct tstate_cache {
	__u64 tstate;
	__u32 pid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tstate_cache);
} kiln_threads SEC(".maps");

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

/* Per-CPU working memory, too large for the 512-byte BPF stack and for a
 * per-CPU map value (32 KiB), so a plain array indexed by CPU (resized to
 * the number of possible CPUs). A perf_event program never nests with itself
 * on one CPU, so each slot has one user at a time. */
struct walk_scratch {
	struct kiln_frame frames[KILN_MAX_DEPTH]; /* leaf first */
	struct kiln_chunk chunk;
	struct kiln_proc proc;
	__u8 fbuf[KILN_READ_WINDOW + 8];
	__u8 cbuf[KILN_READ_WINDOW + 8];
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

/* Field loads from a window read earlier; offsets come from userspace data
 * and are bounded here so the verifier can check every access. */
static __always_inline __u64 load_u64(__u8 *buf, __s16 off)
{
	if (off < 0 || off > KILN_READ_WINDOW - 8)
		return 0;
	return *(__u64 *)(buf + (off & (KILN_READ_WINDOW - 1)));
}

static __always_inline __u32 load_u32(__u8 *buf, __s16 off)
{
	if (off < 0 || off > KILN_READ_WINDOW - 4)
		return 0;
	return *(__u32 *)(buf + (off & (KILN_READ_WINDOW - 1)));
}

static __always_inline __u8 load_u8(__u8 *buf, __s16 off)
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

static __always_inline __u64 find_tstate(struct kiln_proc *p, struct kiln_py_layout *L,
					 __u32 pid, __u32 tid)
{
	__s16 ident_off = L->match_native_tid ? L->tstate_native_thread_id : L->tstate_thread_id;
	__u64 want = thread_ident(L, tid);
	struct tstate_cache *c = bpf_map_lookup_elem(&kiln_threads, &tid);

	/* a cached tstate is trusted only if it still names this thread */
	if (c && c->pid == pid && read_ptr(c->tstate, ident_off) == want)
		return c->tstate;

	stat_add(KILN_STAT_TSTATE_WALKS, 1);
	struct thread_walk w = { .want = want, .ident_off = ident_off, .next_off = L->tstate_next };
	__u64 interp = read_ptr(p->runtime, L->runtime_interpreters_head);
	for (int i = 0; i < KILN_MAX_INTERPRETERS && interp && !w.found; i++) {
		w.tstate = read_ptr(interp, L->interp_threads_head);
		bpf_loop(KILN_MAX_THREADS, thread_step, &w, 0);
		interp = read_ptr(interp, L->interp_next);
	}
	if (w.found) {
		struct tstate_cache nc = { .tstate = w.found, .pid = pid };
		bpf_map_update_elem(&kiln_threads, &tid, &nc, BPF_ANY);
	}
	return w.found;
}

/* ---- walking the frame chain ---- */

static __always_inline __u32 code_identity(__u8 *cbuf, struct kiln_py_layout *L)
{
	__u64 h = KILN_HASH_SEED;
	for (int i = 0; i < KILN_CODE_IDENT_INTS; i++)
		h = kiln_mix(h, load_u32(cbuf, L->code_ident_int[i]));
	for (int i = 0; i < KILN_CODE_IDENT_PTRS; i++)
		h = kiln_mix(h, load_u64(cbuf, L->code_ident_ptr[i]));
	return kiln_fold(h);
}

struct frame_walk {
	__u64 frame;
	__u32 depth;
	__u32 max_depth;
	__u32 flags;
	__u32 _pad;
};

static long frame_step(__u64 i, struct frame_walk *w)
{
	struct walk_scratch *s = scratch();
	if (!s || !w->frame)
		return 1;
	struct kiln_py_layout *L = &s->proc.layout;

	__u32 size = L->frame_read_size;
	if (size > KILN_READ_WINDOW)
		size = KILN_READ_WINDOW;
	if (bpf_probe_read_user(s->fbuf, size, (void *)w->frame)) {
		w->flags |= KILN_F_READ_ERROR;
		return 1;
	}
	__u64 code = load_u64(s->fbuf, L->frame_code) & ~L->code_tag_mask;
	__u64 back = load_u64(s->fbuf, L->frame_back);
	/* owners from owner_cstack up are not Python frames: 3.12's and 3.13's
	 * C-stack entry shims, 3.14's interpreter-owned entry frames */
	int shim = L->frame_owner >= 0 && load_u8(s->fbuf, L->frame_owner) >= L->owner_cstack;

	if (!shim && code) {
		if (w->depth >= w->max_depth) {
			w->flags |= KILN_F_TRUNCATED;
			return 1;
		}
		size = L->code_read_size;
		if (size > KILN_READ_WINDOW)
			size = KILN_READ_WINDOW;
		if (bpf_probe_read_user(s->cbuf, size, (void *)code)) {
			w->flags |= KILN_F_READ_ERROR;
			return 1;
		}
		__u32 lasti;
		if (L->lasti_is_pointer) {
			__u64 ip = load_u64(s->fbuf, L->frame_lasti);
			/* code units are 2 bytes; before the first one means "not started" */
			lasti = (__u32)((__s64)(ip - (code + L->code_adaptive)) >> 1);
		} else {
			lasti = load_u32(s->fbuf, L->frame_lasti);
		}
		struct kiln_frame *f = &s->frames[w->depth & (KILN_MAX_DEPTH - 1)];
		f->lasti = lasti;
		/* a torn or stale frame can point anywhere: only a code object of
		 * this process's own PyCode_Type is recorded as one */
		if (load_u64(s->cbuf, L->object_type) == s->proc.code_type) {
			f->code = code;
			f->fingerprint = code_identity(s->cbuf, L);
		} else {
			f->code = 0;
			f->fingerprint = 0;
			stat_add(KILN_STAT_NOT_CODE, 1);
		}
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

	__u64 h = kiln_mix(kiln_mix(0x6b696c6e, c->parent), len);
	for (__u32 j = 0; j < KILN_CHUNK_FRAMES; j++) {
		if (j >= len)
			break;
		/* root-first position start+j is leaf-first index depth-1-(start+j) */
		__u32 src = (c->depth - 1 - (start + j)) & (KILN_MAX_DEPTH - 1);
		struct kiln_frame *f = &s->frames[src];
		s->chunk.frames[j] = *f;
		h = kiln_mix(h, f->code);
		h = kiln_mix(h, ((__u64)f->lasti << 32) | f->fingerprint);
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
	stat_add(KILN_STAT_SAMPLES, 1);
	s->proc = *p;

	struct kiln_sample_key key = { .pid = pid, .tid = tid };
	bpf_get_current_comm(key.comm, sizeof(key.comm));

	__u64 tstate = find_tstate(p, &s->proc.layout, pid, tid);
	if (!tstate) {
		key.flags = KILN_F_NO_TSTATE;
		stat_add(KILN_STAT_NO_TSTATE, 1);
	} else {
		struct kiln_py_layout *L = &s->proc.layout;
		struct frame_walk w = { .max_depth = st->max_depth };
		if (!w.max_depth || w.max_depth > KILN_MAX_DEPTH)
			w.max_depth = KILN_MAX_DEPTH;
		w.frame = read_ptr(tstate, L->tstate_frame);
		if (L->cframe_current_frame >= 0)
			w.frame = read_ptr(w.frame, L->cframe_current_frame);
		/* twice the depth: shim frames take loop steps but no slots */
		bpf_loop(KILN_MAX_DEPTH * 2, frame_step, &w, 0);
		if (w.frame && !(w.flags & (KILN_F_TRUNCATED | KILN_F_READ_ERROR)))
			w.flags |= KILN_F_TRUNCATED;

		struct chunk_walk c = { .depth = w.depth };
		if (w.depth)
			bpf_loop(KILN_MAX_DEPTH / KILN_CHUNK_FRAMES, chunk_step, &c, 0);
		key.flags = w.flags;
		if (c.lost) {
			key.flags |= KILN_F_STACK_LOST;
			stat_add(KILN_STAT_CHUNK_DROPS, 1);
		} else {
			key.stack_id = c.parent;
			key.depth = w.depth;
		}
		stat_add(KILN_STAT_FRAMES, w.depth);
		if (w.flags & KILN_F_TRUNCATED)
			stat_add(KILN_STAT_TRUNCATED, 1);
		if (w.flags & KILN_F_READ_ERROR)
			stat_add(KILN_STAT_READ_ERRORS, 1);
	}

	if (st->generation & 1)
		count(&kiln_counts_1, &key);
	else
		count(&kiln_counts_0, &key);
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
