"""Three asyncio tasks with a known CPU split: task_large 50%, task_medium 30%,
task_small 20%.

Each task awaits a coroutine of its own (task_large -> crunch_large, ...)
that burns a fixed slice of this thread's CPU time (5, 3 and 2 units of 10 ms) and then
yields to the event loop with `await asyncio.sleep(0)`. asyncio runs ready
tasks round-robin, so each gets one turn per loop iteration and the split is
5:3:2 however busy the machine is. The burning line of each crunch_* is marked
"hot: NAME".

Usage: tasks.py CPU_SECONDS [--wait]. Prints {"pid": ...}, then runs the
tasks until the event loop's thread has used CPU_SECONDS of CPU time. With
--wait it starts only on SIGUSR1 (sent once a profiler records), and when
done prints {"done": true} and idles until killed.
Runs on CPython 3.9 and later.
"""
import asyncio
import json
import os
import signal
import sys
import time

UNIT = 0.010


async def crunch_large():
    end = time.thread_time() + 5 * UNIT
    while time.thread_time() < end: pass  # hot: crunch_large
    await asyncio.sleep(0)


async def crunch_medium():
    end = time.thread_time() + 3 * UNIT
    while time.thread_time() < end: pass  # hot: crunch_medium
    await asyncio.sleep(0)


async def crunch_small():
    end = time.thread_time() + 2 * UNIT
    while time.thread_time() < end: pass  # hot: crunch_small
    await asyncio.sleep(0)


async def task_large(cpu_deadline):
    while time.thread_time() < cpu_deadline:
        await crunch_large()


async def task_medium(cpu_deadline):
    while time.thread_time() < cpu_deadline:
        await crunch_medium()


async def task_small(cpu_deadline):
    while time.thread_time() < cpu_deadline:
        await crunch_small()


async def run_tasks(budget):
    cpu_deadline = time.thread_time() + budget
    await asyncio.gather(task_large(cpu_deadline), task_medium(cpu_deadline), task_small(cpu_deadline))


def main():
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    wait = "--wait" in sys.argv
    if wait:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    print(json.dumps({"pid": os.getpid()}), flush=True)
    if wait:
        signal.sigwait({signal.SIGUSR1})
    asyncio.run(run_tasks(budget))
    if wait:
        print(json.dumps({"done": True}), flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
