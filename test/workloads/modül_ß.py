"""Imported by shapes.py: a file whose name is not ASCII, holding a function
whose name is not Latin-1 either (λ is stored as a 2-byte-per-character
string in CPython, ü and ß as 1-byte), so both string kinds are read."""
import time


def grüße_λ(end):
    while time.thread_time() < end: pass  # hot: grüße_λ
