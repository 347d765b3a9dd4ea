"""Busy in before_exec(), then replaces itself (same pid) with a fresh
interpreter running exec_after.py, which is busy in after_exec().

The last second before the exec goes through ever deeper stacks of
spin_at(): a new stack every 10 ms, up to the exec, so the profiler's last
drain before the exec always holds stacks it has not seen, made of code
objects it has (and which only the old image had).

Usage: exec_before.py CPU_BEFORE CPU_AFTER. Prints {"pid": ...}, waits for
SIGUSR1 (sent once a profiler records), burns CPU_BEFORE seconds of CPU time
in spin_at() under before_exec() (and 1 more, deeper and deeper), then execs;
exec_after.py burns CPU_AFTER seconds, prints {"done": true} and idles until
killed. Runs on CPython 3.9 and later.
"""
import json
import os
import signal
import sys
import time


def spin_at(depth, end):
    if depth > 0:
        return spin_at(depth - 1, end)
    while time.thread_time() < end: pass  # hot: spin_at


def before_exec(budget):
    spin_at(0, time.thread_time() + budget)
    for depth in range(1, 101):
        spin_at(depth, time.thread_time() + 0.010)


def main():
    before, after = sys.argv[1], sys.argv[2]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    print(json.dumps({"pid": os.getpid()}), flush=True)
    signal.sigwait({signal.SIGUSR1})
    before_exec(float(before))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exec_after.py")
    os.execv(sys.executable, [sys.executable, script, after])


if __name__ == "__main__":
    main()
