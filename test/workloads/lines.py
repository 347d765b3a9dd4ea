"""A hot loop spread over several lines, for line-number attribution.

spin()'s loop body is arithmetic on four lines, each marked "hot: lN", under
an inner for loop ("hot: for"); the outer while ("loop: while") checks the clock every
2000 iterations. Samples of spin() must fall on these lines, but for at most
one on the lines that run once (the def line, the deadline, the return).

Usage: lines.py CPU_SECONDS [--wait]. Prints {"pid": ...}, then spins until
it has used CPU_SECONDS of CPU time. With --wait it starts only on SIGUSR1
(sent once a profiler records), and when done prints {"done": true} and
idles until killed. Runs on CPython 3.9 and later.
"""
import json
import os
import signal
import sys
import time


def spin(budget):
    total = 0
    cpu_deadline = time.thread_time() + budget
    while time.thread_time() < cpu_deadline:  # loop: while
        for i in range(2000):  # hot: for
            a = total * 3 + i  # hot: l1
            b = (a % 7919) * (i | 1)  # hot: l2
            c = (a ^ b) & 0xFFFF  # hot: l3
            total = (total + c) % 1000003  # hot: l4
    return total


def main():
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    wait = "--wait" in sys.argv
    if wait:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    print(json.dumps({"pid": os.getpid()}), flush=True)
    if wait:
        signal.sigwait({signal.SIGUSR1})
    spin(budget)
    if wait:
        print(json.dumps({"done": True}), flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
