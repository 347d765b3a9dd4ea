"""A fixed CPU-bound pure-Python loop that reports its own throughput.

Usage: throughput.py SECONDS [WARMUP_SECONDS]

Prints {"pid": ...} at once, then waits for one line on stdin (the go signal:
the bench attaches the profiler before sending it), runs the loop for
WARMUP_SECONDS (default 0.5) unmeasured and SECONDS measured, and prints one
JSON line:

  iterations, seconds, cpu_seconds   the measured run as a whole
  iterations_per_second              per wall-clock second
  iterations_per_cpu_second          per CPU-second of this process
  slice_median_per_cpu_second        the median over 250 ms slices of
                                     iterations per CPU-second
  slices                             how many slices
  process_cpu_seconds                the process's CPU time in all

Per CPU-second leaves out time spent waiting for a CPU on a busy host, and
still counts time spent in interrupts: the profiler's BPF program runs in the
sampled task's context and is charged to it (unless the kernel has
CONFIG_IRQ_TIME_ACCOUNTING). The slice median also shrugs off bursts of
interference from whatever shares the core; at 99 Hz each slice still holds
~25 samples, so the profiler's cost is spread over every slice.

One iteration is a call chain DEPTH (30) Python frames deep ending in a leaf
that does a little integer and float arithmetic, so both the frame walk and
the interpreter's hot loop are exercised. Runs unchanged on CPython 3.9-3.14.
"""
import json
import os
import sys
import time

DEPTH = 30
SLICE = 0.25


def leaf(x):
    acc = 0
    for k in range(8):
        acc = (acc * 31 + x + k) % 1000003
    return acc + int((x * 0.5) ** 0.5)


def chain(depth, x):
    if depth:
        return chain(depth - 1, x + 1)
    return leaf(x)


def run_for(seconds):
    """Runs the loop for `seconds` of wall time, in slices; the clock is read
    every 64 iterations. Returns (iterations, wall, cpu, per-slice rates)."""
    n = 0
    x = 0
    rates = []
    cpu_start = time.process_time()
    start = time.perf_counter()
    until = start + seconds
    now = start
    while now < until:
        slice_n = 0
        slice_cpu = time.process_time()
        slice_until = min(now + SLICE, until)
        while now < slice_until:
            for _ in range(64):
                x = chain(DEPTH, x & 0xFFFF)
            slice_n += 64
            now = time.perf_counter()
        cpu = time.process_time() - slice_cpu
        if cpu > 0:
            rates.append(slice_n / cpu)
        n += slice_n
    return n, now - start, time.process_time() - cpu_start, rates


def median(xs):
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    warmup = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    print(json.dumps({"pid": os.getpid()}), flush=True)
    sys.stdin.readline()
    run_for(warmup)
    n, took, cpu, rates = run_for(seconds)
    print(json.dumps({
        "iterations": n,
        "seconds": took,
        "cpu_seconds": cpu,
        "iterations_per_second": n / took,
        "iterations_per_cpu_second": n / cpu,
        "slice_median_per_cpu_second": median(rates),
        "slices": len(rates),
        "process_cpu_seconds": time.process_time(),
    }), flush=True)


if __name__ == "__main__":
    main()
