"""The board, through real guests (guests/src/board_*.c): UART and semihosting output, exit
statuses, PSCI/SMCCC values, the exception model (ESR/ELR/SPSR/FAR and the vector taken),
EL0 and EL1t stack banking, interrupts through the GICv3, the generic timer and WFI, and
the runner's stops (fault loop 102, instruction limit 103, WFI deadlock 104); and the board's
shape: an exception in a device callback reaches the caller, the board does not import the
Xen package.

Every expected value below is also what QEMU 7.2 (-M virt,gic-version=3 -cpu cortex-a57
-icount shift=0 -semihosting) prints for the same guest, except where a test says
otherwise (docs/qemu-compat.md).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from vpmu.testing import assert_kv, records

# ------------------------------------------------------------------------------ helpers


def lines(r) -> dict[str, dict[str, str]]:
    """Guest lines of the form "name: k=v k=v ..." as {name: {k: v}}."""
    out = {}
    for line in r.output.splitlines():
        m = re.match(r"^([\w.]+): (\w+=\S+(?: \w+=\S+)*)$", line)
        if m:
            out[m.group(1)] = dict(kv.split("=", 1) for kv in m.group(2).split())
    return out


def assert_line(r, name: str, **expected) -> None:
    got = lines(r).get(name)
    assert got is not None, f"guest printed no {name!r} line:\n{r.output}"
    want = {k: (v if isinstance(v, str) else (hex(v) if k in HEX_FIELDS else str(v))) for k, v in expected.items()}
    bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not bad, f"{name}: (got, expected) {bad}\n  line: {got}"


HEX_FIELDS = {"esr", "spsr", "far", "elr", "x0"}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vpmu", "run", *args], capture_output=True, timeout=timeout)


def exceptions(r, **match):
    return records(r, "exception", **match)


# ------------------------------------------------------------------------------ UART


def test_uart_output_is_byte_exact(vpmu_guest_dir):
    p = cli(str(vpmu_guest_dir / "board_uart.elf"))
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    printable = bytes(range(0x20, 0x7F))
    assert p.stdout.startswith(b"uart: raw bytes\n" + printable + b"\n" + b"tab:\tcr-lf:\r\n" + b"Z\n")


def test_uart_flag_register(vpmu_run):
    r = vpmu_run("board_uart")
    # TXFE | RXFE: never busy, never full (QEMU's PL011 reset value)
    assert_kv(r, uartfr="0x90", uartfr_txff=0, uartfr_txfe=1, uartfr_busy=0)


def test_uart_periph_id_matches_qemu(vpmu_run):
    assert_kv(vpmu_run("board_uart"), periph_id="111014000df005b1")


def test_hello_uart_and_exit(vpmu_run):
    r = vpmu_run("hello")
    assert r.exit_status == 0 and r.reason == "exit"
    assert r.output.startswith("hello from a vpmu guest\n")


# ------------------------------------------------------------------------------ semihosting


def test_semihosting_write_calls(vpmu_run):
    r = vpmu_run("board_semihost")
    assert r.exit_status == 0
    assert r.output.startswith("writec!\nwrite0: a NUL-terminated string\n")
    assert_kv(r, open_w_ok=1, open_a_ok=1, write_out_ret=0, write_err_ret=0, write_zero_ret=0, write_part_ret=0)
    assert "sys_write to stderr\n" in r.output
    assert "abcd" in r.output and "abcde" not in r.output          # exactly the 4 bytes asked for


def test_semihosting_streams_through_cli(vpmu_guest_dir):
    p = cli(str(vpmu_guest_dir / "board_semihost.elf"))
    assert p.returncode == 0
    # SYS_WRITEC / SYS_WRITE0 go to stdout with the UART (platform.md); "a" is stderr
    assert p.stdout.startswith(b"writec!\nwrite0: a NUL-terminated string\n")
    assert b"sys_write to stderr\n" in p.stderr
    assert b"uart: after semihosting\n" in p.stdout


def test_semihosting_open_tt_write_is_stdout(vpmu_guest_dir):
    p = cli(str(vpmu_guest_dir / "board_semihost.elf"))
    assert b"open_distinct=1\n" in p.stdout
    assert b"sys_write to stdout\n" in p.stdout and b"sys_write to stdout" not in p.stderr


# ------------------------------------------------------------------------------ exit status


@pytest.mark.parametrize("code", [0, 1, 7, 42, 100, 200, 255])
def test_exit_extended_status(vpmu_run, code):
    r = vpmu_run("board_exit", append=f"exit={code}")
    assert (r.exit_status, r.reason) == (code, "exit")
    assert f"exit_extended={code}\n" in r.output
    assert "after=" not in r.output                               # nothing runs after the exit
    assert records(r, "exit")[-1]["status"] == code


@pytest.mark.parametrize("code, status", [(256, 0), (257, 1), (0x1234, 0x34)])
def test_exit_status_is_the_low_byte(vpmu_run, code, status):
    assert vpmu_run("board_exit", append=f"exit={code}").exit_status == status


def test_sys_exit_takes_the_parameter_block(vpmu_run):
    r = vpmu_run("board_exit", append="sysexit=5")
    assert (r.exit_status, r.reason) == (5, "exit")
    assert "after=" not in r.output


@pytest.mark.parametrize("reason", ["0x20023", "0x20020", "0x0"])
def test_exit_with_another_reason_is_status_1(vpmu_run, reason):
    r = vpmu_run("board_exit", append=f"reason={reason}")
    assert r.exit_status == 1 and "after=" not in r.output


def test_return_from_main_exits_0(vpmu_run):
    r = vpmu_run("board_exit")
    assert r.exit_status == 0 and r.output.endswith("board_exit: return from main\n")


def test_psci_system_off(vpmu_run):
    r = vpmu_run("board_exit", append="psci=off")
    assert (r.exit_status, r.reason) == (0, "system_off")
    assert "after=" not in r.output
    assert records(r, "psci", function="SYSTEM_OFF")
    assert records(r, "exit")[-1]["reason"] == "system_off"


def test_psci_system_reset(vpmu_run):
    r = vpmu_run("board_exit", append="psci=reset")
    assert (r.exit_status, r.reason) == (0, "reset")
    assert "after=" not in r.output
    assert records(r, "psci", function="SYSTEM_RESET")


@pytest.mark.parametrize("append, status", [("exit=0", 0), ("exit=3", 3), ("exit=255", 255), ("psci=off", 0),
                                            ("psci=reset", 0), ("sysexit=9", 9)])
def test_process_exit_status_through_cli(vpmu_guest_dir, append, status):
    p = cli("--append", append, str(vpmu_guest_dir / "board_exit.elf"))
    assert p.returncode == status
    assert p.stderr == b""
    assert p.stdout.startswith(b"board_exit: start\n")


# ------------------------------------------------------------------------------ PSCI / SMCCC


def test_psci_and_smccc_values(vpmu_run):
    r = vpmu_run("board_psci")
    assert (r.exit_status, r.reason) == (0, "system_off")
    NS = "0xffffffffffffffff"
    assert_kv(r, psci_version="0x10001", smccc_version="0x10001",
              features_psci_version="0x0", features_cpu_off="0x0", features_cpu_on64="0x0",
              features_affinity_info64="0x0", features_migrate_info_type="0x0", features_system_off="0x0",
              features_system_reset="0x0", features_psci_features="0x0", features_smccc_version="0x0",
              features_cpu_suspend64=NS, features_system_suspend64=NS, features_unknown_8400001f=NS,
              smccc_arch_features_wa1=NS, migrate_info_type="0x2", affinity_info_cpu0="0x0",
              affinity_info_cpu1="0xfffffffffffffffe", cpu_on_cpu1=NS, unknown_psci_fn=NS)
    assert r.output.endswith("board_psci: system_off\n")


# ------------------------------------------------------------------------------ exceptions at EL1


def test_synchronous_exceptions_from_el1(vpmu_run):
    r = vpmu_run("board_exc")
    assert r.exit_status == 0
    assert_kv(r, el=1, daif_at_entry="0x3c0", spsel=1, sync_count=14, vbar_is_vectors=1)
    # vector 4 = current EL with SP_ELx, synchronous
    assert_line(r, "svc", esr=0x56001234, elr_off=4, spsr=0x600003C5, far=0, vec=4)
    assert_line(r, "svc0_unmasked", esr=0x56000000, elr_off=4, spsr=0x90000005, vec=4)
    assert_line(r, "svc_ffff", esr=0x5600FFFF, elr_off=4, spsr=0x3C5, vec=4)
    assert_line(r, "brk", esr=0xF2000042, elr_off=0, spsr=0x3C5, vec=4)
    assert_line(r, "brk_ffff", esr=0xF200FFFF, elr_off=0, vec=4)
    for name in ("udf", "udf_other", "mrs_unallocated", "msr_midr"):
        assert_line(r, name, esr=0x02000000, elr_off=0, vec=4)           # EC 0x00, IL
    # data aborts on a hole in the map: EC 0x25, DFSC 0x10 (synchronous external abort), WnR
    assert_line(r, "dabt_read", esr=0x96000010, elr_off=0, far=0x0F000010, vec=4)
    assert_line(r, "dabt_write", esr=0x96000050, elr_off=0, far=0x0F000020, vec=4)
    assert_line(r, "dabt_read32", esr=0x96000010, elr_off=0, far=0x0F000034, vec=4)
    assert_line(r, "dabt_ldp", esr=0x96000010, elr_off=0, far=0x0F000040, vec=4)
    # instruction abort: EC 0x21, IFSC 0x10, ELR = FAR = the branch target
    assert_line(r, "iabt", esr=0x86000010, elr=0x0F000000, far=0x0F000000, vec=4)


def test_exceptions_are_in_the_trace(vpmu_run):
    r = vpmu_run("board_exc")
    exc = exceptions(r)
    assert [e["kind"] for e in exc] == ["svc", "svc", "svc", "brk", "brk", "undef", "undef", "undef", "undef",
                                        "data_abort", "data_abort", "data_abort", "data_abort", "prefetch_abort"]
    assert [e["esr"] for e in exc[:5]] == [0x56001234, 0x56000000, 0x5600FFFF, 0xF2000042, 0xF200FFFF]
    assert all(e["from_el"] == 1 for e in exc)
    vbar = exc[0]["vector"] - 0x200
    assert vbar & 0x7FF == 0 and all(e["vector"] == vbar + 0x200 for e in exc)
    assert [e["far"] for e in exc[9:]] == [0x0F000010, 0x0F000020, 0x0F000034, 0x0F000040, 0x0F000000]
    icounts = [rec["icount"] for rec in r.trace]
    assert icounts == sorted(icounts)
    assert r.trace[-1]["type"] == "exit" and r.trace[-1]["icount"] == r.icount


# ------------------------------------------------------------------------------ EL0 and back


def test_eret_to_el0_and_back(vpmu_run):
    r = vpmu_run("board_el0")
    assert r.exit_status == 0
    # vector 8 = lower EL AArch64, synchronous; SPSR.M = EL0t with the EL0 flags
    assert_line(r, "el0_svc", esr=0x56000077, elr_off=4, spsr=0x90000000, vec=8)
    assert_line(r, "el0_brk", esr=0xF2000005, elr_off=0, spsr=0, vec=8)
    assert_line(r, "el0_udf", esr=0x02000000, elr_off=0, spsr=0, vec=8)
    assert_line(r, "el0_dabt_read", esr=0x92000010, elr_off=0, far=0x0F000008, vec=8)   # EC 0x24
    assert_line(r, "el0_iabt", esr=0x82000010, elr=0x0F000000, far=0x0F000000, vec=8)   # EC 0x20
    assert_line(r, "el0_mrs_sctlr", esr=0x02000000, elr_off=0, vec=8)
    # SP_EL0 / SP_EL1 banking across both directions
    assert_kv(r, el0_sp_intact=1, svc_sp_el0_is_el0_stack=1, svc_frame_on_el1_stack=1, el_after=1, spsel_after=1,
              el1_sp_intact=1, sp_el0_after_is_el0_stack=1)
    # an IRQ pending on entry to EL0 is taken from EL0: vector 9, SPSR = EL0t
    assert_kv(r, irq_before_el0=0, el0_irq_ret=42, el0_irq_count=1, el0_irq_intid=7, el0_irq_vec=9,
              el0_irq_spsr="0x0", el0_irq_elr_is_fn=1, el0_irq_sp_el0_is_el0_stack=1)
    exc = exceptions(r, from_el=0)
    assert {e["kind"] for e in exc} >= {"svc", "brk", "undef", "data_abort", "prefetch_abort"}
    vbar = exceptions(r)[0]["vector"] - 0x400
    assert all(e["vector"] == vbar + 0x400 for e in exc)
    irqs = records(r, "irq")
    assert [(i["intid"], i["from_el"]) for i in irqs] == [(7, 0)]


def test_eret_to_el0_trace_shows_the_round_trips(vpmu_run):
    r = vpmu_run("board_el0")
    # every el0_call ends with SVC #0xffff from EL0
    returns = exceptions(r, kind="svc", esr=0x5600FFFF, from_el=0)
    assert len(returns) == 8


def test_store_abort_elr_after_an_exception(vpmu_run):
    r = vpmu_run("board_store_abort")
    for after in ("nothing", "svc", "brk", "semihosting", "psci", "load_abort"):
        assert_line(r, f"after_{after}", n=1, elr_off=0, far=0x0F000018, esr=0x96000050)


def test_store_abort_elr_without_a_preceding_hook_exception(vpmu_run):
    r = vpmu_run("board_store_abort")
    assert_line(r, "after_nothing", n=1, elr_off=0, far=0x0F000018, esr=0x96000050)
    assert_line(r, "after_load_abort", n=1, elr_off=0, far=0x0F000018, esr=0x96000050)


def test_el0_store_abort(vpmu_run):
    r = vpmu_run("board_el0")
    assert_line(r, "el0_dabt_write", esr=0x92000050, elr_off=0, far=0x0F000018, vec=8)
    assert_kv(r, sync_count=7)


# ------------------------------------------------------------------------------ EL0 traps


def test_el0_smc_is_undefined_and_allowed_timer_access(vpmu_run):
    r = vpmu_run("board_el0_traps")
    assert_line(r, "el0_smc", x0=0x84000000, esr=0x02000000, vec=8)
    assert_line(r, "el0_cntvct_allowed", ret=1, esr=0)
    assert_line(r, "el0_cntfrq_allowed", ret=62500000, esr=0)


def test_el0_hvc_is_undefined(vpmu_run):
    """HVC is UNDEFINED at EL0: no PSCI call is made (x0 unchanged), EC 0x00, vector 8.
    (It used to run the PSCI call, so EL0 could power the machine off.)"""
    r = vpmu_run("board_el0_traps")
    assert_line(r, "el0_hvc", x0=0x84000000, esr=0x02000000, vec=8)
    assert not records(r, "psci")


def test_el0_semihosting_is_undefined(vpmu_run):
    """HLT #0xF000 at EL0 is UNDEFINED, as on QEMU without -semihosting-config userspace=on."""
    r = vpmu_run("board_el0_traps")
    assert_line(r, "el0_semihosting", x0=0x4, esr=0x02000000, vec=8)
    assert "must not print" not in r.output


def test_el0_cntvct_trap_is_ec_0x18(vpmu_run):
    assert_line(vpmu_run("board_el0_traps"), "el0_cntvct_trapped", esr=0x6234F901, vec=8)


def test_el0_cntfrq_needs_cntkctl(vpmu_run):
    assert_line(vpmu_run("board_el0_traps"), "el0_cntfrq_trapped", esr=0x6230F801, vec=8)


def test_el0_daifset_trap_is_ec_0x18(vpmu_run):
    """MSR DAIFSet/DAIFClr and MRS DAIF at EL0 with SCTLR_EL1.UMA = 0 trap with EC 0x18; the
    line shows the last, MSR DAIFClr, #2: Op0 0, Op2 7, Op1 3, CRn 4, Rt 31, CRm 2, write.
    (QEMU 7.2 reports 0x6207D3E4: its daif_check passes Op1 and Op2 swapped.)"""
    r = vpmu_run("board_el0_traps")
    assert_line(r, "el0_daifset", esr=0x620ED3E4, vec=8)
    traps = exceptions(r, kind="sysreg_trap", from_el=0)
    # msr daifset, #2 / mrs x0, daif / msr daifclr, #2
    assert [t["esr"] for t in traps if t["esr"] >> 10 & 15 == 4][:3] == [0x620CD3E4, 0x6232D005, 0x620ED3E4]


# ------------------------------------------------------------------------------ EL1t (SP0 vectors)


def test_el1t_uses_the_sp0_vectors(vpmu_run):
    r = vpmu_run("board_sp0")
    assert r.exit_status == 0
    assert_kv(r, ret=7, el1t_spsel=0, el1t_sp_on_sp0_stack=1, el1t_sp_intact_after_svc=1, el1t_sp_intact_after_all=1,
              svc_esr="0x56000020", svc_elr_off=4, svc_spsr="0x3c4", svc_vec=0, svc_sp_el0_is_el1t_sp=1,
              svc_frame_on_el1_stack=1, brk_esr="0xf2000021", brk_vec=0, brk_spsr="0x200003c4",
              dabt_esr="0x96000010", dabt_vec=0, irq_count=1, irq_intid=3, irq_vec=1, irq_spsr="0x20000344",
              irq_elr_after_unmask=1, spsel_after=1, el1_sp_intact=1, sync_count=3)
    vbar = exceptions(r)[0]["vector"]
    assert vbar & 0x7FF == 0                                  # the SP0 group is at VBAR + 0
    assert all(e["vector"] == vbar for e in exceptions(r))


# ------------------------------------------------------------------------------ GICv3


def test_irq_through_the_gic(vpmu_run):
    r = vpmu_run("board_irq")
    assert r.exit_status == 0
    assert_kv(r, iar_idle=1023, rpr_idle="0xff", hppir_idle=1023,
              sgi_hppir=1, sgi_taken_while_masked=0, sgi_elr_after_unmask=1, rpr_after_eoi="0xff", iar_after=1023,
              pmr80_taken=0, pmr80_hppir=2, pmr80_iar=1023, order_hppir=4,
              preempt_depth="0,1", preempt_rpr_after_nested="0xa0",
              ispendr_bit8=1, icpendr_bit8=0, cleared_taken=0,
              pmu_taken_while_masked=0, pmu_pmovs="0x1", pmu_counter_low32=0,
              timer_ctl="0x5", vtimer_ctl_in_handler="0x5", rpr_end="0xff", iar_end=1023)
    assert_line(r, "sgi", n=1, ids="1", rpr="0x80", vec="5")
    assert_line(r, "pmr88", n=1, ids="2", rpr="0x80", vec="5")
    assert_line(r, "order", n=2, ids="4,3", rpr="0x80,0xa0", vec="5,5")
    assert_line(r, "preempt", n=2, ids="5,6", rpr="0xa0,0x80", vec="5,5")
    assert_line(r, "ispendr", n=1, ids="8", rpr="0x80", vec="5")
    assert_line(r, "pmu", n=1, ids="23", rpr="0x80", vec="5")
    assert_line(r, "vtimer", n=1, ids="27", rpr="0x80", vec="5")


def test_irq_trace(vpmu_run):
    r = vpmu_run("board_irq")
    irqs = records(r, "irq")
    assert [i["intid"] for i in irqs] == [1, 2, 4, 3, 5, 6, 8, 23, 27]
    assert all(i["from_el"] == 1 for i in irqs)
    # the PMU overflow raised the PPI level before the interrupt was taken, and it dropped
    # when the handler cleared PMOVSCLR; the timer likewise
    lv = [(x["intid"], x["level"]) for x in records(r, "irq_level")]
    assert lv == [(23, 1), (23, 0)]
    assert [(t["timer"], t["level"]) for t in records(r, "timer")] == [("vtimer", 1), ("vtimer", 0)]
    ovf = records(r, "overflow")
    assert len(ovf) == 1 and ovf[0]["counter"] == 0
    irq23 = records(r, "irq", intid=23)[0]
    assert irq23["icount"] >= ovf[0]["icount"]


# ------------------------------------------------------------------------------ generic timer and WFI


def test_generic_timer_and_wfi(vpmu_run):
    r = vpmu_run("board_timer")
    assert r.exit_status == 0
    assert_kv(r, cntfrq=62500000, cntvct_backwards=0, cntvct_advanced=1, loop_ticks_about_1000=1,
              wfi_pending_returned_fast=1, wfi_pending_taken_while_masked=0, wfi_pending_taken_after_unmask=1,
              wfi_pending_id=1,
              vtimer_istatus_before=0, vtimer_woke_after_cval=1, vtimer_istatus_after=1, vtimer_taken_while_masked=0,
              vtimer_taken=1, vtimer_id=27,
              tval_counts_down=1, tval_fired=1, tval_negative_after=1, tval_taken=1,
              ptimer_fired=1, ptimer_taken=1, ptimer_id=30,
              wfi_unmasked_taken=1, wfi_unmasked_elr_after_wfi=1, wfi_unmasked_id=27)


def test_wfi_trace(vpmu_run):
    r = vpmu_run("board_timer")
    wfis = records(r, "wfi")
    # a WFI that returns at once (interrupt pending) leaves no record; the four that slept do:
    # the vtimer one ~1 ms (62500 ticks of 16 ns, minus the instructions since CVAL was set)
    assert len(wfis) == 4
    assert 990_000 <= wfis[0]["idle_cycles"] <= 1_000_000
    assert all(w["idle_cycles"] > 0 for w in wfis)
    assert [t["timer"] for t in records(r, "timer") if t["level"] == 1] == ["vtimer", "vtimer", "ptimer", "vtimer"]
    assert [i["intid"] for i in records(r, "irq")] == [1, 27, 27, 30, 27]
    # the interrupt taken right after the last WFI interrupted the instruction after it
    last_wfi, last_irq = wfis[-1], records(r, "irq")[-1]
    assert last_irq["pc"] == last_wfi["pc"] + 4


def test_cntvct_rate_is_exact(vpmu_run):
    """1 instruction = 1 cycle = 1 ns, CNTVCT = cycles / 16: the guest measured 1000 +- 1."""
    assert_kv(vpmu_run("board_timer"), loop_ticks_about_1000=1)


# ------------------------------------------------------------------------------ runner stops


@pytest.mark.parametrize("append", ["", "timer=disabled", "timer=imask"])
def test_wfi_deadlock_stops_with_104(vpmu_run, append):
    r = vpmu_run("board_wfi_deadlock", expect_error=True, **({"append": append} if append else {}))
    assert r.exit_status == 104 and r.reason == "error"
    assert r.output.endswith("board_wfi_deadlock: wfi\n")
    assert re.search(r"WFI at PC 0x4020[0-9a-f]{4}\b", r.error) and "\n" not in r.error
    assert r.trace[-1]["type"] == "error"


@pytest.mark.parametrize("append", ["timer=disabled", "timer=imask"])
def test_wfi_deadlock_names_the_silent_timer(vpmu_run, append):
    r = vpmu_run("board_wfi_deadlock", expect_error=True, append=append)
    assert r.exit_status == 104 and "timer fired" in r.error


@pytest.mark.parametrize("append, kind, unmapped", [("", "prefetch_abort", True), ("vbar=udf", "undef", False),
                                                    ("trigger=svc", "prefetch_abort", True),
                                                    ("trigger=udf", "prefetch_abort", True),
                                                    ("trigger=dabt vbar=udf", "undef", False)])
def test_fault_loop_stops_with_102(vpmu_run, append, kind, unmapped):
    r = vpmu_run("board_fault_loop", expect_error=True, **({"append": append} if append else {}))
    assert r.exit_status == 102
    assert r.output.endswith("board_fault_loop: breaking the vector table\n")
    assert f"recursive {kind} exception at the vector 0x" in r.error and "\n" not in r.error
    if unmapped:      # the vector (current EL, SPx, synchronous) is where the PC is stuck
        assert "vector 0xf000200" in r.error and "VBAR_EL1 = 0xf000000" in r.error
    else:
        assert re.search(r"vector 0x4020[0-9a-f]{2}00: .*VBAR_EL1 = 0x4020[0-9a-f]{2}00\)", r.error)


def test_instruction_limit_stops_with_103(vpmu_run):
    r = vpmu_run("board_spin", expect_error=True, max_insns=10_000)
    assert r.exit_status == 103 and "spin_done" not in r.output
    assert re.fullmatch(r"instruction limit reached \(10000 instructions\) at PC 0x[0-9a-f]+", r.error)
    assert r.icount == 10_000


def test_instruction_limit_not_reached(vpmu_run):
    r = vpmu_run("board_spin", max_insns=3_000_000, append="iters=1000000")
    assert r.exit_status == 0 and "spin_done=1" in r.output
    assert r.icount < 3_000_000


# ------------------------------------------------------------------------------ the board's shape


class _SinkFailed(Exception):
    pass


@pytest.mark.parametrize("guest, path", [("board_uart", "write"), ("board_semihost", "_writec")],
                         ids=["PL011 MMIO callback", "UC_HOOK_INTR (semihosting)"])
def test_an_exception_in_a_callback_reaches_the_caller(vpmu_guest_dir, guest, path):
    """An exception raised inside a Unicorn callback is kept, emulation stops, and run()
    raises it after emu_start returns (board/guard.py): nothing is lost in the C frames and
    the guest does not run on."""
    from vpmu.board.loader import open_image
    from vpmu.board.machine import Machine
    from vpmu.config import MachineConfig

    calls = []

    def out(data: bytes) -> None:
        import traceback
        calls.append([f.name for f in traceback.extract_stack()])
        if len(calls) == 3:
            raise _SinkFailed("output sink failed")

    m = Machine(MachineConfig(), open_image(str(vpmu_guest_dir / f"{guest}.elf")), out=out, err=out)
    try:
        with pytest.raises(_SinkFailed):
            m.run()
    finally:
        m.close()
    assert len(calls) == 3 and m.exit_status is None
    assert path in calls[-1]                    # the device's callback raised it


def _imports(path) -> list[tuple[str, str]]:
    """(module imported, enclosing function or '') for every import in a board module."""
    import ast

    tree = ast.parse(path.read_text())
    found = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            f = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Import):
                found.extend((a.name, f) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = "vpmu.board" if child.level == 1 else "vpmu" if child.level == 2 else ""
                mod = ".".join(p for p in (base, child.module or "") if p)
                found.extend((mod + "." + a.name if not child.module else mod, f) for a in child.names)
            visit(child, f)

    visit(tree, "")
    return found


def test_the_board_does_not_depend_on_the_xen_package():
    """The Xen package depends on the board (GuestEnv lives in vpmu/board/env.py), never the
    reverse: the caller (vpmu.api) chooses the frontend."""
    from pathlib import Path

    import vpmu.board

    uses = [(p.name, mod, func) for p in sorted(Path(vpmu.board.__file__).parent.glob("*.py"))
            for mod, func in _imports(p) if mod == "vpmu.xen" or mod.startswith("vpmu.xen.")]
    assert uses == []


# ------------------------------------------------------------------------------ the same guests on QEMU

QEMU = shutil.which("qemu-system-aarch64")
# docs/qemu-compat.md: semihosting console on the same stream as the UART, no reboot on
# SYSTEM_RESET (QEMU would restart the guest)
QEMU_ARGS = ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-icount", "shift=0", "-m", "128M", "-display",
             "none", "-no-reboot", "-net", "none", "-chardev", "stdio,id=c0,mux=on", "-serial", "chardev:c0",
             "-semihosting-config", "enable=on,target=native,chardev=c0"]
IDENTICAL_ON_QEMU = [("board_uart", ""), ("board_el0", ""), ("board_store_abort", ""), ("board_exc", ""),
                     ("board_sp0", ""), ("board_irq", ""),
                     ("board_timer", ""), ("board_spin", ""), ("board_exit", "exit=0"), ("board_exit", "exit=7"),
                     ("board_exit", "exit=300"), ("board_exit", "sysexit=9"), ("board_exit", "reason=0x20023"),
                     ("board_exit", "psci=off"), ("board_exit", "psci=reset"), ("hello", "")]


@pytest.mark.qemu
@pytest.mark.skipif(QEMU is None, reason="needs qemu-system-aarch64")
@pytest.mark.parametrize("guest, append", IDENTICAL_ON_QEMU, ids=[f"{g}[{a}]" for g, a in IDENTICAL_ON_QEMU])
def test_identical_output_on_qemu(vpmu_run, vpmu_guest_dir, guest, append):
    """Where the behaviour is the architecture's (or the virt board's), vpmu and QEMU print
    the same bytes and exit with the same status."""
    opts = {"append": append} if append else {}
    r = vpmu_run(guest, **opts)
    q = subprocess.run([QEMU, *QEMU_ARGS, *(["-append", append] if append else []), "-kernel",
                        str(vpmu_guest_dir / f"{guest}.elf")], capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.output == q.stdout.decode("utf-8", "replace")
    assert r.exit_status == q.returncode
