"""``vpmu trace plot``: lines labelled by event, 32-bit wraps unwrapped, panels or an overlay on
linear/log/symlog axes, PNG or SVG."""
import pytest

from vpmu.cli import main
from vpmu.trace import read
from vpmu.tracecmd import counter_series


@pytest.fixture(scope="module")
def traces(tmp_path_factory, vpmu_guest_dir):
    d = tmp_path_factory.mktemp("plot")
    out = {}
    for name, args in {"demo": ["--trace-sample", "5000", str(vpmu_guest_dir / "demo.elf")],
                       "wrap32": ["--trace-sample", "20", "--pmu-version", "3.0",
                                  str(vpmu_guest_dir / "pmu_overflow_irq.elf")],
                       "wide64": ["--trace-sample", "20", "--pmu-version", "3.7",
                                  str(vpmu_guest_dir / "pmu_overflow_irq.elf")]}.items():
        out[name] = d / f"{name}.jsonl"
        assert main(["run", "--trace", str(out[name]), *args]) == 0
    return out


def test_lines_are_labelled_by_event(traces):
    series = counter_series(list(read(str(traces["demo"]))))
    assert [s.label for s in series] == [
        "INST_RETIRED (PMEV0)", "BR_RETIRED (PMEV1)", "BR_MIS_PRED (PMEV2)", "LD_RETIRED (PMEV3)",
        "ST_RETIRED (PMEV4)", "MEM_ACCESS (PMEV5)", "CPU_CYCLES (PMCCNTR)"]
    # the demo's INST_RETIRED and PMCCNTR agree point for point: one line would hide the other
    inst, cycles = series[0], series[-1]
    assert inst.points == cycles.points and inst.points[-1][1] == 133959


def test_svg_panels_show_every_counter_by_its_event(traces, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    svg = tmp_path / "demo.svg"
    assert main(["trace", "plot", str(traces["demo"]), "-o", str(svg)]) == 0
    assert "(svg, 1000x600)" in capsys.readouterr().out
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text
    for label in ("INST_RETIRED (PMEV0)", "CPU_CYCLES (PMCCNTR)", "BR_MIS_PRED (PMEV2)"):
        assert text.count(label) == 1                  # a panel title each (text, not glyphs)
    assert "PMEVCNTR0" not in text
    again = tmp_path / "again.svg"
    assert main(["trace", "plot", str(traces["demo"]), "-o", str(again)]) == 0
    assert again.read_text() == text                   # the same trace gives the same file


@pytest.mark.parametrize("args", [["--layout", "overlay", "--yscale", "log"], ["--yscale", "symlog"],
                                  ["--layout", "overlay", "--raw"]])
def test_layouts_and_scales(traces, tmp_path, args):
    pytest.importorskip("matplotlib")
    svg = tmp_path / "p.svg"
    assert main(["trace", "plot", str(traces["wrap32"]), "-o", str(svg), *args]) == 0
    assert "INST_RETIRED (PMEV0)" in svg.read_text()


def test_format_from_the_option_or_the_extension(traces, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plot.img"
    assert main(["trace", "plot", str(traces["demo"]), "-o", str(out), "--format", "svg"]) == 0
    assert out.read_bytes().startswith(b"<?xml")
    assert main(["trace", "plot", str(traces["demo"]), "-o", str(out), "--format", "png"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["trace", "plot", str(traces["demo"]), "-o", str(tmp_path / "plot.pdf")]) == 2
    assert "cannot tell the image format" in capsys.readouterr().err
    assert main(["trace", "plot", str(traces["demo"]), "-o", str(tmp_path / "p.png"), "--width", "20"]) == 2


def test_a_32_bit_wrap_is_unwrapped(traces):
    """PMUv3.0 counters are 32 bits: the guest's counter wraps to 0 at its overflow; unwrapped it
    goes on above 2**32, raw it falls back.  A 64-bit counter (3.7) overflowing at bit 31
    reads 2**32 and has not wrapped."""
    recs = list(read(str(traces["wrap32"])))
    ovf = next(r for r in recs if r["type"] == "overflow")
    assert ovf["value"] == 0
    inst = counter_series(recs)[0]
    assert inst.label == "INST_RETIRED (PMEV0)" and inst.wraps == 1
    assert inst.overflows == [(ovf["icount"], 2**32)]
    after = [v for i, v in inst.points if i >= ovf["icount"]]
    assert after == sorted(after) and after[0] == 2**32 and after[-1] == 2**32 + recs[-1]["pmu"]["evcntr"][0]
    raw = counter_series(recs, unwrap=False)[0]
    assert raw.wraps == 0 and [v for i, v in raw.points if i >= ovf["icount"]][-1] == recs[-1]["pmu"]["evcntr"][0]
    wide = counter_series(list(read(str(traces["wide64"]))))[0]
    assert wide.wraps == 0 and wide.overflows[0][1] == 2**32
    assert wide.points == counter_series(list(read(str(traces["wide64"]))), unwrap=False)[0].points
    assert [v for _, v in wide.points][-1] == [v for _, v in inst.points][-1]   # same count, either way


def test_traced_register_accesses_give_events_writes_and_resets():
    """From ``--trace-pmu-regs`` records: PMSELR/PMXEVTYPER and PMEVTYPER<n> writes name the
    events (a reprogrammed counter lists them in order), a counter write starts the
    unwrapped line again from the written value, PMCR_EL0.P resets the event counters."""
    recs = [
        {"type": "run", "icount": 0, "counters": 2, "pmu_irq": 23, "image": "t"},
        {"type": "pmu_reg", "icount": 1, "reg": "PMEVTYPER0_EL0", "dir": "w", "value": 0x8},
        {"type": "pmu_reg", "icount": 2, "reg": "PMSELR_EL0", "dir": "w", "value": 1},
        {"type": "pmu_reg", "icount": 3, "reg": "PMXEVTYPER_EL0", "dir": "w", "value": 0x10},
        {"type": "pmu_reg", "icount": 4, "reg": "PMXEVCNTR_EL0", "dir": "w", "value": 7},
        {"type": "pmu_reg", "icount": 5, "reg": "PMEVCNTR0_EL0", "dir": "w", "value": 0xFFFF_FFF0},
        {"type": "overflow", "icount": 21, "counter": 0, "value": 0},
        {"type": "pmu_reg", "icount": 30, "reg": "PMEVCNTR0_EL0", "dir": "r", "value": 9},
        {"type": "pmu_reg", "icount": 31, "reg": "PMCR_EL0", "dir": "w", "value": 0b011},      # E | P
        {"type": "pmu_reg", "icount": 32, "reg": "PMEVTYPER0_EL0", "dir": "w", "value": 0x21},
        {"type": "pmu_reg", "icount": 40, "reg": "PMEVCNTR0_EL0", "dir": "r", "value": 8},
    ]
    pev0, pev1 = counter_series(recs)
    assert pev0.label == "INST_RETIRED then BR_RETIRED (PMEV0)" and pev1.label == "BR_MIS_PRED (PMEV1)"
    assert pev0.points == [(5, 0xFFFF_FFF0), (21, 2**32), (30, 2**32 + 9), (31, 0), (40, 8)]
    assert pev1.points == [(4, 7), (31, 0)]
