"""The guest SDK (vpmu.guestsdk) through ``vpmu guest new|build``, and guest lookup by path or
by a configured directory (``vpmu sweep --guest-dir``, ``VPMU_GUESTS``, the pytest plugin's
``--vpmu-guests`` / ini ``vpmu_guests``).

Builds happen in tmp_path with the real toolchain (the pinned ziglang); every built guest is
run and its output checked.  The installed-package round trip (a wheel in a fresh venv,
outside the checkout) is tests/test_wheel.py.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vpmu
from vpmu.cachedir import cache_base
from vpmu.cli import main
from vpmu.guestsdk import builder, locate

# pytester points HOME at a temporary directory: its pytest subprocesses are given vpmu's real
# cache directory (read here, at collection) so that they load the compiled kernels.
CACHE = cache_base()

STARTER_KV = {"inst": "42", "branches": "20"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vpmu", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def one_line_error(p: subprocess.CompletedProcess, status: int, pattern: str) -> None:
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("vpmu"), p.stderr
    assert "Traceback" not in p.stderr
    assert re.search(pattern, p.stderr), (pattern, p.stderr)


def kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and " " not in line)


def test_new_build_run_in_a_directory_of_its_own(tmp_path):
    p = cli("guest", "new", "hello", cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == "wrote hello.c; build it with: vpmu guest build hello.c\n", p
    src = (tmp_path / "hello.c").read_text()
    assert '#include "vpmu.h"' in src and "vpmu guest build hello.c" in src and "NAME" not in src
    p = cli("guest", "build", "hello.c", cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == "built hello.elf\n", p
    p = cli("run", "hello.elf", cwd=tmp_path)
    assert p.returncode == 0, p
    assert kv(p.stdout) == STARTER_KV


def test_new_refuses_to_overwrite(tmp_path):
    (tmp_path / "mine.c").write_text("int main(void) { return 3; }\n")
    one_line_error(cli("guest", "new", "mine", cwd=tmp_path), 2, r"mine\.c: exists \(not overwritten\)")
    one_line_error(cli("guest", "new", "mine.c", cwd=tmp_path), 2, r"mine\.c: exists")
    assert (tmp_path / "mine.c").read_text() == "int main(void) { return 3; }\n"
    one_line_error(cli("guest", "new", "no/such/dir/x", cwd=tmp_path), 2, r"x\.c: cannot write")


@pytest.mark.parametrize("name", ["", ".", "..", "sub/.."])
def test_new_refuses_names_without_a_file_name(tmp_path, name):
    """(An empty name was exit 106: Path('') has no name to add .c to.)"""
    one_line_error(cli("guest", "new", name, cwd=tmp_path), 2, r"not a usable guest name")
    assert list(tmp_path.iterdir()) == []


def test_build_is_incremental_and_follows_included_headers(tmp_path):
    (tmp_path / "limits.h").write_text("#define LOOPS 3\n")
    (tmp_path / "g.c").write_text('#include "vpmu.h"\n#include "limits.h"\n'
                                  'int main(void) { kv_u64("loops", LOOPS); return 0; }\n')
    (tmp_path / "unrelated.h").write_text("#define X 1\n")
    first = builder.build(tmp_path / "g.c")
    assert first.built and first.outputs.elf == tmp_path / "g.elf"
    assert not builder.build(tmp_path / "g.c").built
    later = time.time() + 2                         # mtimes later than the outputs, whatever the clock's grain
    os.utime(tmp_path / "unrelated.h", (later, later))
    assert not builder.build(tmp_path / "g.c").built          # not included: no rebuild
    (tmp_path / "limits.h").write_text("#define LOOPS 7\n")
    os.utime(tmp_path / "limits.h", (later, later))
    assert builder.build(tmp_path / "g.c").built
    assert vpmu.run(str(tmp_path / "g.elf")).kv()["loops"] == "7"
    assert builder.build(tmp_path / "g.c", force=True).built
    # another build command (here a flat binary as well) is out of date too
    assert builder.build(tmp_path / "g.c", options={"flat"}).built
    beside = [p.name for p in sorted(tmp_path.iterdir())]
    assert beside == ["g.bin", "g.c", "g.elf", "limits.h", "unrelated.h"]     # no link scripts, no dep files


@pytest.mark.parametrize("flag, suffix", [("--flat", ".bin"), ("--image", ".img")])
def test_flat_binary_and_image_run_like_the_elf(tmp_path, flag, suffix):
    assert cli("guest", "new", "g", cwd=tmp_path).returncode == 0
    (tmp_path / "out").mkdir()
    p = cli("guest", "build", "g.c", "-o", "out/g2.elf", flag, cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == f"built out/g2.elf, out/g2{suffix}\n", p
    for image in ("out/g2.elf", f"out/g2{suffix}"):
        r = cli("run", image, cwd=tmp_path)
        assert r.returncode == 0 and kv(r.stdout) == STARTER_KV, (image, r)


def test_build_options_on_the_first_line(tmp_path):
    src = tmp_path / "f.c"
    src.write_text("// vpmu-build: image\n" + builder.STARTER.read_text())
    res = builder.build(src)
    assert res.outputs.image == tmp_path / "f.img" and res.outputs.flat is None
    assert vpmu.run(str(res.outputs.image)).kv() == STARTER_KV


def test_build_errors_are_one_line_with_their_status(tmp_path):
    (tmp_path / "bad.c").write_text('#include "vpmu.h"\nint main(void) { return not_declared; }\n')
    p = cli("guest", "build", "bad.c", cwd=tmp_path)
    assert p.returncode == 1 and "not_declared" in p.stderr            # the compiler's message first,
    assert p.stderr.splitlines()[-1] == "vpmu: bad.c: compilation failed"    # then vpmu's one line
    assert not (tmp_path / "bad.elf").exists()
    one_line_error(cli("guest", "build", "none.c", cwd=tmp_path), 2, r"none\.c: no such file")
    (tmp_path / "x.elf").write_bytes(b"")
    one_line_error(cli("guest", "build", "x.elf", cwd=tmp_path), 2, r"x\.elf: not a guest source")
    (tmp_path / "o.c").write_text("// vpmu-build: flat fast\nint main(void) { return 0; }\n")
    one_line_error(cli("guest", "build", "o.c", cwd=tmp_path), 2, r"unknown build option 'fast'")
    (tmp_path / "fi.c").write_text("// vpmu-build: flat\nint main(void) { return 0; }\n")
    one_line_error(cli("guest", "build", "fi.c", "--image", cwd=tmp_path), 2, r"either flat .* or an Image")
    one_line_error(cli("guest", "build", "fi.c", "-o", "fi.bin", cwd=tmp_path), 2, r"the output names the ELF")
    one_line_error(cli("guest", "build", "fi.c", "-o", "nodir/fi.elf", cwd=tmp_path), 2,
                   r"output directory does not exist")
    one_line_error(cli("guest", "build", "fi.c", "--flat", "--image", cwd=tmp_path), 2, r"not allowed with")


def test_a_missing_toolchain_is_status_3(tmp_path):
    """ziglang made unimportable (None in sys.modules) in the CLI's process."""
    (tmp_path / "g.c").write_text("int main(void) { return 0; }\n")
    code = "import sys; sys.modules['ziglang'] = None; from vpmu.cli import main; sys.exit(main(sys.argv[1:]))"
    p = subprocess.run([sys.executable, "-c", code, "guest", "build", "--force", "g.c"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    one_line_error(p, 3, r"the guest toolchain is missing: the ziglang package is not installed")


def test_same_bytes_as_the_checkouts_build(tmp_path, vpmu_guest_dir):
    """guests/build.py builds the project's guests with this builder: the same source built
    elsewhere gives the same bytes (no path of the source or of vpmu ends up in the guest)."""
    root = Path(__file__).resolve().parent.parent
    src = tmp_path / "hello.c"
    src.write_text((root / "guests" / "src" / "hello.c").read_text())
    builder.build(src)
    assert (tmp_path / "hello.elf").read_bytes() == (vpmu_guest_dir / "hello.elf").read_bytes()


# ---- finding guests ---------------------------------------------------------------------------

def test_find_guest_by_path_or_name(tmp_path):
    (tmp_path / "a.elf").write_bytes(b"x")
    assert locate.find_guest(str(tmp_path / "a.elf"), None) == str(tmp_path / "a.elf")
    assert locate.find_guest("a", tmp_path) == str(tmp_path / "a.elf")
    with pytest.raises(locate.GuestNotFound, match=r"guest 'b': no .*b\.elf"):
        locate.find_guest("b", tmp_path)
    with pytest.raises(locate.GuestNotFound, match=r"no guest directory .*VPMU_GUESTS=DIR"):
        locate.find_guest("a", None)
    assert locate.find_guest(str(tmp_path / "none.elf"), tmp_path) == str(tmp_path / "none.elf")   # the runner's 101


def test_guest_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("VPMU_GUESTS", str(tmp_path / "env"))
    assert locate.guest_dir(tmp_path / "given") == tmp_path / "given"
    assert locate.guest_dir() == tmp_path / "env"
    monkeypatch.delenv("VPMU_GUESTS")
    # only the development checkout's guests/build remains (this test runs from one)
    root = Path(__file__).resolve().parent.parent
    assert locate.guest_dir() == (root / "guests" / "build" if (root / "guests" / "build").is_dir() else None)


def test_sweep_finds_guests_by_name_in_a_configured_directory(tmp_path, monkeypatch, capsys, vpmu_guest_dir):
    d = tmp_path / "guests"
    d.mkdir()
    (d / "mine.elf").write_bytes((vpmu_guest_dir / "pmu_smoke.elf").read_bytes())
    args = ["sweep", "-j", "1", "-q", "--no-baseline", "--filters", "deny:0x11"]
    assert main([*args, "--guest-dir", str(d), "mine"]) == 0
    assert "mine.elf" in capsys.readouterr().out
    monkeypatch.setenv("VPMU_GUESTS", str(d))
    assert main([*args, "mine"]) == 0
    assert "mine.elf" in capsys.readouterr().out
    assert main([*args, "other"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"guest 'other': no {d / 'other.elf'}" in err
    assert main([*args, str(d / "gone.elf")]) == 2
    assert capsys.readouterr().err == f"vpmu: guest {d / 'gone.elf'}: no such file\n"


def test_plugin_guest_directory_from_option_ini_or_environment(pytester, tmp_path, monkeypatch, vpmu_guest_dir):
    d = tmp_path / "g"
    d.mkdir()
    (d / "mine.elf").write_bytes((vpmu_guest_dir / "hello.elf").read_bytes())
    monkeypatch.setenv("VPMU_CACHE_DIR", str(CACHE))
    pytester.makepyfile(f"""
        from pathlib import Path

        def test_dir(vpmu_guest_dir):
            assert vpmu_guest_dir == Path({str(d)!r})

        def test_mine(vpmu_run):
            assert vpmu_run("mine").kv()["answer"] == "0x2a"

        def test_missing(vpmu_run):
            vpmu_run("nothere")
    """)
    res = pytester.runpytest_subprocess("-q", "-p", "vpmu", "--vpmu-guests", str(d))
    res.assert_outcomes(passed=2, failed=1)
    assert f"guest 'nothere': no {d / 'nothere.elf'}" in res.stdout.str()
    # the other two ways to set it (the directory only: running is the same)
    pytester.makeini(f"[pytest]\nvpmu_guests = {d}\n")
    pytester.runpytest_subprocess("-q", "-p", "vpmu", "-k", "test_dir").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\n")
    monkeypatch.setenv("VPMU_GUESTS", str(d))
    pytester.runpytest_subprocess("-q", "-p", "vpmu", "-k", "test_dir").assert_outcomes(passed=1)
    # the command-line option comes first
    pytester.makeini(f"[pytest]\nvpmu_guests = {tmp_path}\n")
    pytester.runpytest_subprocess("-q", "-p", "vpmu", "-k", "test_dir", "--vpmu-guests", str(d)).assert_outcomes(
        passed=1)
