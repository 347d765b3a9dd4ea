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
    def __init__(self, seconds):
        self.seconds = seconds

    def run(self):
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            a(60)
            b(30)
            c(10)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
    print(json.dumps({"pid": os.getpid()}), flush=True)
    Runner(seconds).run()


if __name__ == "__main__":
    main()
