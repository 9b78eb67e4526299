"""Tiny launcher: run a command and record its wall time and peak RSS.

``python -S _launch.py USAGE_JSON CMD...``. The harness starts this small process
instead of the method itself so that the method is forked from a process of a few MiB:
``ru_maxrss`` survives ``exec`` on Linux, so forking straight from the (large) harness
would report the harness's own memory as the method's peak.
"""

import json
import os
import sys
import time


def main() -> int:
    out, cmd = sys.argv[1], sys.argv[2:]
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    # Linux: KiB; the child's peak, or a waited-for descendant's if larger
    with open(out, "w") as fh:
        json.dump({"rc": code, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}, fh)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
