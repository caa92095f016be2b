"""Bad input through the real command line (``python -m vpmu run ...`` in a subprocess):
every case prints exactly one line on stderr naming the reason (and the PC for guest
problems), never a traceback, and exits with its documented status (vpmu.errors):
2 bad command line, 101 image, 102 fault loop, 103 instruction limit, 104 WFI deadlock.

Bad ELFs are made in tmp_path by small byte edits of a built guest (hello.elf).
"""
from __future__ import annotations

import os
import re
import struct
import subprocess
import sys

import pytest

from vpmu import errors

PT_LOAD = 1
RAM = 0x4000_0000
RAM_SIZE = 128 << 20


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vpmu", "run", *args], capture_output=True, timeout=timeout)


def assert_one_line_error(p: subprocess.CompletedProcess, status: int, pattern: str) -> str:
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == status, f"status {p.returncode}, expected {status}; stderr: {err!r}"
    assert "Traceback" not in err and "internal error" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not exactly one line: {err!r}"
    assert err.startswith("vpmu"), err
    assert re.search(pattern, err), f"{pattern!r} not in {err!r}"
    return err.strip()


@pytest.fixture(scope="module")
def hello(vpmu_guest_dir) -> bytes:
    return (vpmu_guest_dir / "hello.elf").read_bytes()


def phdrs(elf: bytes) -> list[tuple[int, int]]:
    """(file offset of the program header, p_type) for each program header."""
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return [(phoff + i * phentsize, struct.unpack_from("<I", elf, phoff + i * phentsize)[0]) for i in range(phnum)]


def first_load(elf: bytes) -> int:
    return next(off for off, t in phdrs(elf) if t == PT_LOAD)


def edited(elf: bytes, edits: dict[int, bytes]) -> bytes:
    b = bytearray(elf)
    for off, data in edits.items():
        b[off:off + len(data)] = data
    return bytes(b)


def write(tmp_path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


# ------------------------------------------------------------------------------ the guest image


def test_missing_file(tmp_path):
    assert_one_line_error(run_cli(str(tmp_path / "nope.elf")), 101,
                          r"nope\.elf: cannot read the guest image \(No such file")


def test_directory(tmp_path):
    assert_one_line_error(run_cli(str(tmp_path)), 101, r"the guest image is a directory, not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file anyway")
def test_unreadable_file(tmp_path, hello):
    path = write(tmp_path, "locked.elf", hello)
    os.chmod(path, 0)
    assert_one_line_error(run_cli(path), 101, r"cannot read the guest image \(Permission denied\)")


def test_empty_file(tmp_path):
    assert_one_line_error(run_cli(write(tmp_path, "empty.elf", b"")), 101, r"empty file")


def test_elf_magic_with_garbage(tmp_path):
    data = b"\x7fELF" + bytes(range(256)) * 4
    assert_one_line_error(run_cli(write(tmp_path, "garbage.elf", data)), 101, r"garbage\.elf: ")


def test_elf_header_truncated(tmp_path, hello):
    assert_one_line_error(run_cli(write(tmp_path, "short.elf", hello[:40])), 101, r"short\.elf: malformed ELF")


def test_not_an_elf_is_a_flat_binary(tmp_path):
    """Like QEMU's -kernel, a file that is neither an ELF nor a Linux Image is a raw binary
    at RAM + 0x80000: text runs as (mostly undefined) instructions and, with no vector
    table (VBAR_EL1 = 0), stops as a fault loop naming the vector."""
    p = run_cli(write(tmp_path, "notes.txt", b"hello world, this is not an ELF\n" * 4))
    assert_one_line_error(p, 102, r"recursive \w+ exception at the vector 0x200: .*VBAR_EL1 = 0x0")


def test_wrong_machine(tmp_path, hello):
    data = edited(hello, {0x12: struct.pack("<H", 62)})              # EM_X86_64
    assert_one_line_error(run_cli(write(tmp_path, "x86.elf", data)), 101, r"x86\.elf: not an AArch64 ELF")


def test_32_bit_class(tmp_path, hello):
    data = edited(hello, {4: b"\x01"})                                 # ELFCLASS32
    assert_one_line_error(run_cli(write(tmp_path, "class32.elf", data)), 101, r"class32\.elf: ")


def test_big_endian(tmp_path, hello):
    data = edited(hello, {5: b"\x02"})                                 # ELFDATA2MSB
    assert_one_line_error(run_cli(write(tmp_path, "be.elf", data)), 101, r"be\.elf: ")


def test_truncated_segment(tmp_path, hello):
    off = first_load(hello)
    p_offset, = struct.unpack_from("<Q", hello, off + 8)
    p_filesz, = struct.unpack_from("<Q", hello, off + 32)
    cut = hello[:p_offset + p_filesz // 2]
    assert_one_line_error(run_cli(write(tmp_path, "cut.elf", cut)), 101, r"cut\.elf: truncated segment")


def test_no_loadable_segment(tmp_path, hello):
    data = edited(hello, {off: struct.pack("<I", 0) for off, t in phdrs(hello) if t == PT_LOAD})
    assert_one_line_error(run_cli(write(tmp_path, "noload.elf", data)), 101, r"no loadable segments")


@pytest.mark.parametrize("paddr", [0x0900_0000, RAM + RAM_SIZE, RAM + RAM_SIZE - 0x100, RAM - 0x1000])
def test_segment_outside_ram(tmp_path, hello, paddr):
    off = first_load(hello)
    data = edited(hello, {off + 16: struct.pack("<QQ", paddr, paddr)})   # p_vaddr, p_paddr
    assert_one_line_error(run_cli(write(tmp_path, "far.elf", data)), 101,
                          rf"far\.elf: segment \[{paddr:#x}, 0x[0-9a-f]+\) is outside RAM \[0x40000000, 0x48000000\)")


def test_segment_outside_smaller_ram(vpmu_guest_dir):
    p = run_cli("--memory", "1M", str(vpmu_guest_dir / "hello.elf"))
    assert_one_line_error(p, 101, r"segment \[0x40200000, 0x[0-9a-f]+\) is outside RAM \[0x40000000, 0x40100000\)")


@pytest.mark.parametrize("entry", [0x0, RAM + RAM_SIZE, 0xFFFF_FFFF_FFFF_F000])
def test_entry_outside_ram(tmp_path, hello, entry):
    data = edited(hello, {0x18: struct.pack("<Q", entry)})
    assert_one_line_error(run_cli(write(tmp_path, "entry.elf", data)), 101,
                          rf"entry\.elf: entry point {entry:#x} is outside RAM")


def test_entry_inside_ram_runs(tmp_path, hello):
    """Control: the edits above are the only problem; the untouched guest runs."""
    p = run_cli(write(tmp_path, "ok.elf", hello))
    assert p.returncode == 0 and p.stderr == b"" and p.stdout.startswith(b"hello from a vpmu guest\n")


@pytest.mark.parametrize("field", ["e_phoff", "p_offset", "p_filesz"])
def test_elf_offsets_too_large_for_python(tmp_path, hello, field):
    """Offsets and sizes that do not fit a C ssize_t (found by test_fuzz.py; they were
    internal errors, 106: OverflowError from pyelftools)."""
    at = {"e_phoff": 0x20, "p_offset": first_load(hello) + 8, "p_filesz": first_load(hello) + 32}[field]
    data = edited(hello, {at: struct.pack("<Q", 1 << 63)})
    assert_one_line_error(run_cli(write(tmp_path, f"{field}.elf", data)), 101, rf"{field}\.elf: ")


def test_api_reports_a_bad_image_as_a_result(tmp_path, vpmu_run):
    """The Python API returns a bad image as a RunResult with the runner's status, like the
    other runner errors (it used to raise ImageError; the plugin documents expect_error for
    bad images)."""
    r = vpmu_run(str(tmp_path / "missing.elf"), expect_error=True)
    assert r.exit_status == 101 and "cannot read" in r.error


def test_bad_dtb_file(tmp_path, vpmu_guest_dir):
    assert_one_line_error(run_cli("--dtb", str(tmp_path / "none.dtb"), str(vpmu_guest_dir / "hello.elf")), 101,
                          r"none\.dtb: cannot read")
    junk = write(tmp_path, "junk.dtb", b"not a device tree")
    assert_one_line_error(run_cli("--dtb", junk, str(vpmu_guest_dir / "hello.elf")), 101,
                          r"junk\.dtb: not a device tree blob")


# ------------------------------------------------------------------------------ the guest misbehaves


def test_fault_loop(vpmu_guest_dir):
    p = run_cli(str(vpmu_guest_dir / "board_fault_loop.elf"))
    assert p.stdout == b"board_fault_loop: breaking the vector table\n"
    assert_one_line_error(p, 102, r"recursive prefetch_abort exception at the vector 0xf000200: no usable vector "
                                  r"table \(VBAR_EL1 = 0xf000000\)")


def test_fault_loop_undefined_vector(vpmu_guest_dir):
    p = run_cli("--append", "vbar=udf", str(vpmu_guest_dir / "board_fault_loop.elf"))
    assert_one_line_error(p, 102, r"recursive undef exception at the vector 0x4020[0-9a-f]{4}")


def test_instruction_limit(vpmu_guest_dir):
    p = run_cli("--max-insns", "50000", str(vpmu_guest_dir / "board_spin.elf"))
    assert p.stdout == b"board_spin: start\n"
    assert_one_line_error(p, 103, r"instruction limit reached \(50000 instructions\) at PC 0x4020[0-9a-f]{4}$")


def test_instruction_limit_hex_value(vpmu_guest_dir):
    p = run_cli("--max-insns", "0x1000", str(vpmu_guest_dir / "board_spin.elf"))
    assert_one_line_error(p, 103, r"\(4096 instructions\) at PC 0x")


def test_wfi_deadlock(vpmu_guest_dir):
    p = run_cli(str(vpmu_guest_dir / "board_wfi_deadlock.elf"))
    assert p.stdout == b"board_wfi_deadlock: wfi\n"
    assert_one_line_error(p, 104, r"WFI at PC 0x4020[0-9a-f]{4} with no interrupt that could ever arrive")


def test_wfi_deadlock_with_a_disabled_timer(vpmu_guest_dir):
    p = run_cli("--append", "timer=disabled", str(vpmu_guest_dir / "board_wfi_deadlock.elf"))
    assert_one_line_error(p, 104, r"WFI at PC 0x4020[0-9a-f]{4}")


def test_error_is_in_the_trace(tmp_path, vpmu_guest_dir):
    trace = tmp_path / "t.jsonl"
    p = run_cli("--trace", str(trace), "--max-insns", "5000", str(vpmu_guest_dir / "board_spin.elf"))
    msg = assert_one_line_error(p, 103, r"instruction limit")
    import json
    last = json.loads(trace.read_text().splitlines()[-1])
    assert last["type"] == "error" and last["icount"] == 5000 and msg.endswith(last["reason"])


# ------------------------------------------------------------------------------ the command line


@pytest.mark.parametrize("args, pattern", [
    (["--bogus"], r"unrecognized arguments: --bogus"),
    (["--max-insns", "abc"], r"argument --max-insns: not a number: 'abc'"),
    (["--max-insns"], r"argument --max-insns: expected one argument"),
    (["--pmu-version", "9"], r"argument --pmu-version: invalid choice: '9'"),
    (["--memory", "12Q"], r"argument --memory: not a size"),
    (["--counters", "x"], r"argument --counters: not a number"),
    (["--counters", "99"], r"--counters must be in 0\.\.31 \(got 99\)"),
    (["--counters", "-1"], r"--counters must be in 0\.\.31"),
    (["--filter", "bogus"], r"--filter: bad filter 'bogus'"),
    (["--filter", "allow:0x10-0x5"], r"FIRST 0x10 is greater than LAST 0x5"),
    (["--cycles", "foo=1"], r"--cycles: unknown item 'foo=1'"),
    (["--cache", "line=3"], r"--cache: line must be a power of two"),
    (["--xen-vpmu", "zz"], r"argument --xen-vpmu: invalid choice"),
    (["--xen-domid", "abc"], r"argument --xen-domid: not a number"),
])
def test_bad_option(vpmu_guest_dir, args, pattern):
    p = run_cli(str(vpmu_guest_dir / "hello.elf"), *args)
    assert p.stdout == b""
    assert_one_line_error(p, errors.EXIT_USAGE, pattern)


def test_missing_guest_argument():
    assert_one_line_error(run_cli(), 2, r"the following arguments are required: GUEST")


def test_unknown_command():
    p = subprocess.run([sys.executable, "-m", "vpmu", "frobnicate"], capture_output=True, timeout=60)
    assert_one_line_error(p, 2, r"invalid choice: 'frobnicate'")


@pytest.mark.parametrize("where", ["missing-dir/t.jsonl", "."])
def test_trace_path_not_writable(tmp_path, vpmu_guest_dir, where):
    """(Was an internal error, 106: the OSError of open() was not caught.)"""
    p = run_cli("--trace", str(tmp_path / where), str(vpmu_guest_dir / "hello.elf"))
    assert_one_line_error(p, errors.EXIT_USAGE, r"--trace .*: cannot write")


@pytest.mark.parametrize("size", ["0", "100G", "512K", "8G"])
def test_memory_size_unusable(vpmu_guest_dir, size):
    """(0 and 100G were internal errors, 106, from Unicorn's mem_map.)"""
    p = run_cli("--memory", size, str(vpmu_guest_dir / "hello.elf"))
    assert_one_line_error(p, errors.EXIT_USAGE, r"--memory")


def test_memory_size_not_page_aligned(vpmu_guest_dir):
    """A RAM size that is not a multiple of 4 KiB is a bad option value (checked before the
    VM is built, so KVM_SET_USER_MEMORY_REGION never sees it)."""
    p = run_cli("--memory", "4097", str(vpmu_guest_dir / "hello.elf"))
    assert_one_line_error(p, errors.EXIT_USAGE, r"--memory must be a multiple of 4 KiB")


@pytest.mark.parametrize("n", ["-1", "0"])
def test_instruction_limit_below_one(vpmu_guest_dir, n):
    """(-1 was an internal error, 106: OverflowError for a uint64.)"""
    p = run_cli("--max-insns", n, str(vpmu_guest_dir / "hello.elf"))
    assert_one_line_error(p, errors.EXIT_USAGE, rf"--max-insns must be at least 1 \(got {n}\)")


def test_statuses_are_documented_in_help():
    p = subprocess.run([sys.executable, "-m", "vpmu", "run", "--help"], capture_output=True, timeout=60, text=True)
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    for status in (101, 102, 103, 104):
        assert f"{status} (" in text, status
    assert errors.EXIT_STATUSES[errors.EXIT_INTERNAL]
    assert len({errors.EXIT_USAGE, errors.EXIT_BAD_IMAGE, errors.EXIT_FAULT_LOOP, errors.EXIT_INSN_LIMIT,
                errors.EXIT_DEADLOCK, errors.EXIT_KVM, errors.EXIT_INTERNAL}) == 7
