"""What guests/src/demo.c reads with its own counters in its PMCR_EL0.E window (its printed
table, the README's numbers), for the tests that compare vpmu's views with it."""
from __future__ import annotations

DEMO = {"INST_RETIRED": 133959, "BR_RETIRED": 35119, "BR_MIS_PRED": 520, "LD_RETIRED": 17808,
        "ST_RETIRED": 15500, "MEM_ACCESS": 33308, "CPU_CYCLES": 133959}


def demo_readings(out: str) -> dict[str, int]:
    """The demo guest's own table: its '  NAME   count' lines."""
    got = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in DEMO and parts[1].isdigit():
            got[parts[0]] = int(parts[1])
    return got
