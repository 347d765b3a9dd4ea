"""Dump real line tables and the interpreter's own answers, for test/linetable.test.ts.

Runs unchanged on CPython 3.9 through 3.14 (stdlib only, nothing newer than
3.6 syntax). Compiles a set of code shapes chosen to hit every corner of the
three table formats, plus a few large stdlib modules, and prints one JSON
document to stdout:

  {"version": [3, 11, 2], "code_objects": [
     {"name", "filename", "firstlineno", "table" (hex of co_lnotab on 3.9,
      co_linetable on 3.10+), "lines" (expected line per 2-byte offset, 0 =
      no line), "addr2line" (PyCode_Addr2Line per offset, or null)}, ...]}

The expected lines come from Python-level APIs (co_lines() on 3.10+,
dis.findlinestarts() on 3.9); addr2line is the C function tracebacks use,
called through ctypes, so the test checks the decoder against both.
"""

import dis
import importlib.util
import json
import sys

STDLIB_MODULES = ["argparse", "typing", "inspect", "json.decoder", "dataclasses", "asyncio.base_events"]


def shapes_source():
    """Hand-written shapes; each is a separate top-level definition."""
    return '''
import functools

def simple(a, b):
    c = a + b
    return c

def loop_back(n):
    total = 0
    for i in range(n):
        if i % 3:
            total += i
        else:
            total -= 1
    while total > 10:
        total //= 2
    return total

def multi_line_call(x):
    return dict(
        first=x,
        second=[
            x + 1,
            x + 2,
        ],
        third=(x
               * 3),
    )

def lambdas_and_comprehensions(xs):
    key = lambda v: (v % 7,
                     -v)
    ys = [y * 2 for y in xs if y]
    zs = {y: [w for w in range(y)] for y in ys}
    gen = (z for z in zs
           if z > 3)
    s = {q for q in gen}
    return sorted(s, key=key)

def generator(n):
    for i in range(n):
        yield i
    yield from range(3)
    return n

async def coroutine(source, lock):
    async with lock:
        async for item in source:
            await item
    return [x async for x in source]

def outer(a):
    def middle(b):
        def inner(c):
            return a + b + c
        return inner
    return middle

def decorator(*args, **kwargs):
    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            return fn(*a, **k)
        return wrapper
    return wrap

@decorator(
    1,
    two=2,
)
@functools.lru_cache(maxsize=None)
def decorated(x):
    return x

class Widget(object):
    attribute = [i for i in range(3)]

    def __init__(self, value):
        self.value = value

    @property
    def doubled(self):
        return self.value * 2

    @staticmethod
    def static(a, b=None):
        return a if b is None else b

def exceptions(path):
    try:
        with open(path) as f:
            data = f.read()
    except (OSError, ValueError) as e:
        data = str(e)
    except Exception:
        raise
    else:
        data = data.strip()
    finally:
        path = None
    return data

def strings_and_formats(name, n):
    a = "{0} has {1:>{2}} items".format(name, n, 5)
    b = f"{name!r:>10} {n * 2:08.3f} {'ünïcödé'}"
    return a + b + "\\u00e9\\u4e2d"

def walrus_and_conditional(xs):
    if (n := len(xs)) > 10:
        return n
    return [y for x in xs if (y := x * 2)]

x_global = [simple(i, i) for i in range(3)]
'''


def line_gap_source():
    """Gaps between statements: line deltas beyond int8 and multi-chunk svarints."""
    parts = ["def big_gaps(x):", "    a = x + 1"]
    for gap in (130, 300, 5000, 70000):
        parts.extend([""] * gap)
        parts.append("    a = a * {0} + x".format(gap))
    parts.append("    return a")
    return "\n".join(parts) + "\n"


def negative_jump_source():
    """A loop body long enough that jumping back to its head is a line delta < -127."""
    parts = ["def long_loop(n):", "    i = 0", "    while i < n:"]
    for k in range(400):
        parts.append("        i += {0}".format(k % 3 + 1))
        if k % 100 == 99:
            parts.extend([""] * 50)
    parts.append("    for j in range(n):")
    parts.extend([""] * 200)
    parts.append("        i -= j")
    parts.append("    return i")
    return "\n".join(parts) + "\n"


def long_line_source():
    """One line with thousands of columns and hundreds of instructions."""
    terms = " + ".join("v{0} * {1}".format(i % 7, i) for i in range(600))
    names = ", ".join("v{0}".format(i) for i in range(7))
    body = "    return [" + terms + ", 'é中' * 3, " + terms + "]"
    return "def very_long_line({0}):\n{1}\n".format(names, body)


def late_source():
    """A function starting past line 1000 (and one past 100000) of its file."""
    return (
        "\n" * 1200
        + "def late(a):\n    b = a + 1\n    return b\n"
        + "\n" * 100000
        + "def very_late(a):\n    for i in range(a):\n        a += i\n    return a\n"
    )


def long_function_source():
    """Over 127 consecutive lines with more than 255 bytes of code between line changes."""
    parts = ["def long_function(x):"]
    for i in range(300):
        parts.append("    x = x + {0}".format(i))
        if i % 50 == 0:
            parts.append("    x = " + " + ".join("x * {0}".format(j) for j in range(150)))
    parts.append("    return x")
    return "\n".join(parts) + "\n"


def sources():
    yield "<kiln-shapes>", shapes_source()
    yield "<kiln-gaps>", line_gap_source()
    yield "<kiln-negative-jump>", negative_jump_source()
    yield "<kiln-long-line>", long_line_source()
    yield "<kiln-late>", late_source()
    yield "<kiln-long-function>", long_function_source()
    for name in STDLIB_MODULES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
        if not origin or not origin.endswith(".py"):
            sys.stderr.write("skipping {0}: no source\n".format(name))
            continue
        with open(origin, "rb") as f:
            yield origin, f.read()


def walk(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            for inner in walk(const):
                yield inner


def expected_lines_310(code, n):
    lines = [0] * n
    for start, end, line in code.co_lines():
        for off in range(start, end, 2):
            if 0 <= off // 2 < n:
                lines[off // 2] = 0 if line is None else line
    return lines


def expected_lines_39(code, n):
    """Line of the last line start at or before each offset."""
    lines = [0] * n
    starts = sorted(dis.findlinestarts(code))
    current = code.co_firstlineno
    k = 0
    for i in range(n):
        while k < len(starts) and starts[k][0] <= 2 * i:
            current = starts[k][1]
            k += 1
        lines[i] = current
    return lines


def addr2line_function():
    try:
        import ctypes

        fn = ctypes.pythonapi.PyCode_Addr2Line
    except (ImportError, AttributeError):
        return None
    fn.argtypes = [ctypes.py_object, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def main():
    addr2line = addr2line_function()
    modern = sys.version_info >= (3, 10)
    out = []
    for filename, source in sources():
        module = compile(source, filename, "exec")
        for code in walk(module):
            n = len(code.co_code) // 2
            table = code.co_linetable if modern else code.co_lnotab
            if modern:
                lines = expected_lines_310(code, n)
            else:
                lines = expected_lines_39(code, n)
            native = None
            if addr2line is not None:
                native = [max(addr2line(code, 2 * i), 0) for i in range(n)]
            out.append(
                {
                    "name": getattr(code, "co_qualname", code.co_name),
                    "filename": filename,
                    "firstlineno": code.co_firstlineno,
                    "table": table.hex(),
                    "code_bytes": len(code.co_code),
                    "lines": lines,
                    "addr2line": native,
                }
            )
    json.dump({"version": list(sys.version_info[:3]), "code_objects": out}, sys.stdout)


if __name__ == "__main__":
    main()
