"""A known CPU split: a() 60%, b() 30%, c() 10%, under <module> -> main -> Runner.run.

Each phase burns a fixed amount of this thread's CPU time (not wall time), so
the split holds however busy the machine is. The hot loop of each function is
one line, marked "hot: NAME", so tests can find its line number.
Runs on CPython 3.9 and later; prints {"pid": ...} once started.
"""
import json
import os
import sys
import time


def a(ms):
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end: pass  # hot: a


def b(ms):
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end: pass  # hot: b


def c(ms):
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end: pass  # hot: c


class Runner:
    def __init__(self, seconds, weights=(60, 30, 10)):
        self.seconds, self.weights = seconds, weights

    def run(self):
        wa, wb, wc = self.weights
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            a(wa)
            b(wb)
            c(wc)


def main():
    # shares.py [SECONDS] [A_MS B_MS C_MS]: the optional weights (CPU ms per
    # round, default 60 30 10) give other splits, e.g. a "regressed" run where
    # c grows, for the UI's diff tests. (Said here, not in the docstring, so
    # the hot lines keep the numbers recorded fixtures carry.)
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
    weights = tuple(float(w) for w in sys.argv[2:5]) if len(sys.argv) >= 5 else (60, 30, 10)
    print(json.dumps({"pid": os.getpid()}), flush=True)
    Runner(seconds, weights).run()


if __name__ == "__main__":
    main()
