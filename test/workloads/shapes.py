"""Shapes real programs have, each burning CPU in a known function: a
generator, a nested function, a comprehension, a method, a staticmethod, a
non-ASCII function, a lambda, a function in a file with a non-ASCII name
(modül_ß.py), module-level code and exec'd code; plus asyncio coroutines
(not run here: test/workloads/tasks.py covers asyncio).

Usage: shapes.py CPU_SECONDS [--wait]. Prints {"pid": ...}, then cycles
through the shapes until it has used CPU_SECONDS of CPU time, each shape
burning 40 ms of it per turn, so a recording of any window sees every shape
in about equal parts. With --wait it starts only on SIGUSR1 (sent once a
profiler records), and when done prints {"done": true} and idles until
killed. The line where each shape burns its CPU is marked "hot: NAME".
Runs on CPython 3.9 and later.
"""
import asyncio
import json
import os
import signal
import sys
import time

from modül_ß import grüße_λ


def gen_numbers(end):
    while time.thread_time() < end: yield 1  # hot: gen_numbers


def consume_generator(end):
    for _ in gen_numbers(end):
        pass


def outer(end):
    def inner():
        while time.thread_time() < end: pass  # hot: inner
    inner()


def comprehension(end):
    # 3.9-3.11 run the list comprehension in its own <listcomp> code object;
    # 3.12+ inline it into comprehension() (PEP 709)
    while time.thread_time() < end: [x * x for x in range(500)]  # hot: comprehension


class Shape:
    def area(self, end):
        while time.thread_time() < end: pass  # hot: Shape.area

    @staticmethod
    def helper(end):
        while time.thread_time() < end: pass  # hot: Shape.helper


def größe(end):
    while time.thread_time() < end: pass  # hot: größe


spin_lambda = lambda n: sum(range(n))  # hot: lambda


def call_lambda(end):
    while time.thread_time() < end: spin_lambda(20000)


async def leaf_task(end):
    while time.thread_time() < end:
        for _ in range(2000): pass
        await asyncio.sleep(0)


async def middle(end):
    await leaf_task(end)


# Compiled once, as exec("...") would compile it (filename "<string>"), and
# kept alive: a code object exec() compiles on each call is freed right after,
# and a sampling profiler that reads code objects later finds it gone.
EXEC_CODE = compile("while time.thread_time() < end: pass", "<string>", "exec")


if __name__ == "__main__":
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    wait = "--wait" in sys.argv
    if wait:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    print(json.dumps({"pid": os.getpid()}), flush=True)
    if wait:
        signal.sigwait({signal.SIGUSR1})
    slice_s = 0.040
    cpu_deadline = time.thread_time() + budget
    while time.thread_time() < cpu_deadline:
        consume_generator(time.thread_time() + slice_s)
        outer(time.thread_time() + slice_s)
        comprehension(time.thread_time() + slice_s)
        Shape().area(time.thread_time() + slice_s)
        Shape.helper(time.thread_time() + slice_s)
        größe(time.thread_time() + slice_s)
        call_lambda(time.thread_time() + slice_s)
        grüße_λ(time.thread_time() + slice_s)
        end = time.thread_time() + slice_s
        while time.thread_time() < end: pass  # hot: module
        exec(EXEC_CODE, {"time": time, "end": time.thread_time() + slice_s})
    if wait:
        print(json.dumps({"done": True}), flush=True)
        while True:
            time.sleep(3600)
