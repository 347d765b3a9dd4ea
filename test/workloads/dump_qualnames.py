"""Prints every code object of the given source files as JSON lines: file, name, firstlineno, qualname.

Run on 3.11+, where co_qualname is the truth Kiln's source-based qualnames are checked against.
"""
import json
import sys


def walk(code, path):
    yield {"file": path, "name": code.co_name, "firstlineno": code.co_firstlineno, "qualname": code.co_qualname}
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            yield from walk(const, path)


for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        source = f.read()
    for entry in walk(compile(source, path, "exec"), path):
        print(json.dumps(entry))
