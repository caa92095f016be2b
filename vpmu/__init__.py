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

__all__ = ["run", "run_config", "RunResult", "RunOptions", "sweep", "SweepResult", "SweepRow", "version"]


def version() -> str:
    """vpmu's version: the installed distribution's (importlib.metadata), which pyproject.toml sets;
    in a checkout that is not installed, pyproject.toml's own; else "unknown"."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version
    try:
        return dist_version("vpmu")
    except PackageNotFoundError:
        pass
    import tomllib
    from pathlib import Path
    try:
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as f:
            project = tomllib.load(f).get("project", {})
        if project.get("name") == "vpmu":
            return str(project["version"])
    except (OSError, ValueError, KeyError):
        pass
    return "unknown"


def __getattr__(name: str) -> str:          # __version__, read when asked (no metadata scan at import)
    if name == "__version__":
        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
