"""The board-facing interface the Xen frontend is written against, re-exported.

It lives in :mod:`vpmu.board.env` (the Xen package depends on the board, never the
reverse); this module keeps the old import path working.
"""
from ..board.env import GuestEnv, GuestFault, InterruptedContext, PmuRegs

__all__ = ["GuestEnv", "GuestFault", "InterruptedContext", "PmuRegs"]
