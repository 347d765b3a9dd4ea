"""Four Python threads, each busy in its own function, each with its own OS thread name.

Usage: threads.py SECONDS. Prints {"pid": ..., "threads": {"kiln-alpha": TID, ...}}
once all four run. Thread names are set through /proc so that no ctypes is needed.
"""
import json
import os
import sys
import threading
import time

ready = threading.Barrier(5)
tids = {}


def name_this_thread(name):
    tid = threading.get_native_id()
    with open("/proc/self/task/%d/comm" % tid, "w") as f:
        f.write(name)
    tids[name] = tid


def spin_alpha(until):
    name_this_thread("kiln-alpha")
    ready.wait()
    while time.monotonic() < until: pass  # hot: spin_alpha


def spin_beta(until):
    name_this_thread("kiln-beta")
    ready.wait()
    while time.monotonic() < until: pass  # hot: spin_beta


def spin_gamma(until):
    name_this_thread("kiln-gamma")
    ready.wait()
    while time.monotonic() < until: pass  # hot: spin_gamma


def spin_delta(until):
    name_this_thread("kiln-delta")
    ready.wait()
    while time.monotonic() < until: pass  # hot: spin_delta


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=f, args=(until,)) for f in (spin_alpha, spin_beta, spin_gamma, spin_delta)]
    for t in threads:
        t.start()
    ready.wait()
    print(json.dumps({"pid": os.getpid(), "threads": tids}), flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
