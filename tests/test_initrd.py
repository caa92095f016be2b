"""``--initrd`` and the device-tree edits QEMU makes at load time (docs/research/qemu-boot.md).

The initrd goes where QEMU's hw/arm/boot.c puts it (RAM + min(RAM/2, 128 MiB), or after the
kernel), byte for byte, with ``/chosen/linux,initrd-start``/``-end`` in the tree and the tree
2 MiB-aligned after it; ``guests/src/boot_initrd.c`` (a Linux Image) reads the properties
and hashes the bytes.  A tree the user passes with ``--dtb`` gets QEMU's edits (/memory,
/chosen, /psci); ``vpmu.board.fdtedit`` parses such a blob strictly.
"""
from __future__ import annotations

import random
import shutil
import struct
import subprocess
import sys

import pytest

from vpmu.board import fdtedit
from vpmu.board.loader import Image, open_image
from vpmu.dtb import BoardSpec, build_dtb
from vpmu.errors import ImageError, UsageError
from vpmu.options import RunOptions

RAM = 0x4000_0000
MIB = 1 << 20
QEMU = shutil.which("qemu-system-aarch64")
DTC = shutil.which("dtc")


def fnv(data: bytes) -> int:
    h = 0xCBF2_9CE4_8422_2325
    for b in data:
        h = ((h ^ b) * 0x100_0000_01B3) & ((1 << 64) - 1)
    return h


def payload(tmp_path, size: int, name: str = "rd.bin", seed: int = 1):
    data = random.Random(seed).randbytes(size)
    p = tmp_path / name
    p.write_bytes(data)
    return p, data


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vpmu", "run", *args], capture_output=True, timeout=120)


# --- placement, through the guest ---------------------------------------------------------------

@pytest.mark.parametrize("memory, start", [("128M", RAM + 64 * MIB), ("256M", RAM + 128 * MIB),
                                           ("1G", RAM + 128 * MIB)])
def test_initrd_where_qemu_puts_it(vpmu_run, vpmu_guest_dir, tmp_path, memory, start):
    rd, data = payload(tmp_path, 100_000)
    r = vpmu_run(str(vpmu_guest_dir / "boot_initrd.img"), initrd=str(rd), memory=memory)
    kv = r.kv()
    end = start + len(data)
    assert kv["initrd_start"] == hex(start) and kv["initrd_end"] == hex(end)
    assert kv["cells"] == "2"                                  # #address-cells wide (QEMU >= 8.0)
    assert kv["fnv"] == hex(fnv(data))                         # every byte, in place
    assert kv["dtb"] == hex((end + 2 * MIB - 1) & ~(2 * MIB - 1))
    assert r.exit_status == 0


def test_the_tree_follows_a_large_initrd(vpmu_run, vpmu_guest_dir, tmp_path):
    rd, data = payload(tmp_path, 5 * MIB + 3)
    kv = vpmu_run(str(vpmu_guest_dir / "boot_initrd.img"), initrd=str(rd)).kv()
    assert kv["initrd_start"] == hex(RAM + 64 * MIB)
    assert kv["dtb"] == hex(RAM + 70 * MIB)                  # align_up(64 MiB + 5 MiB + 3, 2 MiB)
    assert kv["fnv"] == hex(fnv(data))


def test_without_initrd_the_tree_has_no_initrd_properties(vpmu_run, vpmu_guest_dir):
    kv = vpmu_run(str(vpmu_guest_dir / "boot_initrd.img")).kv()
    assert kv == {"dtb": hex(RAM + 64 * MIB), "initrd": "none"}


class _Ram:
    """What Image.load_initrd needs of a machine."""
    def __init__(self, size: int):
        self.ram_base, self.ram_size = RAM, size
        self.writes: list[tuple[int, int]] = []
        self.uc = self

    def mem_write(self, addr: int, data: bytes) -> None:
        self.writes.append((addr, len(data)))


def test_initrd_goes_after_a_kernel_that_reaches_past_half_of_ram(tmp_path):
    """image_high_addr: a flat kernel ending beyond RAM/2 pushes the initrd up (page aligned)."""
    kernel = tmp_path / "k.bin"
    kernel.write_bytes(bytes(70 * MIB + 5))                 # loaded at RAM + 0x80000
    rd, data = payload(tmp_path, 4096)
    img = open_image(str(kernel))
    m = _Ram(128 * MIB)
    assert img.load_initrd(m, str(rd)) == (RAM + 0x80000 + 70 * MIB + 4096,
                                           RAM + 0x80000 + 70 * MIB + 8192)
    assert img.initrd_start(RAM, 512 * MIB) == RAM + 128 * MIB


def test_initrd_too_big_for_ram(tmp_path, vpmu_guest_dir):
    rd, _ = payload(tmp_path, 65 * MIB)
    p = cli("--initrd", str(rd), str(vpmu_guest_dir / "boot_initrd.img"))
    err = p.stderr.decode()
    assert p.returncode == 101 and err.count("\n") == 1 and "does not fit into RAM after the kernel" in err


def test_kernel_filling_ram_leaves_no_room(tmp_path):
    kernel = tmp_path / "k.bin"
    kernel.write_bytes(bytes(4 * MIB))
    rd, _ = payload(tmp_path, 16)
    img = open_image(str(kernel))
    img.kernel_size = 8 * MIB                                   # as an Image header could claim
    with pytest.raises(ImageError, match="not enough RAM after the kernel"):
        img.load_initrd(_Ram(8 * MIB), str(rd))


@pytest.mark.parametrize("content, message", [(None, "cannot read the initrd"), (b"", "empty file"),
                                              (b"\x27\x05\x19\x56" + bytes(60), "U-Boot legacy image")])
def test_bad_initrd_files_are_one_line_101(tmp_path, vpmu_guest_dir, content, message):
    rd = tmp_path / "rd"
    if content is not None:
        rd.write_bytes(content)
    p = cli("--initrd", str(rd), str(vpmu_guest_dir / "boot_initrd.img"))
    err = p.stderr.decode()
    assert p.returncode == 101 and err.count("\n") == 1 and message in err and "Traceback" not in err


def test_initrd_with_an_elf_is_refused(tmp_path, vpmu_guest_dir):
    """QEMU loads no initrd for an ELF kernel (is_linux = 0) and says nothing; vpmu says so."""
    rd, _ = payload(tmp_path, 16)
    p = cli("--initrd", str(rd), str(vpmu_guest_dir / "hello.elf"))
    err = p.stderr.decode()
    assert p.returncode == 2 and err.count("\n") == 1 and "QEMU loads no initrd with an ELF kernel" in err


def test_initrd_is_a_run_option(tmp_path):
    assert RunOptions(initrd=tmp_path / "x").to_machine_config().initrd_path == str(tmp_path / "x")
    assert RunOptions().to_machine_config().initrd_path is None
    help_text = subprocess.run([sys.executable, "-m", "vpmu", "run", "--help"], capture_output=True,
                               text=True).stdout
    assert "--initrd FILE" in help_text


def test_elf_image_object_refuses_an_initrd(vpmu_guest_dir, tmp_path):
    rd, _ = payload(tmp_path, 16)
    img: Image = open_image(str(vpmu_guest_dir / "hello.elf"))
    with pytest.raises(UsageError):
        img.load_initrd(_Ram(128 * MIB), str(rd))


# --- the generated tree ---------------------------------------------------------------------------

def test_generated_chosen_in_qemus_order():
    blob = build_dtb(BoardSpec(bootargs="console=ttyAMA0", initrd=(RAM + 64 * MIB, RAM + 65 * MIB)))
    chosen = fdtedit.parse(blob).root.child("chosen")
    assert chosen is not None
    assert [k for k, _ in chosen.props] == ["linux,initrd-end", "linux,initrd-start", "bootargs", "stdout-path",
                                            "rng-seed", "kaslr-seed"]
    assert chosen.get("linux,initrd-start") == struct.pack(">Q", RAM + 64 * MIB)
    assert chosen.get("linux,initrd-end") == struct.pack(">Q", RAM + 65 * MIB)


def test_initrd_outside_ram_is_refused():
    with pytest.raises(ValueError, match="not inside RAM"):
        BoardSpec(initrd=(RAM - 16, RAM + 16))


# --- a tree the user passes: QEMU's edits ---------------------------------------------------------

USER_DTS = """/dts-v1/;
/memreserve/ 0x48000000 0x1000;
/ {
    #address-cells = <2>;
    #size-cells = <2>;
    compatible = "linux,dummy-virt";
    interrupt-parent = <0x8002>;
    memory@40000000 { device_type = "memory"; reg = <0x0 0x40000000 0x0 0x1000000>; };
    memory@80000000 { device_type = "memory"; reg = <0x0 0x80000000 0x0 0x1000000>; };
    psci { compatible = "arm,psci"; method = "smc"; };
    pl011@9000000 { compatible = "arm,pl011", "arm,primecell"; reg = <0x0 0x9000000 0x0 0x1000>; };
    intc@8000000 { compatible = "arm,gic-v3"; reg = <0x0 0x8000000 0x0 0x10000 0x0 0x80a0000 0x0 0xf60000>;
                   phandle = <0x8002>; };
};
"""


@pytest.fixture
def user_dtb(tmp_path):
    if DTC is None:
        pytest.skip("needs dtc")
    src = tmp_path / "user.dts"
    src.write_text(USER_DTS)
    out = tmp_path / "user.dtb"
    subprocess.run([DTC, "-q", "-I", "dts", "-O", "dtb", "-o", str(out), str(src)], check=True)
    return out


def _edited(user_dtb, **kw) -> fdtedit.Tree:
    psci = fdtedit.parse(build_dtb(BoardSpec())).root.child("psci")
    blob = user_dtb.read_bytes()
    args = dict(ram_base=RAM, ram_size=256 * MIB, bootargs="console=ttyAMA0", initrd=(RAM + 128 * MIB,
                RAM + 129 * MIB), psci=psci)
    args.update(kw)
    out = fdtedit.qemu_edits(blob, **args)
    assert len(out) == 2 * (len(blob) + 10000)                  # QEMU's buffer, all of it in memory
    return fdtedit.parse(out)


def test_user_tree_gets_qemus_edits(user_dtb):
    t = _edited(user_dtb)
    names = [c.name for c in t.root.children]
    assert names == ["psci", "chosen", "memory@40000000", "pl011@9000000", "intc@8000000"]
    mem = t.root.child("memory@40000000")
    assert mem.get("reg") == struct.pack(">QQ", RAM, 256 * MIB) and mem.get("device_type") == b"memory\0"
    chosen = t.root.child("chosen")
    assert chosen.get("bootargs") == b"console=ttyAMA0\0"
    assert chosen.get("linux,initrd-start") == struct.pack(">Q", RAM + 128 * MIB)
    assert t.root.child("psci").get("method") == b"hvc\0"
    assert t.reserved == [(0x4800_0000, 0x1000)]               # kept
    assert t.root.child("intc@8000000").get("phandle") == struct.pack(">I", 0x8002)


def test_user_tree_without_cells_or_with_narrow_cells(user_dtb, tmp_path):
    narrow = USER_DTS.replace("#address-cells = <2>", "#address-cells = <1>")
    (tmp_path / "n.dts").write_text(narrow)
    subprocess.run([DTC, "-q", "-I", "dts", "-O", "dtb", "-o", str(tmp_path / "n.dtb"), str(tmp_path / "n.dts")],
                   check=True)
    t = _edited(tmp_path / "n.dtb")
    assert t.root.child("chosen").get("linux,initrd-end") == struct.pack(">I", RAM + 129 * MIB)
    with pytest.raises(fdtedit.FdtError, match="does not fit"):
        _edited(tmp_path / "n.dtb", initrd=(1 << 33, (1 << 33) + 1))
    with pytest.raises(fdtedit.FdtError, match="4 GiB"):
        (tmp_path / "s.dts").write_text(USER_DTS.replace("#size-cells = <2>", "#size-cells = <1>"))
        subprocess.run([DTC, "-q", "-I", "dts", "-O", "dtb", "-o", str(tmp_path / "s.dtb"),
                        str(tmp_path / "s.dts")], check=True)
        _edited(tmp_path / "s.dtb", ram_size=4 << 30)


def test_user_tree_through_a_run(vpmu_run, vpmu_guest_dir, user_dtb, tmp_path):
    rd, data = payload(tmp_path, 3000)
    kv = vpmu_run(str(vpmu_guest_dir / "boot_initrd.img"), dtb=str(user_dtb), initrd=str(rd)).kv()
    assert kv["initrd_start"] == hex(RAM + 64 * MIB) and kv["fnv"] == hex(fnv(data))


@pytest.mark.qemu
@pytest.mark.skipif(QEMU is None, reason="needs qemu-system-aarch64")
def test_user_tree_edits_match_qemus(user_dtb, tmp_path):
    """QEMU's own dump of the edited -dtb tree (dumpdtb is written after arm_load_dtb's edits)
    has the same nodes and properties; QEMU 7.2 writes the initrd properties one cell wide
    (QEMU 8.0 made them #address-cells wide, which vpmu follows)."""
    rd, _ = payload(tmp_path, 3000)
    kernel = tmp_path / "k.bin"
    kernel.write_bytes(b"\x00\x00\x00\x14")
    dump = tmp_path / "dump.dtb"
    subprocess.run([QEMU, "-M", f"virt,gic-version=3,dumpdtb={dump}", "-cpu", "cortex-a57", "-m", "256M",
                    "-nodefaults", "-display", "none", "-kernel", str(kernel), "-dtb", str(user_dtb),
                    "-initrd", str(rd), "-append", "console=ttyAMA0"], check=True, capture_output=True,
                   timeout=60)
    theirs = fdtedit.parse(dump.read_bytes())
    ours = _edited(user_dtb, initrd=(RAM + 128 * MIB, RAM + 128 * MIB + 3000))

    def flat(t: fdtedit.Tree) -> dict:
        out = {}

        def walk(n: fdtedit.Node, path: str) -> None:
            for k, v in n.props:
                out[(path, k)] = v
            for c in n.children:
                walk(c, f"{path}/{c.name}".replace("//", "/"))
        walk(t.root, "/")
        return out

    a, b = flat(ours), flat(theirs)
    for key in (("/chosen", "linux,initrd-start"), ("/chosen", "linux,initrd-end")):
        assert int.from_bytes(a.pop(key), "big") == int.from_bytes(b.pop(key), "big")
    assert a == b
    assert ours.reserved == theirs.reserved


@pytest.mark.qemu
@pytest.mark.skipif(QEMU is None, reason="needs qemu-system-aarch64")
@pytest.mark.parametrize("memory", ["128M", "1G"])
def test_same_output_as_qemu(vpmu_run, vpmu_guest_dir, tmp_path, memory):
    rd, _ = payload(tmp_path, 12345)
    img = str(vpmu_guest_dir / "boot_initrd.img")
    ours = vpmu_run(img, initrd=str(rd), memory=memory).kv()
    q = subprocess.run([QEMU, "-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-icount", "shift=0",
                        "-semihosting", "-nographic", "-nic", "none", "-m", memory, "-kernel", img,
                        "-initrd", str(rd)], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    theirs = dict(line.split("=", 1) for line in q.stdout.decode().split() if "=" in line)
    assert ours.pop("cells") == "2" and theirs.pop("cells") in ("1", "2")   # 7.2: 1, >= 8.0: 2
    assert ours == theirs


# --- strict parsing of user blobs -----------------------------------------------------------------

def test_parse_rejects_bad_blobs_with_one_reason():
    good = build_dtb(BoardSpec())
    cases = {
        b"": "too short", b"\xd0\x0d\xfe\xed" + bytes(40): "version",
        good[:4] + struct.pack(">I", len(good) + 1) + good[8:]: "exceeds the file",
        good[:20] + struct.pack(">I", 3) + good[24:]: "version 3",
        good[:8] + struct.pack(">I", 0xFFFF_FF00) + good[12:]: "outside the blob",
    }
    for blob, message in cases.items():
        with pytest.raises(fdtedit.FdtError, match=message):
            fdtedit.parse(blob)


def test_parse_survives_random_corruption():
    """Mutated blobs parse or raise FdtError: never another exception (the user's file)."""
    good = build_dtb(BoardSpec(bootargs="a b c", initrd=(RAM, RAM + 8)))
    rng = random.Random(12)
    for _ in range(3000):
        b = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256)
        if rng.random() < 0.2:
            del b[rng.randrange(len(b)):]
        try:
            fdtedit.serialize(fdtedit.parse(bytes(b)))
        except fdtedit.FdtError:
            pass


def test_round_trip_keeps_the_tree():
    good = build_dtb(BoardSpec(bootargs="x", xen=True))
    again = fdtedit.serialize(fdtedit.parse(good))
    assert fdtedit.parse(again) == fdtedit.parse(good)
    assert again[:8] == good[:4] + struct.pack(">I", len(again)) and len(again) - len(good) < 16


def test_corrupt_user_dtb_is_one_line_101(tmp_path, vpmu_guest_dir):
    good = build_dtb(BoardSpec())
    bad = tmp_path / "bad.dtb"
    off = struct.unpack_from(">I", good, 8)[0]                      # the first structure tag
    bad.write_bytes(good[:off] + b"\x00\x00\x00\x07" + good[off + 4:])
    p = cli("--dtb", str(bad), str(vpmu_guest_dir / "boot_initrd.img"))
    err = p.stderr.decode()
    assert p.returncode == 101 and err.count("\n") == 1 and "unknown structure tag" in err
