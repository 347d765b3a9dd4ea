/**
 * The few libbpf 1.x calls Kiln uses, bound through koffi (ffi-napi does not
 * build on Node 20), plus perf_event_open through libc's syscall().
 */
import koffi from 'koffi';

type Ptr = unknown; // opaque C pointer handed back by koffi

let lib: ReturnType<typeof bind> | undefined;

function bind() {
  const bpf = koffi.load('libbpf.so.1');
  const libc = koffi.load('libc.so.6');

  const openOpts = koffi.struct('kiln_bpf_object_open_opts', {
    sz: 'size_t',
    object_name: 'const char *',
    relaxed_maps: 'bool',
    pin_root_path: 'const char *',
    _removed_attach_prog_fd: 'uint32_t',
    kconfig: 'const char *',
    btf_custom_path: 'const char *',
    kernel_log_buf: 'void *',
    kernel_log_size: 'size_t',
    kernel_log_level: 'uint32_t',
  });
  const batchOpts = koffi.struct('kiln_bpf_map_batch_opts', {
    sz: 'size_t',
    elem_flags: 'uint64_t',
    flags: 'uint64_t',
  });

  // int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
  const ringSample = koffi.proto('int kiln_ring_sample(void *ctx, void *data, size_t size)');

  return {
    openOpts,
    batchOpts,
    ringSample,
    libbpf_set_print: bpf.func('void *libbpf_set_print(void *fn)'),
    bpf_object__open_file: bpf.func('void *bpf_object__open_file(const char *path, kiln_bpf_object_open_opts *opts)'),
    bpf_object__load: bpf.func('int bpf_object__load(void *obj)'),
    bpf_object__close: bpf.func('void bpf_object__close(void *obj)'),
    bpf_object__find_map_by_name: bpf.func('void *bpf_object__find_map_by_name(void *obj, const char *name)'),
    bpf_object__find_program_by_name: bpf.func('void *bpf_object__find_program_by_name(void *obj, const char *name)'),
    bpf_map__set_max_entries: bpf.func('int bpf_map__set_max_entries(void *map, uint32_t max_entries)'),
    bpf_map__fd: bpf.func('int bpf_map__fd(void *map)'),
    bpf_program__fd: bpf.func('int bpf_program__fd(void *prog)'),
    bpf_program__attach: bpf.func('void *bpf_program__attach(void *prog)'),
    bpf_program__attach_perf_event: bpf.func('void *bpf_program__attach_perf_event(void *prog, int pfd)'),
    bpf_link__destroy: bpf.func('int bpf_link__destroy(void *link)'),
    bpf_map_update_elem: bpf.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_lookup_elem: bpf.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
    bpf_map_delete_elem: bpf.func('int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_get_next_key: bpf.func('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)'),
    bpf_map_lookup_and_delete_batch: bpf.func(
      'int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, _Out_ void *out_batch, _Out_ void *keys, _Out_ void *values, _Inout_ uint32_t *count, kiln_bpf_map_batch_opts *opts)',
    ),
    bpf_map_delete_batch: bpf.func('int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, kiln_bpf_map_batch_opts *opts)'),
    ring_buffer__new: bpf.func('void *ring_buffer__new(int map_fd, kiln_ring_sample *sample_cb, void *ctx, void *opts)'),
    ring_buffer__consume: bpf.func('int ring_buffer__consume(void *rb)'),
    ring_buffer__free: bpf.func('void ring_buffer__free(void *rb)'),
    bpf_prog_get_info_by_fd: bpf.func('int bpf_obj_get_info_by_fd(int fd, _Inout_ void *info, _Inout_ uint32_t *len)'),
    libbpf_num_possible_cpus: bpf.func('int libbpf_num_possible_cpus(void)'),
    syscall: libc.func('long syscall(long number, ...)'),
    close: libc.func('int close(int fd)'),
    ioctl: libc.func('int ioctl(int fd, unsigned long request, ...)'),
    strerror: libc.func('const char *strerror(int errnum)'),
    sigfillset: libc.func('int sigfillset(_Out_ void *set)'),
    pthread_sigmask: libc.func('int pthread_sigmask(int how, const void *set, _Out_ void *oldset)'),
  };
}

export function libbpf(): ReturnType<typeof bind> {
  if (!lib) {
    lib = bind();
    // libbpf's default logger writes warnings (and whole verifier logs) to
    // stderr; Kiln reports failures itself with the log it asked the kernel for.
    lib.libbpf_set_print(null);
  }
  return lib;
}

export function errnoText(errno: number): string {
  const name = Object.entries(koffi.os.errno).find(([, v]) => v === errno)?.[0];
  return `${name ?? 'errno ' + errno}: ${libbpf().strerror(errno) as string}`;
}

/** A libbpf or syscall failure, with the errno and its meaning. */
export class BpfError extends Error {
  constructor(
    readonly what: string,
    readonly errno: number,
    detail = '',
  ) {
    super(`${what} failed (${errnoText(errno)})${detail ? `\n${detail}` : ''}`);
  }
}

/** libbpf 1.x returns -errno from int calls and NULL + errno from pointer calls. */
export function check(what: string, rc: number): number {
  if (rc < 0) throw new BpfError(what, -rc);
  return rc;
}

export function checkPtr(what: string, p: Ptr): Ptr {
  if (p === null || p === undefined) throw new BpfError(what, koffi.errno());
  return p;
}

export { koffi };
export type { Ptr };

const SYS_perf_event_open = 298; // x86-64
const PERF_TYPE_SOFTWARE = 1;
const PERF_COUNT_SW_CPU_CLOCK = 0;
const PERF_ATTR_SIZE = 128;
const PERF_FLAG_FD_CLOEXEC = 8;
const ATTR_FREQ = 1n << 10n;

/**
 * Opens a CPU-clock software event on one CPU for every task, sampling at
 * `frequency` Hz; the BPF program attached to it runs at each sample.
 */
export function openCpuClockEvent(cpu: number, frequency: number): number {
  const attr = Buffer.alloc(PERF_ATTR_SIZE);
  attr.writeUInt32LE(PERF_TYPE_SOFTWARE, 0);
  attr.writeUInt32LE(PERF_ATTR_SIZE, 4);
  attr.writeBigUInt64LE(BigInt(PERF_COUNT_SW_CPU_CLOCK), 8);
  attr.writeBigUInt64LE(BigInt(frequency), 16);
  attr.writeBigUInt64LE(ATTR_FREQ, 40);
  const { syscall } = libbpf();
  const fd = Number(
    syscall(SYS_perf_event_open, 'void *', attr, 'int', -1, 'int', cpu, 'int', -1, 'unsigned long', PERF_FLAG_FD_CLOEXEC),
  );
  if (fd < 0) throw new BpfError(`perf_event_open(cpu ${cpu}, ${frequency} Hz)`, koffi.errno());
  return fd;
}
