"""One Python process with another Keras backend (``KERAS_BACKEND`` set by the parent) that runs
the test scripts sent to it, so that the suite pays that backend's start-up (importing JAX or
torch, Keras and xfacies) once per session instead of once per test.

Protocol: one JSON line per request on stdin, ``{"script": "...", "argv": [...]}``; the script runs
as ``python -c script *argv`` would (``__main__``, ``sys.argv``), its stdout captured; the answer is
one line on stdout, ``READY`` + JSON ``{"returncode": 0 | 1, "stdout": ..., "stderr": traceback}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback

MARK = "XFACIES-BACKEND-WORKER "


def main() -> None:
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        buf, code, err = io.StringIO(), 0, ""
        argv = sys.argv
        sys.argv = ["-c", *req["argv"]]
        try:
            with contextlib.redirect_stdout(buf):
                exec(compile(req["script"], "<test script>", "exec"), {"__name__": "__main__"})
        except BaseException:  # noqa: BLE001 - reported to the test, as a subprocess would
            code, err = 1, traceback.format_exc()
        finally:
            sys.argv = argv
        out.write(MARK + json.dumps({"returncode": code, "stdout": buf.getvalue(), "stderr": err}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
