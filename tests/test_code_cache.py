"""The code cache (vpmu/pmu/codecache.py): classified code stays valid across TLB maintenance
and is classified again exactly where the words that run change.

guests/src/code_change.c rewrites a function in place (with and without the architected
cache maintenance) and maps one virtual page to two physical pages in turn; every call is
measured with INST_RETIRED, BR_RETIRED, LD_RETIRED and ST_RETIRED.  tests/test_defer.py runs
the same guest eager and deferred and compares every record.
"""
from __future__ import annotations

import pytest

from vpmu.testing import assert_kv

A = dict(inst=6, br=2, ld=0, st=0, ret=42)      # measure(): enabling MSR + BLR + add, add, add, ret
B = dict(inst=6, br=2, ld=1, st=1, ret=42)      # ... + ldr, stur, add, ret


@pytest.mark.parametrize("case, expect", [
    ("smc_a1", A), ("smc_b", B), ("smc_a2", A),         # rewritten with DC CVAU / IC IVAU / ISB
    ("nomaint", B),                                     # rewritten without maintenance: the new code runs
    ("remap_a1", A), ("remap_b", B), ("remap_a2", A),   # one VA, two pages, TLBI VAAE1IS between
    ("remap_b_all", B),                                 # TLBI VMALLE1IS
    ("alias", B),                                       # the same words at a second VA
])
def test_counts_follow_the_code_that_runs(vpmu_run, case, expect):
    r = vpmu_run("code_change")
    assert r.exit_status == 0
    assert_kv(r, **{f"{case}.{k}": v for k, v in expect.items()})


def test_the_code_cache_checks_instead_of_classifying_again(vpmu_run):
    """Blocks are classified once; a new translation or a TLB maintenance only makes them
    check their words; only the rewritten and remapped blocks are classified again."""
    s = vpmu_run("code_change").stats
    assert s["code_cache_flushes"] == 0
    assert s["translation_epochs"] >= 4            # TTBR0/TCR/SCTLR writes, TLBI of the mapped code page
    assert s["blocks_changed"] >= 5                # smc_b, smc_a2, nomaint, remap_b, remap_a2, remap_b_all
    assert s["blocks_checked"] >= s["blocks_changed"]
    assert s["blocks_classified"] < 400            # the guest has a few hundred blocks, each classified once


def test_a_tlbi_of_a_page_without_code_changes_nothing(vpmu_run):
    """exceptions.elf and demo.elf run no TLB maintenance of code pages: no block is checked
    again after its first classification unless Unicorn translated it again."""
    s = vpmu_run("demo").stats
    assert s["blocks_changed"] == 0 and s["code_cache_flushes"] == 0
