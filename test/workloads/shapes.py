"""Shapes real programs have, each burning CPU in a known function: a generator,
asyncio coroutines, a lambda, nested functions, comprehensions, a method, a
non-ASCII function, module-level code and exec'd code.

Usage: shapes.py SECONDS. Prints {"pid": ...} once started.
"""
import asyncio
import json
import os
import sys
import time


def gen_numbers(until):
    while time.monotonic() < until:
        yield sum(range(200))  # hot: gen_numbers


def consume_generator(until):
    for _ in gen_numbers(until):
        pass


def outer(until):
    def inner():
        while time.monotonic() < until: pass  # hot: inner
    inner()


def comprehension(until):
    while time.monotonic() < until:
        [x * x for x in range(500)]  # hot: listcomp


class Shape:
    def area(self, until):
        while time.monotonic() < until: pass  # hot: Shape.area

    @staticmethod
    def helper(until):
        while time.monotonic() < until: pass  # hot: Shape.helper


def größe(until):
    while time.monotonic() < until: pass  # hot: größe


spin_lambda = lambda n: sum(range(n))  # hot: lambda


def call_lambda(until):
    while time.monotonic() < until:
        spin_lambda(20000)


async def leaf_task(until):
    while time.monotonic() < until:
        for _ in range(2000): pass  # hot: leaf_task
        await asyncio.sleep(0)


async def middle(until):
    await leaf_task(until)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    print(json.dumps({"pid": os.getpid()}), flush=True)
    step = seconds / 9
    t = time.monotonic()
    consume_generator(t + step)
    outer(t + 2 * step)
    comprehension(t + 3 * step)
    Shape().area(t + 4 * step)
    Shape.helper(t + 5 * step)
    größe(t + 6 * step)
    call_lambda(t + 7 * step)
    asyncio.run(middle(t + 8 * step))
    exec("while time.monotonic() < end: pass", {"time": time, "end": t + 9 * step})


if __name__ == "__main__":
    main()
