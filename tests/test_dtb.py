"""The generated device tree (vpmu/dtb.py): parsed back, property by property.

Expected values are QEMU virt's (hw/arm/virt.c, hw/arm/boot.c) for the devices the board
has; when qemu-system-aarch64 is installed the last tests also diff against its own tree.
"""
from __future__ import annotations

import shutil
import struct
import subprocess

import fdt
import pytest

from vpmu.cli import main
from vpmu.config import MachineConfig
from vpmu.dtb import (GIC_NUM_SPIS, PHANDLE_APB_PCLK, PHANDLE_CPU0, PHANDLE_GIC,
                      QEMU_DTB_TOTAL_SIZE, XEN_GNTTAB_BASE, XEN_GNTTAB_SIZE, BoardSpec, build_dtb, to_dts)

LEVEL_HI = 4
PPI, SPI = 1, 0


def tree_of(spec: BoardSpec) -> fdt.FDT:
    blob = build_dtb(spec)
    magic, total = struct.unpack_from(">II", blob)
    assert magic == 0xD00DFEED and total == len(blob)
    return fdt.parse_dtb(blob)


def spec_of(**cfg_fields) -> BoardSpec:
    cfg = MachineConfig()
    pmu = cfg_fields.pop("pmu", {})
    for k, v in cfg_fields.items():
        setattr(cfg, k, v)
    for k, v in pmu.items():
        setattr(cfg.pmu, k, v)
    return BoardSpec.from_config(cfg)


def prop(tree: fdt.FDT, path: str, name: str):
    p = tree.get_property(name, path)
    assert p is not None, f"{path} has no {name}"
    return list(p.data) if hasattr(p, "data") else True


def has_node(tree: fdt.FDT, path: str) -> bool:
    return tree.exist_node(path)


# --- Structure ---------------------------------------------------------------------------

def test_header_and_root():
    blob = build_dtb(BoardSpec())
    version, last_comp = struct.unpack_from(">II", blob, 20)
    assert (version, last_comp) == (17, 16)
    t = fdt.parse_dtb(blob)
    assert prop(t, "/", "compatible") == ["linux,dummy-virt"]
    assert prop(t, "/", "#address-cells") == [2]
    assert prop(t, "/", "#size-cells") == [2]
    assert prop(t, "/", "interrupt-parent") == [PHANDLE_GIC]


def test_padding_to_qemus_size():
    spec = spec_of(xen=True, append="quiet")
    packed = build_dtb(spec)
    padded = build_dtb(spec, total_size=QEMU_DTB_TOTAL_SIZE)
    assert len(padded) == QEMU_DTB_TOTAL_SIZE
    assert struct.unpack_from(">I", padded, 4)[0] == QEMU_DTB_TOTAL_SIZE
    assert padded[8:len(packed)] == packed[8:] and not any(padded[len(packed):])
    assert fdt.diff(fdt.parse_dtb(padded), fdt.parse_dtb(packed))[1].empty
    with pytest.raises(ValueError, match="smaller than the tree"):
        build_dtb(spec, total_size=64)


@pytest.mark.parametrize("memory,cells", [
    (128 << 20, [0, 0x4000_0000, 0, 0x0800_0000]),
    (1 << 30, [0, 0x4000_0000, 0, 0x4000_0000]),
    (8 << 30, [0, 0x4000_0000, 2, 0]),              # > 4 GiB needs the high size cell
])
def test_memory_node(memory, cells):
    t = tree_of(spec_of(memory=memory))
    assert prop(t, "/memory@40000000", "device_type") == ["memory"]
    assert prop(t, "/memory@40000000", "reg") == cells


def test_gic_node():
    t = tree_of(BoardSpec())
    gic = "/intc@8000000"
    assert prop(t, gic, "compatible") == ["arm,gic-v3"]
    assert prop(t, gic, "#interrupt-cells") == [3]
    assert prop(t, gic, "interrupt-controller") is True
    assert prop(t, gic, "#redistributor-regions") == [1]
    # distributor 64 KiB at 0x0800_0000; virt's whole redistributor region at 0x080A_0000
    assert prop(t, gic, "reg") == [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080A_0000, 0, 0xF6_0000]
    assert prop(t, gic, "phandle") == [PHANDLE_GIC]
    assert prop(t, gic, "#address-cells") == [2] and prop(t, gic, "ranges") is True


def test_cpu_node():
    t = tree_of(BoardSpec())
    assert prop(t, "/cpus", "#address-cells") == [1]
    assert prop(t, "/cpus", "#size-cells") == [0]
    cpu = "/cpus/cpu@0"
    assert prop(t, cpu, "device_type") == ["cpu"]
    assert prop(t, cpu, "compatible") == ["arm,cortex-a57"]
    assert prop(t, cpu, "enable-method") == ["psci"]
    assert prop(t, cpu, "reg") == [0]
    assert prop(t, cpu, "phandle") == [PHANDLE_CPU0]
    assert prop(t, "/cpus/cpu-map/socket0/cluster0/core0", "cpu") == [PHANDLE_CPU0]


# --- Interrupts ----------------------------------------------------------------------------

@pytest.mark.parametrize("pmu_irq,expected", [
    (23, [PPI, 7, LEVEL_HI]),        # default: virt's VIRTUAL_PMU_IRQ
    (22, [PPI, 6, LEVEL_HI]),
    (16, [PPI, 0, LEVEL_HI]),
    (40, [SPI, 8, LEVEL_HI]),        # an SPI is encoded as an SPI
    (31 + GIC_NUM_SPIS, [SPI, GIC_NUM_SPIS - 1, LEVEL_HI]),
])
def test_pmu_interrupt(pmu_irq, expected):
    t = tree_of(spec_of(pmu={"irq": pmu_irq}))
    assert prop(t, "/pmu", "compatible") == ["arm,armv8-pmuv3"]
    assert prop(t, "/pmu", "interrupts") == expected


def test_no_pmu_node_without_pmu():
    assert not has_node(tree_of(spec_of(pmu={"present": False})), "/pmu")


@pytest.mark.parametrize("bad", [0, 15, 32 + GIC_NUM_SPIS, 1020, -1])
def test_pmu_interrupt_must_be_ppi_or_spi(bad):
    with pytest.raises(ValueError, match="PMU interrupt"):
        spec_of(pmu={"irq": bad})


def test_timer_default_is_virts():
    t = tree_of(BoardSpec())
    assert prop(t, "/timer", "compatible") == ["arm,armv8-timer", "arm,armv7-timer"]
    assert prop(t, "/timer", "always-on") is True
    assert prop(t, "/timer", "interrupts") == [PPI, 13, LEVEL_HI, PPI, 14, LEVEL_HI,
                                              PPI, 11, LEVEL_HI, PPI, 10, LEVEL_HI]


def test_timer_from_custom_timer_ppis():
    ppis = {"vtimer": 20, "ptimer": 21, "hvtimer": 28, "hptimer": 19}
    t = tree_of(spec_of(timer_ppis=ppis))
    # order: secure phys (fixed 29), non-secure phys, virtual, EL2 phys; exactly four
    # entries (kvm-unit-tests' timer_save_state_fdt asserts the length)
    assert prop(t, "/timer", "interrupts") == [PPI, 13, LEVEL_HI, PPI, 5, LEVEL_HI,
                                              PPI, 4, LEVEL_HI, PPI, 3, LEVEL_HI]


@pytest.mark.parametrize("ppis,match", [
    ({"vtimer": 27, "ptimer": 27, "hvtimer": 28, "hptimer": 26}, "both use INTID 27"),
    ({"vtimer": 32, "ptimer": 30, "hvtimer": 28, "hptimer": 26}, "not a PPI"),
    ({"vtimer": 27, "hvtimer": 28, "hptimer": 26}, "no 'ptimer'"),
])
def test_bad_timer_ppis(ppis, match):
    with pytest.raises(ValueError, match=match):
        spec_of(timer_ppis=ppis)


@pytest.mark.parametrize("fields,match", [
    ({"pmu": {"irq": 27}}, "virtual timer and PMU|PMU and virtual timer"),
    ({"pmu": {"irq": 33}}, "UART"),
    ({"pmu": {"irq": 31}, "xen": True}, "Xen event channel"),
])
def test_interrupt_collisions(fields, match):
    with pytest.raises(ValueError, match=match):
        spec_of(**fields)


def test_pmu_on_ppi_31_is_fine_without_xen():
    assert prop(tree_of(spec_of(pmu={"irq": 31})), "/pmu", "interrupts") == [PPI, 15, 4]


# --- UART, chosen, PSCI, Xen -------------------------------------------------------------

def test_stdout_path_resolves_to_the_uart():
    t = tree_of(BoardSpec())
    [path] = prop(t, "/chosen", "stdout-path")
    assert prop(t, "/aliases", "serial0") == [path]
    assert prop(t, path, "compatible") == ["arm,pl011", "arm,primecell"]
    assert prop(t, path, "reg") == [0, 0x0900_0000, 0, 0x1000]
    assert prop(t, path, "interrupts") == [SPI, 1, LEVEL_HI]
    assert prop(t, path, "clocks") == [PHANDLE_APB_PCLK, PHANDLE_APB_PCLK]
    assert prop(t, path, "clock-names") == ["uartclk", "apb_pclk"]
    assert prop(t, "/apb-pclk", "phandle") == [PHANDLE_APB_PCLK]
    assert prop(t, "/apb-pclk", "clock-frequency") == [24_000_000]
    assert prop(t, "/apb-pclk", "compatible") == ["fixed-clock"]
    assert prop(t, "/apb-pclk", "#clock-cells") == [0]


def test_psci_node():
    t = tree_of(BoardSpec())
    assert prop(t, "/psci", "method") == ["hvc"]
    # kvm-unit-tests' psci_set_conduit looks the node up by "arm,psci-0.2"
    assert prop(t, "/psci", "compatible") == ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
    assert prop(t, "/psci", "cpu_on") == [0xC400_0003]
    assert prop(t, "/psci", "cpu_off") == [0x8400_0002]


def test_xen_node_only_with_xen():
    assert not has_node(tree_of(BoardSpec()), "/hypervisor")
    t = tree_of(spec_of(xen=True))
    assert prop(t, "/hypervisor", "compatible") == ["xen,xen-4.23", "xen,xen"]
    assert prop(t, "/hypervisor", "reg") == [0, XEN_GNTTAB_BASE, 0, XEN_GNTTAB_SIZE]
    # PPI 31 -> PPI number 15, "active-low level, all CPUs" as libxl writes it
    assert prop(t, "/hypervisor", "interrupts") == [PPI, 15, 0xF08]


def test_grant_table_region_is_outside_ram_and_devices():
    lo, hi = XEN_GNTTAB_BASE, XEN_GNTTAB_BASE + XEN_GNTTAB_SIZE
    taken = [(0, 0x0800_0000), (0x0800_0000, 0x0900_0000), (0x0900_0000, 0x0A00_0000),
             (0x0A00_0000, 0x0F00_0000), (0x1000_0000, 0x4000_0000), (0x4000_0000, 1 << 40)]
    assert all(hi <= a or lo >= b for a, b in taken)


@pytest.mark.parametrize("append", [None, ""])
def test_no_bootargs_without_append(append):
    t = tree_of(spec_of(append=append))
    assert t.get_property("bootargs", "/chosen") is None


def test_bootargs_from_append():
    t = tree_of(spec_of(append='console=ttyAMA0 cycle-counter 1 x="a b"'))
    assert prop(t, "/chosen", "bootargs") == ['console=ttyAMA0 cycle-counter 1 x="a b"']


@pytest.mark.parametrize("bad", ["a\nb", "caf\u00e9", "tab\there"])
def test_bootargs_must_be_printable_ascii(bad):
    with pytest.raises(ValueError, match="printable ASCII"):
        spec_of(append=bad)


@pytest.mark.parametrize("memory", [0, 128, (128 << 20) + 1, 256 << 30])
def test_bad_memory_sizes(memory):
    with pytest.raises(ValueError, match="memory size"):
        spec_of(memory=memory)


# --- DTS ------------------------------------------------------------------------------------

def test_dts_says_the_same():
    spec = spec_of(pmu={"irq": 40}, xen=True, append="console=ttyAMA0 quiet",
                   memory=1 << 30)
    text = to_dts(spec)
    assert text.startswith("/dts-v1/;")
    for needle in ['bootargs = "console=ttyAMA0 quiet";', 'stdout-path = "/pl011@9000000";',
                   "memory@40000000 {", "reg = <0x0 0x40000000 0x0 0x40000000>;",
                   "intc@8000000 {", "#interrupt-cells = <0x3>;",
                   "reg = <0x0 0x8000000 0x0 0x10000 0x0 0x80A0000 0x0 0xF60000>;",
                   'compatible = "arm,armv8-pmuv3";', "interrupts = <0x0 0x8 0x4>;",
                   "interrupts = <0x1 0xD 0x4 0x1 0xE 0x4 0x1 0xB 0x4 0x1 0xA 0x4>;",
                   'method = "hvc";', 'compatible = "xen,xen-4.23", "xen,xen";',
                   "interrupts = <0x1 0xF 0xF08>;"]:
        assert needle in text, needle
    # the DTS parses back (pyFDT's own parser) to the same tree as the blob
    same, only_blob, only_dts = fdt.diff(fdt.parse_dtb(build_dtb(spec)), fdt.parse_dts(text))
    assert only_blob.empty and only_dts.empty


@pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc (device-tree-compiler)")
def test_dtc_compiles_the_dts_to_the_same_blob(tmp_path):
    spec = spec_of(append='a "quoted" back\\slash', xen=True)
    (tmp_path / "t.dts").write_text(to_dts(spec))
    (tmp_path / "ours.dtb").write_bytes(build_dtb(spec))
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(tmp_path / "t.dtb"),
                    str(tmp_path / "t.dts")], check=True)

    def decompile(name):
        return subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(tmp_path / name)],
                              check=True, capture_output=True, text=True).stdout
    assert decompile("t.dtb") == decompile("ours.dtb")
    assert r'bootargs = "a \"quoted\" back\\slash";' in decompile("ours.dtb")


# --- vpmu dtb --------------------------------------------------------------------------------

def cli(argv):
    """``vpmu ARGV`` through the real command line, in this process."""
    return main(argv)


def test_cli_writes_a_valid_blob(tmp_path):
    out = tmp_path / "board.dtb"
    rc = cli(["dtb", "--pmu-irq", "0x16", "--memory", "1G", "--xen", "--append",
              "console=ttyAMA0", "-o", str(out)])
    assert rc == 0
    t = fdt.parse_dtb(out.read_bytes())
    assert prop(t, "/pmu", "interrupts") == [PPI, 6, LEVEL_HI]
    assert prop(t, "/memory@40000000", "reg") == [0, 0x4000_0000, 0, 0x4000_0000]
    assert prop(t, "/chosen", "bootargs") == ["console=ttyAMA0"]
    assert has_node(t, "/hypervisor")
    assert out.read_bytes() == build_dtb(spec_of(pmu={"irq": 22}, memory=1 << 30, xen=True,
                                                 append="console=ttyAMA0"))


def test_cli_dts_and_both(tmp_path):
    assert cli(["dtb", "--dts", "-o", str(tmp_path / "a.dts")]) == 0
    assert (tmp_path / "a.dts").read_text() == to_dts(BoardSpec())
    assert cli(["dtb", "-o", str(tmp_path / "x.dtb"), "--dts-out", str(tmp_path / "x.dts")]) == 0
    assert (tmp_path / "x.dtb").read_bytes() == build_dtb(BoardSpec())
    assert (tmp_path / "x.dts").read_text() == to_dts(BoardSpec())


def test_cli_stdout(capsysbinary):
    assert cli(["dtb"]) == 0
    assert capsysbinary.readouterr().out == build_dtb(BoardSpec())
    assert cli(["dtb", "--dts", "-o", "-"]) == 0
    assert capsysbinary.readouterr().out == to_dts(BoardSpec()).encode()


@pytest.mark.parametrize("argv,message", [
    (["--memory", "lots"], "not a size: 'lots'"),
    (["--memory", "128"], "did you mean 128M?"),
    (["--memory", "1T"], "exceeds"),
    (["--pmu-irq", "abc"], "--pmu-irq 'abc' is not a number"),
    (["--pmu-irq", "8"], "PMU interrupt 8 is not a PPI"),
    (["--pmu-irq", "27"], "both use INTID 27"),
    (["--append", "a\tb"], "printable ASCII"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "never.dtb"
    assert cli(["dtb", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vpmu dtb: error: ") and message in err
    assert not out.exists()


def test_cli_unwritable_output(tmp_path, capsys):
    assert cli(["dtb", "-o", str(tmp_path / "no" / "such" / "dir.dtb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err


def test_cli_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli(["dtb", "--pmu-irq"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vpmu dtb: error:")


# --- Against QEMU itself ---------------------------------------------------------------------

QEMU = shutil.which("qemu-system-aarch64")

# Properties QEMU fills with per-boot randomness (ours: from --seed), and the one we add on purpose.
_RANDOM = {("/chosen", "kaslr-seed"), ("/chosen", "rng-seed")}
_OURS_ONLY_NODES = {"/hypervisor", "/aliases"}          # /aliases: QEMU >= 9.1 has it too
_OURS_ONLY_PROPS = {("/cpus/cpu@0", "enable-method"), ("/", "dma-coherent")}


def qemu_tree(tmp_path, memory: str, append: str) -> fdt.FDT:
    kernel = tmp_path / "k.bin"
    kernel.write_bytes(b"\x00\x00\x00\x14")        # never runs: dumpdtb exits first
    dtb = tmp_path / "virt.dtb"
    subprocess.run([QEMU, "-M", f"virt,gic-version=3,dumpdtb={dtb}", "-cpu", "cortex-a57",
                    "-m", memory, "-nodefaults", "-display", "none", "-kernel", str(kernel),
                    "-append", append], check=True, capture_output=True, timeout=60)
    return fdt.parse_dtb(dtb.read_bytes())


def props_by_path(tree: fdt.FDT) -> dict:
    out = {}
    for path, _nodes, props in tree.walk():
        for p in props:
            out[(path, p.name)] = list(p.data) if hasattr(p, "data") else True
    return out


@pytest.mark.qemu
@pytest.mark.skipif(QEMU is None, reason="needs qemu-system-aarch64")
def test_every_node_and_property_matches_qemu_virt(tmp_path):
    theirs = props_by_path(qemu_tree(tmp_path, "256M", "console=ttyAMA0 x=1"))
    ours = props_by_path(tree_of(spec_of(memory=256 << 20, append="console=ttyAMA0 x=1")))
    their_nodes = {path for path, _ in theirs} | {"/"}
    for (path, name), value in ours.items():
        if path in _OURS_ONLY_NODES or (path, name) in _OURS_ONLY_PROPS:
            continue
        if (path, name) in _RANDOM:                 # ours come from --seed: only the size is QEMU's
            assert len(theirs[(path, name)]) == len(value), f"{path}/{name}"
            continue
        assert path in their_nodes, f"QEMU virt has no node {path}"
        if (path, name) in theirs:
            assert theirs[(path, name)] == value, f"{path}/{name}"
        else:
            assert (path, name) == ("/", "model"), f"QEMU virt has no {path}/{name}"
    # ...and every property QEMU gives the nodes we describe is there too
    for (path, name), value in theirs.items():
        if path in {p for p, _ in ours} and (path, name) not in _RANDOM:
            assert (path, name) in ours, f"missing {path}/{name}"
