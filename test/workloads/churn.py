"""Short-lived code, the way a new user would try it: generations of small
modules, each written, imported, run for a while and dropped, with garbage
allocated in between so that freed memory is handed out again.

Every generation's module has the same shape: the same lines, the same
argument counts, only the names differ (gen_K_work, gen_K_inner), so a code
object of one generation can sit at the address of the previous one's with
the same first line and argcount. Each generation burns CPU (thread time) in
four places:
- importing: its module body spins IMPORT_S before defining anything
  (`<module>` of gen_K.py, a code object freed once the import is done);
- exec'd code: a snippet compiled with filename "<gen_K exec>" spins EXEC_S;
- generated functions: a dataclass's __eq__ and a namedtuple's __new__
  (both compiled by the standard library from strings) run GENERATED_S;
- its functions: gen_K_work calls gen_K_inner for WORK_S.

Usage: churn.py GENERATIONS DIR [--wait]. Writes the modules into DIR (a new
directory, left for the caller to delete: the sources are what frame names
are checked against). Prints {"pid": ...}; with --wait, starts on SIGUSR1.
Prints one JSON line per generation with the thread CPU seconds each part
took, then {"done": true}, and idles until killed. Runs on CPython 3.9+.
"""
import gc
import importlib
import json
import os
import signal
import sys
import time

IMPORT_S = 0.06
EXEC_S = 0.05
GENERATED_S = 0.06
WORK_S = 0.25

# Line numbers matter: every generation's functions start on the same lines.
MODULE = '''import collections
import dataclasses
import time

_end = time.thread_time() + {import_s}
while time.thread_time() < _end: pass


def gen_{k}_work(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        gen_{k}_inner(3, 4)


def gen_{k}_inner(a, b):
    return a * b + {k}


@dataclasses.dataclass
class Gen{k}Point:
    x: int
    y: int


Gen{k}Pair = collections.namedtuple("Gen{k}Pair", "a b")


def gen_{k}_generated(seconds):
    p, q = Gen{k}Point(1, 2), Gen{k}Point(1, 2)
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        p == q
        Gen{k}Pair(1, 2)
'''

EXEC = '''_end = time.thread_time() + seconds
while time.thread_time() < _end: pass
'''


def run_generation(k, directory):
    with open(os.path.join(directory, "gen_%d.py" % k), "w") as f:
        f.write(MODULE.format(k=k, import_s=IMPORT_S))
    importlib.invalidate_caches()
    t0 = time.thread_time()
    module = importlib.import_module("gen_%d" % k)
    t1 = time.thread_time()
    exec(compile(EXEC, "<gen_%d exec>" % k, "exec"), {"time": time, "seconds": EXEC_S})
    t2 = time.thread_time()
    getattr(module, "gen_%d_generated" % k)(GENERATED_S)
    t3 = time.thread_time()
    getattr(module, "gen_%d_work" % k)(WORK_S)
    t4 = time.thread_time()
    del sys.modules["gen_%d" % k]
    return {"gen": k, "import": t1 - t0, "exec": t2 - t1, "generated": t3 - t2, "work": t4 - t3}


def churn(garbage):
    """Frees the last generation and hands its memory out again."""
    gc.collect()
    garbage.clear()
    garbage.extend(("x" * (i % 80)) + str(i) for i in range(20000))
    garbage.extend(compile("def f(a, b):\n    return a\n", "<garbage>", "exec") for _ in range(200))


def main():
    generations = int(sys.argv[1])
    directory = sys.argv[2]
    wait = "--wait" in sys.argv
    os.makedirs(directory)
    sys.path.insert(0, directory)
    sys.dont_write_bytecode = True
    if wait:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    print(json.dumps({"pid": os.getpid()}), flush=True)
    if wait:
        signal.sigwait({signal.SIGUSR1})
    garbage = []
    for k in range(1, generations + 1):
        print(json.dumps(run_generation(k, directory)), flush=True)
        churn(garbage)
    print(json.dumps({"done": True}), flush=True)
    if wait:
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
