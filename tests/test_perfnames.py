"""Linux perf's event names (vpmu.pmu.perfnames): every spelling resolves to the number the
armv8_pmuv3 driver and perf's JSON tables give it, and --filter items, policy files and VM
descriptions accept them through the one parser."""
from __future__ import annotations

import pytest

from vpmu import filter as F
from vpmu.filter import KVM_PMU_EVENT_ALLOW as ALLOW, KVM_PMU_EVENT_DENY as DENY, FilterRange, parse_filter
from vpmu.pmu import events, perfnames as P

# armv8_pmuv3_perf_map (drivers/perf/arm_pmuv3.c, Linux 6.1 arch/arm64/kernel/perf_event.c):
# PERF_COUNT_HW_* -> ARMV8_PMUV3_PERFCTR_* numbers, written out independently of the tables.
DRIVER_GENERIC = {
    "cycles": 0x11, "cpu-cycles": 0x11, "instructions": 0x08,
    "cache-references": 0x04, "cache-misses": 0x03,
    "branches": 0x0C, "branch-instructions": 0x0C,          # PC_WRITE_RETIRED, not BR_RETIRED
    "branch-misses": 0x10, "bus-cycles": 0x1D,
    "stalled-cycles-frontend": 0x23, "idle-cycles-frontend": 0x23,
    "stalled-cycles-backend": 0x24, "idle-cycles-backend": 0x24,
}
# armv8_pmuv3_perf_cache_map, in perf's canonical spellings.
DRIVER_CACHE = {
    "L1-dcache-loads": 0x04, "L1-dcache-load-misses": 0x03,
    "L1-icache-loads": 0x14, "L1-icache-load-misses": 0x01,
    "dTLB-loads": 0x25, "dTLB-load-misses": 0x05,
    "iTLB-loads": 0x26, "iTLB-load-misses": 0x02,
    "LLC-loads": 0x36, "LLC-load-misses": 0x37,
    "branch-loads": 0x12, "branch-load-misses": 0x10,
}
# recommended.json numbers of some Cortex-A57 IMPLEMENTATION DEFINED events.
A57_JSON = {"L1D_CACHE_RD": 0x40, "L1D_CACHE_REFILL_WR": 0x43, "L2D_CACHE_INVAL": 0x58,
            "BUS_ACCESS_PERIPH": 0x65, "UNALIGNED_LDST_SPEC": 0x6A, "BR_INDIRECT_SPEC": 0x7A,
            "EXC_HVC": 0x8A, "RC_ST_SPEC": 0x91}


@pytest.mark.parametrize("name, number", sorted(DRIVER_GENERIC.items()))
def test_generic_names_as_the_driver_maps_them(name, number):
    assert P.event_number(name) == number
    spec = P.parse(name)
    assert (spec.kind, spec.name, spec.modifiers) == ("generic", name, "")


@pytest.mark.parametrize("name, number", sorted(DRIVER_CACHE.items()))
def test_cache_events_as_the_driver_maps_them(name, number):
    assert P.event_number(name) == number
    assert P.parse(name).kind == "cache"


@pytest.mark.parametrize("alias, canonical", [
    ("l1d-misses", "L1-dcache-load-misses"), ("L1-data-read-miss", "L1-dcache-load-misses"),
    ("l1-d", "L1-dcache-loads"), ("L1-dcache", "L1-dcache-loads"), ("L1-DCACHE-LOADS", "L1-dcache-loads"),
    ("L1-dcache-misses-load", "L1-dcache-load-misses"), ("l1i-access", "L1-icache-loads"),
    ("L2-load-misses", "LLC-load-misses"), ("d-tlb-miss", "dTLB-load-misses"),
    ("Instruction-TLB-loads", "iTLB-loads"), ("bpu-misses", "branch-load-misses"), ("branch", "branch-loads"),
])
def test_perf_cache_alias_grammar(alias, canonical):
    assert P.event_number(alias) == DRIVER_CACHE[canonical]


@pytest.mark.parametrize("name", ["ref-cycles", "L1-dcache-stores", "L1-dcache-prefetch-misses", "LLC-stores",
                                  "node-loads", "dTLB-store-misses"])
def test_perf_names_without_an_event_on_this_pmu(name):
    spec = P.parse(name)
    assert spec.number is None and "maps no event" in spec.unsupported
    with pytest.raises(ValueError, match="has no event number on this PMU"):
        P.event_number(name)


@pytest.mark.parametrize("text, message", [
    ("L1-icache-stores", "perf has no store operation for L1-icache"),
    ("iTLB-prefetches", "perf has no prefetch operation for iTLB"),
    ("branch-missez", "did you mean branch-misses"),
    ("instruction", "did you mean instructions"),
    ("R10", "unknown event name 'R10'"),             # raw events are a lower-case r
    ("r10000", "does not fit the PMU's event field"),
    ("r1ffff", "silently drop"),
    ("cpu/cycles/", "unknown PMU 'cpu'"),
    ("armv8_pmuv3_1/event=0x10/", "unknown PMU"),
    ("armv8_pmuv3_0/bogus/", "unknown event 'bogus'"),
    ("armv8_pmuv3_0/period=100/", "unknown term"),
    ("armv8_pmuv3_0/event=0x10,config=0x11/", "more than one event"),
    ("armv8_pmuv3_0/event=0x10000/", "does not fit"),
    ("armv8_pmuv3_0/event=ten/", "needs a number"),
    ("armv8_pmuv3_0/name=x/", "names no event"),
    ("cycles:G", "unsupported modifier"),
    ("cycles:uu", "unsupported modifier"),
    ("0x1g", "bad event number"),
    ("", "empty event name"),
])
def test_bad_spellings_are_one_line_errors(text, message):
    with pytest.raises(ValueError) as ei:
        P.parse(text)
    assert message in str(ei.value) and "\n" not in str(ei.value)


@pytest.mark.parametrize("text, number", [
    ("r10", 0x10), ("r8", 0x08), ("r11", 0x11), ("r4004", 0x4004), ("rffff", 0xFFFF), ("r0", 0),
    ("armv8_pmuv3_0/event=0x10/", 0x10), ("armv8_pmuv3/event=0x10/", 0x10), ("armv8_pmuv3_0/config=16/", 0x10),
    ("armv8_pmuv3_0/br_mis_pred/", 0x10), ("armv8_pmuv3/BR_MIS_PRED/", 0x10), ("armv8_pmuv3_0/inst_retired/", 0x08),
    ("armv8_pmuv3_0/l1d_cache_rd/", 0x40), ("armv8_pmuv3_0/cnt_cycles/", 0x4004),
    ("0x10", 0x10), ("16", 16), ("010", 10), ("BR_MIS_PRED", 0x10), ("br_mis_pred", 0x10),
])
def test_raw_pmu_and_plain_spellings(text, number):
    assert P.event_number(text) == number


@pytest.mark.parametrize("name, number", sorted(A57_JSON.items()))
def test_cortex_a57_json_names(name, number):
    assert P.event_number(name) == number and P.event_number(name.lower()) == number
    e = events.BY_NUMBER[number]
    assert e.name == name and not e.implemented           # named, not counted


def test_every_catalogue_name_in_both_cases():
    for e in events.ALL:
        assert P.event_number(e.name) == e.number
        assert P.event_number(e.name.lower()) == e.number
        assert P.event_number(f"{P.PMU_NAME}/{e.name.lower()}/") == e.number


def test_the_aliases_of_every_event_parse_back_to_it():
    for e in events.ALL:
        al = P.aliases(e.number)
        assert f"r{e.number:x}" in al and f"{P.PMU_NAME}/event={e.number:#x}/" in al
        for a in al:
            assert P.event_number(a) == e.number, a
    assert P.aliases(0x11)[:2] == ["cpu-cycles", "cycles"]
    assert P.aliases(0x0C)[:2] == ["branch-instructions", "branches"]


@pytest.mark.parametrize("text, user, kernel, shown", [
    ("instructions:u", True, False, "instructions:u"), ("cycles:k", False, True, "cycles:k"),
    ("cycles:uk", True, True, "cycles:uk"), ("r10:u", True, False, "r10:u"),
    ("armv8_pmuv3_0/event=0x11/k", False, True, "armv8_pmuv3_0/event=0x11/k"),
    ("armv8_pmuv3_0/event=0x11,name=cyc/u", True, False, "cyc"),
])
def test_modifiers(text, user, kernel, shown):
    spec = P.parse(text)
    assert (spec.user, spec.kernel, spec.name) == (user, kernel, shown)
    if not (user and kernel):
        with pytest.raises(ValueError, match="modifiers"):
            P.event_number(text)


# ---- filters: the same names, with '-' in them --------------------------------------------

@pytest.mark.parametrize("text, action, first, last", [
    ("deny:branch-misses", DENY, 0x10, 0x10),
    ("deny:L1-dcache-load-misses", DENY, 0x03, 0x03),
    ("allow:instructions-cycles", ALLOW, 0x08, 0x11),
    ("allow:cache-misses-cache-references", ALLOW, 0x03, 0x04),
    ("deny:stalled-cycles-frontend-stalled-cycles-backend", DENY, 0x23, 0x24),
    ("deny:r10", DENY, 0x10, 0x10),
    ("deny:r8-r11", DENY, 0x08, 0x11),
    ("deny:armv8_pmuv3_0/br_mis_pred/", DENY, 0x10, 0x10),
    ("deny:armv8_pmuv3_0/event=0x8/-armv8_pmuv3_0/event=0x11/", DENY, 0x08, 0x11),
    ("deny:l1d_cache_rd-rc_st_spec", DENY, 0x40, 0x91),
    ("allow: instructions - BR_MIS_PRED ", ALLOW, 0x08, 0x10),
])
def test_filters_take_perf_names(text, action, first, last):
    assert parse_filter(text) == FilterRange(action, first, last)


@pytest.mark.parametrize("text, message", [
    ("deny:ref-cycles", "has no event number on this PMU"),     # not split into r(ef) and cycles
    ("deny:branch-missez", "did you mean branch-misses"),
    ("deny:L1-icache-stores", "perf has no store operation"),
    ("deny:instructions:u", "modifiers"),
    ("deny:cycles-instructions", "FIRST 0x11 is greater than LAST 0x8"),
    ("deny:r4004", "outside the 10-bit event space"),
])
def test_filter_errors_with_perf_names(text, message):
    with pytest.raises(ValueError) as ei:
        parse_filter(text, nr_events=1024 if "r4004" in text else 65536)
    assert message in str(ei.value)


def test_an_ambiguous_range_is_refused(monkeypatch):
    """A-B-C where both A|B-C and A-B|C are two events: neither reading is chosen."""
    known = {"a": 1, "b-c": 2, "a-b": 3, "c": 4}
    monkeypatch.setattr(F.perfnames, "event_number",
                        lambda t: known[t.strip()] if t.strip() in known else (_ for _ in ()).throw(ValueError(t)))
    monkeypatch.setattr(F.perfnames, "parse",
                        lambda t: (_ for _ in ()).throw(F.perfnames.UnknownEvent(t)))
    with pytest.raises(ValueError, match="ambiguous range, 'a' to 'b-c' or 'a-b' to 'c'"):
        parse_filter("deny:a-b-c")


def test_policy_files_and_vm_descriptions_take_perf_names(tmp_path):
    from vpmu.policy import read_policy_file
    from vpmu.vmdesc import parse_file
    pol = tmp_path / "p.txt"
    pol.write_text("deny:branch-misses\nallow:r8  # instructions\n")
    assert read_policy_file(str(pol)) == [FilterRange(DENY, 0x10, 0x10), FilterRange(ALLOW, 8, 8)]
    vm = tmp_path / "vm.toml"
    vm.write_text('[pmu]\nfilters = ["deny:armv8_pmuv3_0/br_mis_pred/", "deny:cycles"]\n')
    desc = parse_file(str(vm))
    assert [r for _, r in desc.filters] == [FilterRange(DENY, 0x10, 0x10), FilterRange(DENY, 0x11, 0x11)]
