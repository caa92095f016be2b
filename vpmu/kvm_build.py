"""The runner's PMU flags applied through vpmu.kvm like a VMM would (see vmdesc)."""
from .vmdesc import build_from_options as _build


def build(pmu_version=None, counters=None, pmu_irq=None, no_pmu=False, filters=(), vm_file=None, memory=None):
    return _build(pmu_version=pmu_version, counters=counters, pmu_irq=pmu_irq, no_pmu=no_pmu,
                  filters=filters, vm_file=vm_file, memory=memory)
