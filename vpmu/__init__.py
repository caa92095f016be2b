"""vpmu: an ARM64 virtual PMU (PMUv3) emulator.

``vpmu.run(elf, **options)`` runs a guest and returns a :class:`vpmu.api.RunResult`; the
options are :class:`vpmu.options.RunOptions` (``vpmu run``'s, as keywords), and
``vpmu.run_config(elf, config)`` runs a prepared machine configuration.
``vpmu.sweep(guests, policies, **options, executor=None)`` runs every guest under every filter
policy (on any ``concurrent.futures`` executor, Dask's included) and returns a
:class:`vpmu.sweeps.SweepResult`.  ``vpmu.kvm``
mirrors KVM's vCPU device attributes; ``vpmu.xen`` is the xenpmu_op frontend.  Importing the
package does no JIT work: the numba kernels load on first use.
"""
from .api import RunResult, run, run_config
from .options import RunOptions
from .sweeps import SweepResult, SweepRow, sweep

__all__ = ["run", "run_config", "RunResult", "RunOptions", "sweep", "SweepResult", "SweepRow"]
__version__ = "0.1.0"
