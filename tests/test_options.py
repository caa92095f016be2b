"""vpmu.options (RunOptions: the one table of run options, and where they become a machine),
vpmu.sizes (the one size parser), and every field of a ``--vm`` description reaching the run.

The ``--vm`` tests run guests/src/vm_probe.c, which reports what the guest sees: the RAM size
in its device tree (and that the last word of that RAM is there), PMUVer, PMCR_EL0.N,
PMCEID0, the PMU and timer interrupts in the tree, the INTID the virtual timer raises and the
PV-time base.  A field KVM only checks (host CPU, vGIC size, steal time) is shown by the run
KVM would refuse (exit status 105) next to the one it accepts.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

import vpmu
from vpmu import errors
from vpmu.cli import build_parser
from vpmu.config import DEFAULT_MEMORY
from vpmu.options import RunOptions
from vpmu.sizes import parse_size

BR_MIS_PRED = 0x10


# ---------------------------------------------------------------------------------------------
# One size parser (vpmu run --memory, vpmu dtb --memory, --cache sizes, memory = "..." in --vm)

@pytest.mark.parametrize("text,value", [
    ("128M", 128 << 20), ("1G", 1 << 30), ("512K", 512 << 10), ("0x8000000", 128 << 20),
    ("134217728", 128 << 20), ("2GiB", 2 << 30), ("64m", 64 << 20), ("1_048_576", 1 << 20),
    ("1GiB", 1 << 30), ("64KB", 64 << 10), ("1Gi", 1 << 30), ("128B", 128), ("0x10M", 16 << 20),
    ("1T", 1 << 40), (" 1G ", 1 << 30),
])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "M", "1.5G", "12Q", "-1M", "0x", "lots", "0128", "1__0", "1iB", "G1"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match=r"^not a size: "):
        parse_size(text)


@pytest.mark.parametrize("argv", [["run", "--memory", "1GiB", "x.elf"], ["dtb", "--memory", "1GiB"]])
def test_both_commands_take_the_same_sizes(argv):
    args = build_parser().parse_args(argv)
    assert (args.memory if argv[0] == "run" else parse_size(args.memory)) == 1 << 30


def test_cache_sizes_use_the_size_parser():
    assert RunOptions(cache="line=64,l1d-size=32KiB,l1i-size=0x8000").cache.l1d_size == 32 << 10


# ---------------------------------------------------------------------------------------------
# The table: vpmu run's parser and vpmu.run()'s keywords both come from RunOptions

def test_every_field_is_a_run_option_and_back():
    args = vars(build_parser().parse_args(["run", "x.elf"]))
    not_options = {"debug", "cmd", "func", "guest", "summary", "json", "sep"}
    assert set(args) - not_options == {f.name for f in fields(RunOptions)}
    assert all(args[f.name] == (f.default if f.name != "filters" else None) for f in fields(RunOptions))


def test_parsed_command_line_equals_keywords():
    from vpmu.commands.run import options_from_args
    args = build_parser().parse_args(["run", "g.elf", "--filter", "deny:0x11", "--filter", "allow:0x8",
                                      "--memory", "1G", "--cycles", "base=2", "--counters", "0x8", "--no-pmu"])
    assert options_from_args(args) == RunOptions(filters=["deny:0x11", "allow:0x8"], memory="1G",
                                                 cycles="base=2", counters=8, no_pmu=True)


def test_unknown_keyword_suggests_the_nearest(vpmu_guest_dir):
    with pytest.raises(TypeError, match=r"unknown run option 'filter' \(did you mean 'filters'\?\)"):
        vpmu.run(str(vpmu_guest_dir / "hello.elf"), filter=["deny:0x11"])
    with pytest.raises(TypeError, match=r"'max_insn' \(did you mean 'max_insns'\?\), 'zzz'"):
        RunOptions.from_keywords(max_insn=5, zzz=1)


@pytest.mark.parametrize("kw, message", [
    (dict(memory="12Q"), "--memory: not a size: '12Q'"),
    (dict(memory=4097), "--memory must be a multiple of 4 KiB"),
    (dict(max_insns=0), "--max-insns must be at least 1"),
    (dict(trace_sample=-1), "--trace-sample must not be negative"),
    (dict(cycles="foo=1"), "--cycles: unknown item 'foo=1'"),
    (dict(xen_vpmu="zz"), "--xen-vpmu must be one of"),
    (dict(counters="8"), "--counters must be an integer"),
    (dict(filters="deny:0x11"), "filters must be a list"),
])
def test_bad_values_are_usage_errors(kw, message):
    with pytest.raises(errors.UsageError) as ei:
        RunOptions(**kw)
    assert message in str(ei.value) and ei.value.status == errors.EXIT_USAGE


def test_memory_not_given_is_none_and_the_default_comes_from_the_machine():
    assert RunOptions().memory is None
    assert RunOptions().to_machine_config().memory == DEFAULT_MEMORY
    assert RunOptions(memory="256M").to_machine_config().memory == 256 << 20


# ---------------------------------------------------------------------------------------------
# Every --vm field reaches the run (guests/src/vm_probe.c)

@pytest.fixture
def probe(vpmu_guest_dir, tmp_path):
    """probe(toml, **options) -> the guest's key=value results as ints (or the RunResult when
    the run is expected to fail: ``fails=True``)."""
    def run(toml: str, fails: bool = False, **options):
        vm = tmp_path / "vm.toml"
        vm.write_text(toml)
        elf = str(vpmu_guest_dir / "vm_probe.elf")
        if fails:
            with pytest.raises(errors.VpmuError) as ei:
                vpmu.run(elf, vm=str(vm), **options)
            return ei.value
        r = vpmu.run(elf, vm=str(vm), **options)
        assert r.ok, (r.error, r.output)
        return {k: int(v, 0) for k, v in r.kv().items()}
    return run


TWO_PMUS = ('[host]\n[[host.pmu]]\ntype = 8\ncounters = 6\ncpus = [0, 1, 2, 3]\n'
            '[[host.pmu]]\ntype = 9\ncounters = 4\ncpus = [4, 5, 6, 7]\nname = "armv8_pmuv3_1"\n')


def test_vm_memory(probe):
    r = probe('memory = "1G"\n')
    assert (r["mem_base"], r["mem_size"], r["mem_last_word_ok"]) == (0x4000_0000, 1 << 30, 1)
    assert probe('memory = 268435456\n')["mem_size"] == 256 << 20
    assert probe("")["mem_size"] == DEFAULT_MEMORY                  # no key: the default


def test_vm_memory_explicit_option_overrides(probe):
    assert probe('memory = "1G"\n', memory="256M")["mem_size"] == 256 << 20


def test_vm_memory_outside_the_board(probe):
    e = probe('memory = "8G"\n', fails=True)
    assert e.status == errors.EXIT_USAGE and "memory = 8 GiB is outside what the board supports" in str(e)


def test_vm_memory_through_the_command_line(vpmu_guest_dir, tmp_path):
    vm = tmp_path / "vm.toml"
    vm.write_text('memory = "1G"\n')
    p = subprocess.run([sys.executable, "-m", "vpmu", "run", "--vm", str(vm), str(vpmu_guest_dir / "vm_probe.elf")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "mem_size=0x40000000\nmem_last_word_ok=1\n" in p.stdout


def test_vm_host_pmu_version_and_counters(probe):
    r = probe('[host]\n[[host.pmu]]\ntype = 8\nversion = "3.4"\ncounters = 4\n')
    assert (r["pmuver"], r["n"]) == (5, 4)                          # 3.4 = PMUVer 5
    assert probe("")["pmuver"] == 6                                 # a file host: KVM's cap, 3.5


def test_vm_host_cpu_picks_the_default_pmu(probe):
    assert probe(TWO_PMUS)["n"] == 6                                # CPU 0: PMU type 8
    assert probe(TWO_PMUS.replace("[host]\n", "[host]\ncpu = 4\n"))["n"] == 4


def test_vm_host_steal_time(probe):
    assert probe('[pvtime]\nipa = 0x47000000\n')["pvtime_st"] == 0x4700_0000
    e = probe('[host]\nsteal_time = false\n[pvtime]\nipa = 0x47000000\n', fails=True)
    assert e.status == errors.EXIT_KVM and e.check == "pvtime.unsupported"


def test_vm_pmu_set_pmu_and_host_cpu_checked_at_run(probe):
    both_cover_cpu_0 = TWO_PMUS.replace("cpus = [4, 5, 6, 7]", "cpus = [0, 1, 2, 3]")
    assert probe(both_cover_cpu_0)["n"] == 6                        # default: the first PMU of CPU 0
    assert probe(both_cover_cpu_0 + "[pmu]\nset_pmu = 9\n")["n"] == 4
    e = probe(TWO_PMUS + "[pmu]\nset_pmu = 9\n", fails=True)       # type 9 does not cover CPU 0
    assert e.status == errors.EXIT_KVM and "KVM_EXIT_FAIL_ENTRY: CPU 0" in str(e)


def test_vm_pmu_enabled_version_counters(probe):
    r = probe("[pmu]\nenabled = false\n")
    assert (r["pmuver"], r["dt_pmu_intid"]) == (0, 0) and "n" not in r
    assert probe('[pmu]\nversion = "3.1"\n')["pmuver"] == 4
    assert probe("[pmu]\ncounters = 3\n")["n"] == 3


def test_vm_pmu_irq(probe):
    assert probe("[pmu]\nirq = 22\n")["dt_pmu_intid"] == 22
    assert probe("")["dt_pmu_intid"] == 23


def test_vm_pmu_filters(probe):
    assert probe("")["pmceid0"] >> BR_MIS_PRED & 1
    assert not probe('[pmu]\nfilters = ["deny:BR_MIS_PRED"]\n')["pmceid0"] >> BR_MIS_PRED & 1
    # --filter items come after the file's: allow it again
    assert probe('[pmu]\nfilters = ["deny:BR_MIS_PRED"]\n', filters=["allow:BR_MIS_PRED"])["pmceid0"] >> BR_MIS_PRED & 1


def test_vm_vgic(probe):
    r = probe("[vgic]\nenabled = false\n")         # no irqchip: the VMM wires the PMU to PPI 23
    assert (r["dt_pmu_intid"], r["dt_vtimer_intid"], r["vtimer_fired_intid"]) == (23, 27, 27)
    assert probe("[vgic]\nenabled = false\n[pmu]\nirq = 23\n", fails=True).check == "irq.no_irqchip"
    assert probe("[vgic]\nnr_spis = 32\n[pmu]\nirq = 40\n")["dt_pmu_intid"] == 40
    assert probe("[vgic]\nnr_spis = 32\n[pmu]\nirq = 64\n", fails=True).check == "init.bad_irq"


def test_vm_timers(probe):
    r = probe("[timer]\nvtimer = 20\nptimer = 21\nhptimer = 25\n")
    assert (r["dt_vtimer_intid"], r["dt_ptimer_intid"], r["dt_hptimer_intid"]) == (20, 21, 25)
    assert r["vtimer_fired_intid"] == 20                            # the board raises it there


def test_vm_timer_hvtimer_is_carried(tmp_path):
    """The EL2 virtual timer has no guest-visible effect on this EL1 board; KVM keeps its PPI."""
    vm = tmp_path / "vm.toml"
    vm.write_text("[timer]\nhvtimer = 19\n")
    assert RunOptions(vm=vm).to_machine_config().timer_ppis["hvtimer"] == 19


def test_vm_pvtime(vpmu_guest_dir, tmp_path, probe):
    assert probe("[pvtime]\nipa = 0x47000040\n")["pvtime_st"] == 0x4700_0040
    vm = tmp_path / "st.toml"
    vm.write_text("[pvtime]\nipa = 0x47000000\nstolen_ns_per_ms = 100000\n")
    kv = vpmu.run(str(vpmu_guest_dir / "pvtime.elf"), vm=str(vm)).kv()
    assert (kv["st"], kv["stolen_ns"]) == ("0x47000000", "300000")   # 3 whole ms of 3.5
