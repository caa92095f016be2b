"""vpmu.filter: KVM's event-filter bitmap, the CLI syntax, the uapi struct and PMCEID masking.

References: kvm-pmu.md sections 1.4, 2, 4.3 and 6 (rules 1-4); pmu-emul.c
kvm_arm_pmu_v3_set_attr(FILTER) and kvm_pmu_get_pmceid(); ecosystem.md 4.2 (QEMU parser bugs).
"""
from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given, settings, strategies as st

from vpmu import filter as vf
from vpmu.filter import (CHAIN, COMMON_EVENT_NAMES, CPU_CYCLES, KVM_PMU_EVENT_ALLOW as ALLOW,
                         KVM_PMU_EVENT_DENY as DENY, SW_INCR, EventFilter, FilterRange,
                         KvmPmuEventFilter, counts, pack_filters, parse_filter, pmceid,
                         ranges_to_structs, structs_to_ranges, unpack_filters)


def bits(flt: EventFilter) -> list[int]:
    return [e for e in range(flt.nr_events) if flt.allowed(e)]


# ---------------------------------------------------------------------------------------------
# Event names

def test_common_event_names_is_a_plain_dict_with_arm_names():
    assert type(COMMON_EVENT_NAMES) is dict
    assert COMMON_EVENT_NAMES[0x00] == "SW_INCR"
    assert COMMON_EVENT_NAMES[0x08] == "INST_RETIRED"
    assert COMMON_EVENT_NAMES[0x10] == "BR_MIS_PRED"
    assert COMMON_EVENT_NAMES[0x11] == "CPU_CYCLES"
    assert COMMON_EVENT_NAMES[0x1E] == "CHAIN"
    assert COMMON_EVENT_NAMES[0x21] == "BR_RETIRED"
    assert COMMON_EVENT_NAMES[0x3F] == "STALL_SLOT"
    assert COMMON_EVENT_NAMES[0x4000] == "SAMPLE_POP"
    # every common event 0x00..0x3F has a name; only 0x00..0x3F and 0x4000..0x403F are used
    assert all(e in COMMON_EVENT_NAMES for e in range(0x40))
    assert all(e < 0x40 or 0x4000 <= e < 0x4040 for e in COMMON_EVENT_NAMES)
    names = list(COMMON_EVENT_NAMES.values())
    assert len(names) == len(set(names))


# ---------------------------------------------------------------------------------------------
# The bitmap (pmu-emul.c KVM_ARM_VCPU_PMU_V3_FILTER)

def test_no_filter_allows_everything_and_has_no_bitmap():
    f = EventFilter(65536)
    assert not f.installed and f.bitmap() is None
    assert f.allowed(0x11) and f.allowed(0xFFFF)


def test_first_allow_sets_default_deny():
    f = EventFilter(1024)
    f.apply(0x11, 1, ALLOW)
    assert f.default_allow is False
    assert bits(f) == [0x11]


def test_first_deny_sets_default_allow():
    f = EventFilter(1024)
    f.apply(0x11, 2, DENY)
    assert f.default_allow is True
    assert bits(f) == [e for e in range(1024) if e not in (0x11, 0x12)]


@pytest.mark.parametrize("action, expect_allowed", [(ALLOW, 0), (DENY, 1024)])
def test_zero_length_first_filter_still_sets_the_default(action, expect_allowed):
    # kvm-pmu.md 6.2: "a zero-length first filter still flips the default"
    f = EventFilter(1024)
    f.apply(0, 0, action)
    assert f.installed
    assert f.allowed_count() == expect_allowed


def test_default_never_changes_after_first_filter():
    f = EventFilter(1024)
    f.apply(0x08, 1, ALLOW)
    f.apply(0x10, 1, DENY)     # a DENY later does not turn the default into allow
    assert f.default_allow is False
    assert bits(f) == [0x08]


def test_cancelling_leaves_the_whole_space_denied():
    # vcpu.rst: ALLOW [0,10) then DENY [0,10) "will leave the whole range as disabled"
    f = EventFilter(65536)
    f.apply(0, 10, ALLOW)
    f.apply(0, 10, DENY)
    assert f.allowed_count() == 0


def test_multiple_ranges():
    f = EventFilter(65536)
    f.apply(0, 0x10, ALLOW)
    f.apply(6, 3, DENY)
    assert bits(f) == [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14, 15]


@pytest.mark.parametrize("nr, base, n, action, expect", [
    (1024, 0, 1024, ALLOW, 0),                 # exactly the space: accepted
    (1024, 1023, 1, DENY, 0),
    (1024, 1023, 2, DENY, errno.EINVAL),       # one past the end
    (1024, 0x400, 0, ALLOW, 0),                # base == nr_events with nevents 0: accepted
    (1024, 0x401, 0, ALLOW, errno.EINVAL),     # base beyond the space even with nevents 0
    (65536, 0, 0xFFFF, ALLOW, 0),
    (65536, 0xFFFF, 1, ALLOW, 0),              # base + nevents == nr_events
    (65536, 0xFFFF, 2, ALLOW, errno.EINVAL),
    (65536, 0xFFFF, 0xFFFF, ALLOW, errno.EINVAL),   # u32 sum 0x1FFFE, no u16 wrap to 0xFFFE
    (65536, 0x8000, 0x8001, DENY, errno.EINVAL),    # the posted selftest's invalid filter
    (65536, 0, 1, 2, errno.EINVAL),            # bad action
    (65536, 0, 1, 3, errno.EINVAL),
])
def test_kvm_bounds_check(nr, base, n, action, expect):
    f = EventFilter(nr)
    assert f.check(base, n, action) == expect
    if expect:
        with pytest.raises(OSError) as ei:
            f.apply(base, n, action)
        assert ei.value.errno == errno.EINVAL
        assert not f.installed          # a rejected first filter does not set the default
    else:
        f.apply(base, n, action)
        assert f.installed


def test_event_space_sizes():
    assert EventFilter.for_pmuver(1).nr_events == 1024
    for v in (4, 5, 6, 7):
        assert EventFilter.for_pmuver(v).nr_events == 65536
    with pytest.raises(ValueError):
        EventFilter(4096)


def test_bitmap_is_0_1_bytes_copy():
    f = EventFilter(1024)
    f.apply(3, 2, ALLOW)
    b = f.bitmap()
    assert isinstance(b, bytearray) and len(b) == 1024 and set(b) == {0, 1}
    b[0] = 1                            # a copy: does not change the filter
    assert not f.allowed(0)


def test_runs_cover_the_space():
    f = EventFilter(1024)
    f.apply(0, 0x10, ALLOW)
    f.apply(6, 3, DENY)
    assert f.runs() == [(0, 5, True), (6, 8, False), (9, 15, True), (16, 1023, False)]
    assert EventFilter(1024).runs() == [(0, 1023, True)]


def test_counts_exempts_sw_incr_and_chain():
    # kvm_pmu_create_perf_event(): SW_INCR and CHAIN return before the filter test
    f = EventFilter(65536)
    f.apply(0, 65535, DENY)
    f.apply(0xFFFF, 1, DENY)
    assert f.allowed_count() == 0
    assert counts(SW_INCR, f) and counts(CHAIN, f)
    assert not counts(CPU_CYCLES, f)
    assert counts(CPU_CYCLES, None)
    assert not counts(CPU_CYCLES, f.bitmap())


# Hypothesis: the bitmap against an independent reference (list of bools, no default logic
# shared with the implementation).

def reference_filter(ops, nr):
    state = None
    for base, n, action in ops:
        if base + n > nr or action not in (0, 1):
            continue
        if state is None:
            state = [action == 1] * nr
        state[base:base + n] = [action == 0] * n
    return state


op_1024 = st.tuples(st.integers(0, 1100), st.integers(0, 1100), st.sampled_from([0, 1, 1, 0, 2]))
op_65536 = st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.sampled_from([0, 1, 2]))


@settings(max_examples=300, deadline=None)
@given(st.lists(op_1024, max_size=8))
def test_bitmap_matches_reference_1024(ops):
    f = EventFilter(1024)
    for base, n, action in ops:
        try:
            f.apply(base, n, action)
        except OSError as e:
            assert e.errno == errno.EINVAL
    ref = reference_filter(ops, 1024)
    if ref is None:
        assert f.bitmap() is None
    else:
        assert list(map(bool, f.bitmap())) == ref


@settings(max_examples=60, deadline=None)
@given(st.lists(op_65536, max_size=6))
def test_bitmap_matches_reference_65536(ops):
    f = EventFilter(65536)
    for base, n, action in ops:
        if f.check(base, n, action) == 0:
            f.apply(base, n, action)
    ref = reference_filter(ops, 65536)
    assert (f.bitmap() is None) == (ref is None)
    if ref is not None:
        assert list(map(bool, f.bitmap())) == ref


# ---------------------------------------------------------------------------------------------
# struct kvm_pmu_event_filter

def test_struct_layout_is_8_bytes_little_endian():
    s = KvmPmuEventFilter(0x1234, 0x0102, DENY)
    assert s.pack() == b"\x34\x12\x02\x01\x01\x00\x00\x00"
    assert KvmPmuEventFilter.unpack(s.pack()) == s
    assert struct.calcsize(vf.STRUCT_FORMAT) == 8


@pytest.mark.parametrize("kw", [dict(base_event=0x10000, nevents=1, action=0),
                                dict(base_event=0, nevents=-1, action=0),
                                dict(base_event=0, nevents=1, action=256),
                                dict(base_event=0, nevents=True, action=0)])
def test_struct_fields_are_range_checked(kw):
    with pytest.raises(ValueError):
        KvmPmuEventFilter(**kw)


def test_struct_accepts_an_action_kvm_rejects():
    # action 3 is a valid u8: KVM, not the struct, returns EINVAL for it
    assert KvmPmuEventFilter(0, 1, 3).pack()[4] == 3


def test_pack_unpack_array():
    arr = [KvmPmuEventFilter(8, 1, ALLOW), KvmPmuEventFilter(0x11, 1, DENY)]
    data = pack_filters(arr)
    assert data == bytes.fromhex("0800010000000000" "1100010001000000")
    assert unpack_filters(data) == arr
    with pytest.raises(ValueError, match="whole number"):
        unpack_filters(data[:-1])


# ---------------------------------------------------------------------------------------------
# CLI syntax

@pytest.mark.parametrize("text, action, first, last", [
    ("allow:0x11", ALLOW, 0x11, 0x11),
    ("deny:17", DENY, 17, 17),
    ("allow:0-0", ALLOW, 0, 0),                      # QEMU's (!start && !end) bug
    ("allow:0-0xFFFF", ALLOW, 0, 0xFFFF),            # QEMU's u16 overflow bug
    ("deny:BR_MIS_PRED", DENY, 0x10, 0x10),
    ("allow:INST_RETIRED-CPU_CYCLES", ALLOW, 0x08, 0x11),
    ("allow:cpu_cycles", ALLOW, 0x11, 0x11),         # names are case-insensitive
    ("  DENY : 0x4000 - SAMPLE_FEED ", DENY, 0x4000, 0x4001),
    ("allow:0X3f", ALLOW, 0x3F, 0x3F),
    ("deny:010", DENY, 10, 10),                      # decimal, not octal
])
def test_parse_valid(text, action, first, last):
    assert parse_filter(text) == FilterRange(action, first, last)


def test_parse_none_is_zero_length():
    r = parse_filter("allow:none")
    assert r.nevents == 0 and r.action == ALLOW
    assert r.to_structs() == [KvmPmuEventFilter(0, 0, ALLOW)]
    assert str(r) == "allow:none"
    r = parse_filter("deny:none@0x400", nr_events=1024)     # KVM accepts base == nr_events
    assert r.to_structs() == [KvmPmuEventFilter(0x400, 0, DENY)]
    assert str(r) == "deny:none@0x400" and parse_filter(str(r)) == r
    with pytest.raises(ValueError, match="0x401"):
        parse_filter("deny:none@0x401", nr_events=1024)


@pytest.mark.parametrize("text, nr, message", [
    ("allow:0x12-0x11", 65536, "FIRST 0x12 is greater than LAST 0x11"),
    ("allow:0x10000", 65536, "outside the 16-bit event space"),
    ("allow:0-0x10000", 65536, "event 0x10000"),
    ("allow:0x400", 1024, "outside the 10-bit event space"),
    ("deny:0x3FF-0x400", 1024, "event 0x400"),
    ("deny:FOO", 65536, "unknown event name 'FOO'"),
    ("deny:CPU_CYCLE", 65536, "did you mean CPU_CYCLES"),
    ("allow", 65536, "expected allow|deny:FIRST[-LAST]"),
    ("permit:1", 65536, "action must be 'allow' or 'deny'"),
    ("allow:1-2-3", 65536, "expected one FIRST or FIRST-LAST range"),
    ("allow:0x1g", 65536, "bad event number '0x1g'"),
    ("allow:", 65536, "empty event number"),
    ("allow:1-", 65536, "empty event number"),
    ("allow:-5", 65536, "cannot be negative"),
    ("allow:1.5", 65536, "bad event number"),
    ("allow:0b101", 65536, "bad event number"),
    ("allow:1_000", 65536, "bad event number"),
])
def test_parse_errors_are_one_line_value_errors(text, nr, message):
    with pytest.raises(ValueError) as ei:
        parse_filter(text, nr_events=nr)
    msg = str(ei.value)
    assert message in msg
    assert "\n" not in msg


def test_parse_rejects_non_strings():
    with pytest.raises(ValueError):
        parse_filter(17)


def test_names_from_a_replacement_catalogue():
    cat = {0x11: "CYCLES", 0x42: "MY_IMPDEF"}
    assert parse_filter("deny:my_impdef", names=cat) == FilterRange(DENY, 0x42, 0x42)
    with pytest.raises(ValueError):
        parse_filter("deny:CPU_CYCLES", names=cat)


def test_split_of_the_full_16_bit_range():
    structs = parse_filter("allow:0-0xFFFF").to_structs()
    assert structs == [KvmPmuEventFilter(0, 0xFFFF, ALLOW), KvmPmuEventFilter(0xFFFF, 1, ALLOW)]
    f = EventFilter(65536)
    for s in structs:
        f.apply_struct(s)        # every struct passes KVM's check
    assert f.allowed_count() == 65536


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.sampled_from([ALLOW, DENY]),
       st.booleans())
def test_format_parse_round_trip(a, b, action, use_names):
    r = FilterRange(action, min(a, b), max(a, b))
    assert parse_filter(r.format(use_names=use_names)) == r


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.sampled_from([ALLOW, DENY]))
def test_structs_cover_exactly_the_range(a, b, action):
    r = FilterRange(action, min(a, b), max(a, b))
    structs = r.to_structs()
    covered = []
    for s in structs:
        assert 0 < s.nevents <= 0xFFFF and s.action == action
        covered.extend(range(s.base_event, s.base_event + s.nevents))
    assert covered == list(range(r.first, r.last + 1))
    f = EventFilter(65536)
    f.apply_range(r)
    ref = [action == DENY] * 65536
    ref[r.first:r.last + 1] = [action == ALLOW] * r.nevents
    assert list(map(bool, f.bitmap())) == ref


struct_st = st.builds(
    lambda base, n, action: KvmPmuEventFilter(base, min(n, 65536 - base), action),
    st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.sampled_from([ALLOW, DENY]))


@settings(max_examples=200, deadline=None)
@given(st.lists(struct_st, max_size=6))
def test_structs_to_ranges_round_trip_is_byte_exact(structs):
    data = pack_filters(structs)
    ranges = structs_to_ranges(unpack_filters(data))
    assert pack_filters(ranges_to_structs(ranges)) == data


def test_structs_to_ranges_merges_only_our_split():
    split = parse_filter("deny:0-0xFFFF").to_structs()
    assert structs_to_ranges(split) == [FilterRange(DENY, 0, 0xFFFF)]
    # same action, contiguous, but not the 0xFFFF-chunk pattern: kept apart
    two = [KvmPmuEventFilter(0, 0x10, DENY), KvmPmuEventFilter(0x10, 0x10, DENY)]
    assert structs_to_ranges(two) == [FilterRange(DENY, 0, 0xF), FilterRange(DENY, 0x10, 0x1F)]


@pytest.mark.parametrize("s, message", [
    (KvmPmuEventFilter(0, 1, 2), "action 2"),
    (KvmPmuEventFilter(0xFFFF, 2, ALLOW), "runs past event 0xFFFF"),
])
def test_structs_kvm_rejects_cannot_be_imported(s, message):
    with pytest.raises(ValueError, match=message):
        structs_to_ranges([s])


# ---------------------------------------------------------------------------------------------
# PMCEID masking (kvm-pmu.md section 2, 4.3; kvm_pmu_get_pmceid / compute_pmceid0/1)

HOST0 = 0x0000_0003_3FFF_BFFE     # SW_INCR (bit 0) and CHAIN (bit 30) not advertised by host
HOST1 = 0x0000_0070_E000_00FF     # STALL_SLOT* (bits 29..31) advertised by host
PMUVER_16BIT, PMUVER_10BIT = 4, 1


def policy(*items, nr=65536):
    return EventFilter.from_ranges([parse_filter(i) for i in items], nr)


@pytest.mark.parametrize("scenario, items, expect16, expect10", [
    # no filter: only the forced bits; high halves kept even for a 10-bit guest (no bitmap)
    ("without_filter", (), (0x3_7FFF_BFFF, 0x70_0000_00FF), (0x3_7FFF_BFFF, 0x70_0000_00FF)),
    ("member_allow", ("allow:SW_INCR", "allow:INST_RETIRED", "allow:BR_RETIRED"),
     (0x101, 0x2), (0x101, 0x2)),
    ("member_deny", ("deny:SW_INCR", "deny:INST_RETIRED", "deny:BR_RETIRED"),
     (0x3_7FFF_BEFE, 0x70_0000_00FD), (0x7FFF_BEFE, 0xFD)),
    ("not_member_allow", ("allow:SW_INCR",), (0x1, 0x0), (0x1, 0x0)),
    ("not_member_deny", ("deny:SW_INCR",), (0x3_7FFF_BFFE, 0x70_0000_00FF), (0x7FFF_BFFE, 0xFF)),
    ("cancel", ("allow:CPU_CYCLES", "deny:CPU_CYCLES"), (0x0, 0x0), (0x0, 0x0)),
    ("multiple", ("allow:0x0-0xF", "deny:0x6-0x8"), (0xBE3F, 0x0), (0xBE3F, 0x0)),
    ("extended_allow", ("allow:0x4000-0x403F",), (0x3_0000_0000, 0x70_0000_0000), (0x0, 0x0)),
])
def test_pmceid_scenarios(scenario, items, expect16, expect10):
    flt = policy(*items) if items else None
    assert pmceid(HOST0, HOST1, flt, PMUVER_16BIT) == expect16
    assert pmceid(HOST0, HOST1, flt, PMUVER_10BIT) == expect10


def test_pmceid_forced_bits_without_filter():
    p0, p1 = pmceid(0, 0xFFFF_FFFF_FFFF_FFFF)
    assert p0 == (1 << 0) | (1 << 30)                       # SW_INCR, CHAIN forced on
    assert p1 == 0xFFFF_FFFF_1FFF_FFFF                      # STALL_SLOT* forced off


def test_pmceid_hides_sw_incr_and_chain_that_still_count():
    # kvm-pmu.md 6.3
    flt = policy("deny:SW_INCR", "deny:CHAIN")
    p0, _ = pmceid(0, 0, flt)
    assert p0 & 1 == 0 and p0 >> 30 & 1 == 0
    assert counts(SW_INCR, flt) and counts(CHAIN, flt)


def test_pmceid_accepts_a_byte_bitmap_and_an_empty_filter():
    flt = policy("deny:INST_RETIRED")
    assert pmceid(HOST0, HOST1, flt.bitmap(), PMUVER_16BIT) == pmceid(HOST0, HOST1, flt, PMUVER_16BIT)
    assert pmceid(HOST0, HOST1, EventFilter(), PMUVER_10BIT) == pmceid(HOST0, HOST1, None)


def test_pmceid_with_a_1024_event_host_bitmap():
    flt = policy("deny:BR_RETIRED", nr=1024)
    assert pmceid(HOST0, HOST1, flt, PMUVER_10BIT) == (0x7FFF_BFFF, 0xFD)
