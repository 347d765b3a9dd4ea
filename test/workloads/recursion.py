"""A stack DEPTH Python frames deep: <module> -> main -> recurse x DEPTH, spinning at the leaf.

Usage: recursion.py SECONDS DEPTH. Prints {"pid": ...} once the leaf is reached.
"""
import json
import os
import sys
import time


def recurse(n, until):
    if n > 1:
        return recurse(n - 1, until)
    print(json.dumps({"pid": os.getpid()}), flush=True)
    while time.monotonic() < until: pass  # hot: leaf


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
    depth = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    sys.setrecursionlimit(depth + 200)
    recurse(depth, time.monotonic() + seconds)


if __name__ == "__main__":
    main()
