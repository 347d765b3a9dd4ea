"""Objects at known addresses, for the symbolizer's checks (CPython's id() is the address).

Prints one JSON line with the addresses of a live code object, of objects
that are not code objects, and of three "victim" code objects. Then, for each
line read from stdin: "quiet" drops the first victim and allocates nothing
(its memory stays as it was, but free); "reused" drops the second one and
allocates strings and code objects so that freed memory is handed out again;
"long" does the same with the third, whose filename and line table are
longer than the kernel copies, and "table" with the fourth, whose line table
only is.
Each prints {"freed": true} once the victim is gone (checked with a weak
reference). Runs on CPython 3.9 and later.
"""
import gc
import json
import os
import sys
import weakref


def named_function(a, b):
    return a + b


def make_victim(name, filename, lines=1):
    namespace = {}
    source = "def %s(x, y):\n%s    return x * y\n" % (name, "    x = x + 1\n" * (lines - 1))
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name].__code__


victims = {
    "quiet": make_victim("quiet_victim", "/victim/quiet_victim.py"),
    "reused": make_victim("reused_victim", "/victim/reused_victim.py"),
    "long": make_victim("long_victim", "/victim/" + "d" * 600 + "/long_victim.py", lines=1500),
    "table": make_victim("table_victim", "/victim/table_victim.py", lines=4000),
}
refs = {k: weakref.ref(v) for k, v in victims.items()}
some_str = "not a code object, but a str " + str(os.getpid())
some_dict = {"a": 1}
code = named_function.__code__
print(json.dumps({
    "pid": os.getpid(),
    "code": id(code),
    "name": code.co_name,
    "filename": code.co_filename,
    "firstlineno": code.co_firstlineno,
    "str": id(some_str),
    "dict": id(some_dict),
    "quiet": id(victims["quiet"]),
    "reused": id(victims["reused"]),
    "long": id(victims["long"]),
    "table": id(victims["table"]),
    "table_code_bytes": len(victims["table"].co_code),
}), flush=True)

junk = []
for line in sys.stdin:
    which = line.strip()
    del victims[which]
    gc.collect()
    if which != "quiet":
        # strings of every small size class and fresh code objects, so that the
        # victim's memory and that of the objects it named are handed out again
        junk.append([("x" * (i % 64)) + str(i) for i in range(50000)])
        junk.append([compile("def f%d(x, y):\n    return x\n" % i, "/victim/reused_victim.py", "exec") for i in range(500)])
    print(json.dumps({"freed": refs[which]() is None}), flush=True)
