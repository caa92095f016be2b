"""Helpers of the hostile-input tests: run ``vpmu`` in this process and check the rule that
bad input gets one line on stderr and a documented status, never 106 or a traceback."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from vpmu import errors
from vpmu.cli import main

RUNNER_STATUSES = {errors.EXIT_USAGE, errors.EXIT_BAD_IMAGE, errors.EXIT_FAULT_LOOP, errors.EXIT_INSN_LIMIT,
                   errors.EXIT_DEADLOCK, errors.EXIT_KVM}


@dataclass
class Outcome:
    status: int
    out: str
    err: str

    def assert_no_bug(self) -> None:
        """Not an internal error, no traceback, and a runner status has its one line."""
        assert self.status != errors.EXIT_INTERNAL, self.err
        assert "Traceback" not in self.err and "internal error" not in self.err, self.err
        assert "Exception ignored" not in self.err, self.err[:500]

    def assert_error(self, status: int, pattern: str = "") -> None:
        import re
        self.assert_no_bug()
        assert self.status == status, (self.status, self.err)
        lines = self.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("vpmu"), self.err
        assert re.search(pattern, lines[0]), (pattern, lines[0])


def cli(*args: str) -> Outcome:
    """``vpmu ARGS`` in this process (stdout and stderr captured, bytes-capable as the runner
    needs: the guest's UART writes to sys.stdout.buffer)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as e:                 # argparse's own exit (status 2, or 0 for --help)
            status = e.code if isinstance(e.code, int) else 1
    out.flush()
    err.flush()
    return Outcome(status, out.buffer.getvalue().decode("utf-8", "replace"),   # type: ignore[attr-defined]
                   err.buffer.getvalue().decode("utf-8", "replace"))           # type: ignore[attr-defined]
