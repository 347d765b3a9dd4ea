"""Second half of exec_before.py: what the process runs after its exec.
Usage: exec_after.py CPU_SECONDS: burns them in after_exec(), prints
{"done": true} and idles until killed."""
import json
import sys
import time


def after_exec(budget):
    end = time.thread_time() + budget
    while time.thread_time() < end: pass  # hot: after_exec


if __name__ == "__main__":
    after_exec(float(sys.argv[1]))
    print(json.dumps({"done": True}), flush=True)
    while True:
        time.sleep(3600)
