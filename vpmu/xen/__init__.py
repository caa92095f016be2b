"""Xen-style hypercall frontend (xenpmu_op, event channels and companions) for the board.

See docs/xen.md.  The machine builds one :class:`XenFrontend` over its
:class:`~vpmu.xen.env.GuestEnv` implementation when ``MachineConfig.xen`` is set.
"""
from .domain import Domain
from .env import GuestEnv, GuestFault, InterruptedContext, PmuRegs
from .factory import make_frontend
from .frontend import XenFrontend
from .pmu import PageRules
from .version import VersionInfo

__all__ = ["XenFrontend", "Domain", "make_frontend", "GuestEnv", "GuestFault", "InterruptedContext", "PmuRegs",
           "PageRules", "VersionInfo"]
