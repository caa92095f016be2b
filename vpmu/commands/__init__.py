"""The ``vpmu`` subcommands, one module each.

Every module has ``register(subparsers)``, which adds its parser and stores its handler as
``args.func`` (called with the parsed arguments; it returns the exit status).  Only argparse
and printing live here: what a command computes lives in the library module it calls
(:mod:`vpmu.api`, :mod:`vpmu.stat`, :mod:`vpmu.policy`, :mod:`vpmu.sweeps`, :mod:`vpmu.bench`, :mod:`vpmu.dtb`,
:mod:`vpmu.tracecmd`, :mod:`vpmu.qemudiff`, :mod:`vpmu.qemufront`, :mod:`vpmu.guestsdk`).  :data:`COMMANDS` is the
order of ``vpmu --help``.
"""
from __future__ import annotations

from . import bench, dtb, events, guest, policy, qemu, qemu_diff, run, stat, sweep, trace

COMMANDS = (run, stat, events, guest, bench, dtb, policy, trace, sweep, qemu_diff, qemu)
