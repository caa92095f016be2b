"""EL0 access to the PMU registers under PMUSERENR_EL0 (kvm-pmu.md 3.1), from a real guest.

guests/src/pmu_el0_access.c performs every register access at EL0 for PMUSERENR = 0, EN,
SW, CR, ER, all four bits, and records whether it took an UNDEF (EC 0)."""
import pytest

EN, SW, CR, ER = 1, 2, 4, 8
NEVER = None
# register: (read needs, write needs); NEVER = always UNDEF at EL0; 0 = always allowed
TABLE = {
    "PMCR_EL0": (EN, EN), "PMCNTENSET_EL0": (EN, EN), "PMCNTENCLR_EL0": (EN, EN),
    "PMOVSSET_EL0": (EN, EN), "PMOVSCLR_EL0": (EN, EN), "PMCEID0_EL0": (EN, NEVER),
    "PMCEID1_EL0": (EN, NEVER), "PMEVTYPER0_EL0": (EN, EN), "PMXEVTYPER_EL0": (EN, EN),
    "PMCCFILTR_EL0": (EN, EN), "PMSELR_EL0": (EN | ER, EN | ER), "PMCCNTR_EL0": (EN | CR, EN),
    "PMEVCNTR0_EL0": (EN | ER, EN), "PMXEVCNTR_EL0": (EN | ER, EN), "PMSWINC_EL0": (NEVER, EN | SW),
    "PMINTENSET_EL1": (NEVER, NEVER), "PMINTENCLR_EL1": (NEVER, NEVER), "PMUSERENR_EL0": (0, NEVER),
}


@pytest.fixture(scope="module")
def results(vpmu_guest_dir):
    from vpmu.api import run_config
    from vpmu.options import RunOptions
    r = run_config(str(vpmu_guest_dir / "pmu_el0_access.elf"), RunOptions().to_machine_config())
    assert r.exit_status == 0, r.output[-500:]
    return r.kv()


def expected_undef(reg: str, write: bool, pmuserenr: int) -> int:
    need = TABLE[reg][1 if write else 0]
    if need is NEVER:
        return 1
    return 0 if need == 0 or (pmuserenr & need) else 1


@pytest.mark.parametrize("pmuserenr", [0, 1, 2, 4, 8, 15])
@pytest.mark.parametrize("reg", sorted(TABLE))
def test_el0_access_table(results, reg, pmuserenr):
    for d, write in (("r", False), ("w", True)):
        key = f"{d}.{pmuserenr}.{reg}"
        if key not in results:
            assert (reg, d) == ("PMCEID1_EL0", "w")          # no write stub for it
            continue
        assert int(results[key]) == expected_undef(reg, write, pmuserenr), key


def test_pmuserenr_keeps_four_bits(results):
    assert results["pmuserenr_readback"] == "0"
