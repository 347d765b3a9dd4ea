"""A process that is hostile to its profiler, in one of several ways (argv[1]):

  linetable   spins in spin(), whose line table is 1 MiB of 0xF7 bytes (a
              location table that decodes in quadratic time if a decoder
              lets a varint run on into the next entries)
  filenames F spins in four functions whose co_filename is a FIFO it makes
              at F, a path with `..` climbing out of its root (absolute, and
              relative), and ../../etc/shadow
  fake-elf F  maps the file F (named like libpython, crafted by the test:
              a 1 GiB symbol table) and spins in spin()
  flood       keeps building chains of 300 new functions (new code objects)
              and spinning at the bottom of each chain for 20 ms, so every
              sample meets hundreds of code objects never seen before

Prints one JSON line once set up: its pid, and what the test needs to know
(the address of spin's code object, the first lines and file names given). Runs on CPython 3.9 and later, until killed.
"""
import json
import os
import sys
import time

DEPTH_ESCAPE = "../" * 16


def spin():
    x = 0
    while True:
        x += 1  # hot: spin


def in_fifo(ms):
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end: pass


def in_escape_abs(ms):
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end: pass


def in_escape_rel(ms):
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end: pass


def in_shadow(ms):
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end: pass


def with_filename(func, filename):
    func.__code__ = func.__code__.replace(co_filename=filename)


def replace_table(func, table):
    if sys.version_info >= (3, 10):
        func.__code__ = func.__code__.replace(co_linetable=table)
    else:
        func.__code__ = func.__code__.replace(co_lnotab=table)


def flood():
    generation = 0
    while True:
        generation += 1
        names = ["f_%d_%d" % (generation, i) for i in range(300)]
        source = "".join("def %s():\n    return %s()\n" % (n, m) for n, m in zip(names, names[1:]))
        source += "def %s():\n    bottom()\n" % names[-1]
        namespace = {"bottom": bottom}
        exec(compile(source, "<flood %d>" % generation, "exec"), namespace)
        namespace[names[0]]()


def bottom():
    end = time.thread_time() + 0.02
    while time.thread_time() < end: pass


def main():
    mode = sys.argv[1]
    info = {"pid": os.getpid(), "mode": mode}
    if mode == "linetable":
        replace_table(spin, b"\xf7" * (1 << 20))
        info["code"] = id(spin.__code__)
        print(json.dumps(info), flush=True)
        spin()
    elif mode == "filenames":
        fifo = sys.argv[2]
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
        with_filename(in_fifo, fifo)
        # a canary the test plants outside this process's root, at the same first lines
        canary = sys.argv[3].lstrip("/")
        with_filename(in_escape_abs, "/" + DEPTH_ESCAPE + canary)
        with_filename(in_escape_rel, DEPTH_ESCAPE + canary)
        with_filename(in_shadow, "../../etc/shadow")
        info["filenames"] = {}
        for f in (in_fifo, in_escape_abs, in_escape_rel, in_shadow):
            info[f.__name__] = f.__code__.co_firstlineno
            info["filenames"][f.__name__] = f.__code__.co_filename
        print(json.dumps(info), flush=True)
        while True:
            for f in (in_fifo, in_escape_abs, in_escape_rel, in_shadow):
                f(25)
    elif mode == "fake-elf":
        import mmap
        with open(sys.argv[2], "rb") as f:
            mapped = mmap.mmap(f.fileno(), 4096, prot=mmap.PROT_READ)
        info["mapped"] = len(mapped)
        print(json.dumps(info), flush=True)
        spin()
    elif mode == "flood":
        print(json.dumps(info), flush=True)
        flood()
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
