"""The QEMU-compatible front's command line (vpmu/qemufront.py, ``vpmu qemu``): what it
accepts and how it maps it, what it refuses (one line naming the option, status 1, before the
kernel is looked at), and the probes kvm-unit-tests' arm/run sends (docs/qemu-compat.md)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vpmu import qemufront as F
from vpmu.commands import qemu as Q
from vpmu.config import CycleModel

ROOT = Path(__file__).resolve().parents[1]
NO_FILE = "_NO_FILE_4Uhere_"            # kvm-unit-tests' premature-failure kernel


@pytest.fixture
def kernel(tmp_path) -> str:
    p = tmp_path / "k.flat"
    p.write_bytes(b"\x00" * 64)
    return str(p)


def kut_argv(kernel: str, *extra: str, cpu: str = "cortex-a57") -> list[str]:
    """arm/run's command line for a pmu entry (scripts/arch-run.bash, arm/run), as captured."""
    return ["-nodefaults", "-machine", "virt", "-accel", "tcg", "-cpu", cpu,
            "-device", "virtio-serial-device", "-device", "virtconsole,chardev=ctd", "-chardev", "testdev,id=ctd",
            "-display", "none", "-serial", "stdio", "-kernel", kernel, "-smp", "1", *extra]


def error_of(argv: list[str]) -> str:
    with pytest.raises(F.FrontError) as e:
        F.parse(argv)
    assert e.value.status == 1
    text = str(e.value)
    assert "\n" not in text
    return text


# ---- accepted ----------------------------------------------------------------------------------

def test_kvm_unit_tests_command_line(kernel, tmp_path):
    env = tmp_path / "env"
    env.write_text("TARGET=qemu\n")
    run = F.parse(kut_argv(kernel, "-append", "pmu-sw-incr", "-initrd", str(env)))
    assert isinstance(run, F.Launch)
    o = run.options
    assert run.kernel == kernel
    assert (o.pmu_version, o.no_pmu, o.virtio_console, o.append, o.initrd) == \
        ("3.0", False, "testdev", "pmu-sw-incr", str(env))
    assert o.no_semihosting and o.memory is None and o.cycles is None
    cfg = o.to_machine_config()
    assert cfg.virtio_console == "testdev" and not cfg.semihosting and cfg.pmu.version == "3.0"


@pytest.mark.parametrize("cpu,version,no_pmu", [("cortex-a57", "3.0", False), ("max", "3.5", False),
                                                ("cortex-a57,pmu=off", "3.0", True), ("max,pmu=on", "3.5", False)])
def test_cpu_models(kernel, cpu, version, no_pmu):
    o = F.parse(kut_argv(kernel, cpu=cpu)).options
    assert (o.pmu_version, o.no_pmu) == (version, no_pmu)


@pytest.mark.parametrize("arg,size", [("256", 256 << 20), ("1G", 1 << 30), ("512M", 512 << 20),
                                      ("1.5G", 3 << 29), ("size=128", 128 << 20), ("4G", 4 << 30)])
def test_memory_sizes(kernel, arg, size):
    assert F.parse(kut_argv(kernel, "-m", arg)).options.memory == size


@pytest.mark.parametrize("arg,base", [("0", None), ("shift=0", None), ("shift=8,sleep=off", 256),
                                      ("1,align=off", 2), ("shift=10", 1024)])
def test_icount_is_the_cycle_model(kernel, arg, base):
    cycles = F.parse(kut_argv(kernel, "-icount", arg)).options.cycles
    assert (cycles.base if cycles else None) == base
    if base:
        assert cycles == CycleModel(base=base)


def test_repeated_machine_options_merge(kernel):
    # run_tests.sh appends a second -machine with properties after -append (gic, mte entries)
    assert isinstance(F.parse(kut_argv(kernel, "-append", "x", "-machine", "gic-version=3")), F.Launch)
    assert isinstance(F.parse(["-machine", "gic-version=max,accel=tcg", "-M", "virt", "-cpu", "max",
                               "-nographic", "-kernel", kernel]), F.Launch)


def test_docs_qemu_command_line(kernel):
    """The command line docs/qemu-compat.md gives for running a guest on QEMU runs on the front."""
    argv = ("-M virt,gic-version=3 -cpu cortex-a57 -icount shift=0 -m 128M -no-reboot -nic none -display none "
            "-chardev stdio,id=c0,mux=on -serial chardev:c0 "
            "-semihosting-config enable=on,target=native,chardev=c0").split() + ["-kernel", kernel]
    o = F.parse(argv).options
    assert (o.memory, o.no_semihosting, o.virtio_console) == (128 << 20, False, None)


def test_semihosting_switch(kernel):
    assert F.parse(kut_argv(kernel)).options.no_semihosting
    assert not F.parse(kut_argv(kernel, "-semihosting")).options.no_semihosting
    assert F.parse(kut_argv(kernel, "-semihosting", "-semihosting-config", "enable=off")).options.no_semihosting


@pytest.mark.parametrize("extra,backend", [
    ((), "testdev"),
    (("-chardev", "null,id=n"), "testdev"),
])
def test_console_backends(kernel, extra, backend):
    assert F.parse(kut_argv(kernel, *extra)).options.virtio_console == backend


def test_console_on_stdio_and_without_chardev(kernel):
    base = ["-M", "virt", "-cpu", "cortex-a57", "-kernel", kernel, "-device", "virtio-serial-device"]
    o = F.parse(base + ["-chardev", "stdio,id=c,mux=on", "-serial", "chardev:c", "-device", "virtconsole,chardev=c"])
    assert o.options.virtio_console == "stdio"
    assert F.parse(base + ["-nographic", "-device", "virtconsole"]).options.virtio_console == "null"
    assert F.parse(base + ["-nographic"]).options.virtio_console == "null"
    assert F.parse(["-M", "virt", "-cpu", "cortex-a57", "-kernel", kernel, "-nographic"]).options.virtio_console is None


def test_opts_syntax():
    assert F.parse_opts("virt,gic-version=3", "type") == [("type", "virt"), ("gic-version", "3")]
    assert F.parse_opts("stdio,id=a,,b,mux", "backend") == [("backend", "stdio"), ("id", "a,b"), ("mux", "on")]
    assert F.parse_opts("gic-version=3,", "type") == [("gic-version", "3")]


# ---- refused: one line naming the option, before the kernel is looked at -------------------------

@pytest.mark.parametrize("extra,needle", [
    (("-smp", "2"), "Invalid SMP CPUs 2. The max CPUs supported by machine 'virt' is 1"),
    (("-smp", "cpus=1,maxcpus=4"), "Invalid SMP CPUs 4."),
    (("-machine", "gic-version=2"), "-machine gic-version=2"),
    (("-machine", "mte=on"), "-machine mte=on"),
    (("-machine", "virtualization=on"), "-machine virtualization=on"),
    (("-machine", "dumpdtb=x"), "-machine dumpdtb=x"),
    (("-device", "pci-testdev"), "-device pci-testdev"),
    (("-device", "virtio-blk-device"), "virtio-blk-device"),
    (("-chardev", "socket,id=mon,path=/tmp/x,server=on,wait=off"), "socket"),
    (("-chardev", "pipe,id=mon,path=/tmp/x"), "pipe"),
    (("-mon", "chardev=mon,mode=control"), "-mon"),
    (("-incoming", "unix:/tmp/x"), "-incoming"),
    (("-S",), "-S"),
    (("-enable-kvm",), "-enable-kvm"),
    (("-accel", "kvm"), "-accel kvm"),
    (("-icount", "shift=auto"), "shift=auto"),
    (("-icount", "shift=11"), "shift too big"),
    (("-icount", "shift=0,rr=record"), "record/replay"),
    (("-semihosting-config", "enable=on,userspace=on"), "userspace=on"),
    (("-m", "8G"), "-m 8G"),
    (("-m", "lots"), "-m"),
    (("-display", "gtk"), "-display gtk"),
    (("-serial", "null"), "-serial null"),
    (("-serial", "stdio", "-serial", "stdio"), "-serial stdio"),
    (("-frobnicate",), "-frobnicate: invalid option"),
    (("--frobnicate",), "--frobnicate: invalid option"),
    (("disk.img",), "disk.img"),
])
def test_refused_before_the_kernel(extra, needle):
    text = error_of(kut_argv(NO_FILE, *extra))
    assert needle in text
    assert "could not load kernel" not in text


@pytest.mark.parametrize("cpu,needle", [("host", "'host' CPU type can only be used with KVM or HVF"),
                                        ("cortex-a53", "-cpu cortex-a53"), ("max,sve=off", "'sve'")])
def test_refused_cpus(cpu, needle):
    assert needle in error_of(kut_argv(NO_FILE, cpu=cpu))


def test_references_are_checked():
    base = ["-M", "virt", "-cpu", "max", "-nographic", "-kernel", NO_FILE]
    assert "chardev 'ctd' not found" in error_of(base + ["-device", "virtio-serial-device",
                                                         "-device", "virtconsole,chardev=ctd"])
    assert "No 'virtio-serial-bus' bus found" in error_of(base + ["-device", "virtconsole,chardev=c",
                                                                  "-chardev", "testdev,id=c"])
    assert "cannot use stdio by multiple character devices" in error_of(base + ["-chardev", "stdio,id=c"])
    assert "already in use" in error_of(base[:-3] + ["-kernel", NO_FILE, "-chardev", "stdio,id=c",
                                                     "-serial", "chardev:c", "-semihosting-config", "chardev=c"])
    assert "Duplicate ID 'c'" in error_of(base + ["-chardev", "null,id=c", "-chardev", "null,id=c"])
    assert "no id specified" in error_of(base + ["-chardev", "testdev"])


def test_uart_needs_a_backend():
    assert "the UART has no backend" in error_of(["-nodefaults", "-M", "virt", "-cpu", "max", "-kernel", NO_FILE])
    assert "the UART has no backend" in error_of(["-nodefaults", "-nographic", "-M", "virt", "-cpu", "max",
                                                  "-kernel", NO_FILE])


def test_machine_and_cpu_are_required():
    assert "No machine specified" in error_of(["-cpu", "max", "-nographic", "-kernel", NO_FILE])
    assert "-cpu is required" in error_of(["-M", "virt", "-nographic", "-kernel", NO_FILE])
    assert "-kernel is required" in error_of(["-M", "virt", "-cpu", "max", "-nographic"])
    assert "-m: requires an argument" in error_of(["-M", "virt", "-m"])


def test_missing_files_name_the_path(tmp_path, kernel):
    # what kvm-unit-tests' premature check looks for: the path and "could not load kernel"
    assert f"could not load kernel '{NO_FILE}'" in error_of(kut_argv(NO_FILE))
    assert "could not load initrd" in error_of(kut_argv(kernel, "-initrd", str(tmp_path / "none")))
    assert "Couldn't open dtb file" in error_of(kut_argv(kernel, "-dtb", str(tmp_path / "none")))


# ---- probes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,what", [(["-machine", "?"], "machines"), (["-M", "help"], "machines"),
                                       (["-machine", "virt,help"], "machine-props"),
                                       (["-machine", "virt", "-device", "?"], "devices"),
                                       (["-machine", "virt", "-chardev", "?"], "chardevs"),
                                       (["-device", "virtconsole,?"], "device-props"),
                                       (["-cpu", "help"], "cpus"), (["-accel", "help"], "accels"),
                                       (["--help"], "help"), (["-h"], "help"), (["-version"], "version")])
def test_probes_parse(argv, what):
    probe = F.parse(argv)
    assert isinstance(probe, F.Probe) and probe.what == what


def _front(*argv: str, stdin=subprocess.DEVNULL, shell: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if shell:
        return subprocess.run(["sh", "-c", shell], capture_output=True, text=True, env=env, timeout=120)
    return subprocess.run([sys.executable, "-m", "vpmu", "qemu", *argv], capture_output=True, text=True,
                          env=env, timeout=120, stdin=stdin)


def test_arm_run_probes_through_the_command():
    """arm/run's probes (in its order): each greps the output; all exit 0 with nothing on stderr."""
    help_ = _front("--help")
    assert help_.returncode == 0 and "QEMU" in help_.stdout and help_.stderr == ""
    machines = _front("-machine", "?")
    assert "ARM Virtual Machine" in machines.stdout
    devices = _front("-machine", "virt", "-device", "?")
    assert "virtconsole" in devices.stdout and "virtio-serial-device" in devices.stdout
    assert "pci-testdev" not in devices.stdout          # else arm/run adds -device pci-testdev to every run
    assert "testdev" in _front("-machine", "virt", "-chardev", "?").stdout
    first = _front("-h").stdout.splitlines()[0]
    assert first.startswith(f"QEMU emulator version {F.QEMU_DIALECT} ")
    # scripts/arch-run.bash: IFS='[ .]' read -r _ _ _ major minor micro
    assert first.replace(".", " ").split()[3:6] == F.QEMU_DIALECT.split(".")
    for p in (help_, machines, devices):
        assert p.returncode == 0 and p.stderr == ""


def test_probe_into_a_closed_pipe_is_quiet():
    p = _front(shell=f"{sys.executable} -m vpmu qemu --help | head -c 1 >/dev/null; "
                     f"{sys.executable} -m vpmu qemu -machine virt -device '?' | grep -q virtconsole; echo $?")
    assert p.stdout.strip() == "0" and p.stderr == ""


def test_errors_through_the_command(kernel):
    p = _front(*kut_argv(NO_FILE, "-smp", "2"))
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == "vpmu qemu: Invalid SMP CPUs 2. The max CPUs supported by machine 'virt' is 1\n"
    p = _front(*kut_argv(NO_FILE))
    assert p.returncode == 1
    assert p.stderr == f"vpmu qemu: could not load kernel '{NO_FILE}': No such file or directory\n"
    p = _front("-foo")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "-foo" in p.stderr


def test_an_image_vpmu_cannot_load_is_a_start_up_error(tmp_path, capsys):
    """A kernel vpmu refuses while loading (here an empty file) is QEMU's start-up error: status 1."""
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert Q.run_front(kut_argv(str(empty)), "vpmu-system-aarch64") == 1
    err = capsys.readouterr().err
    assert err.startswith("vpmu-system-aarch64: ") and "empty file" in err and err.count("\n") == 1


def test_console_script_entry_point():
    """pyproject.toml installs vpmu-system-aarch64 as vpmu.commands.qemu:main."""
    text = (ROOT / "pyproject.toml").read_text()
    assert 'vpmu-system-aarch64 = "vpmu.commands.qemu:main"' in text
    p = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'vpmu-system-aarch64'; "
                        "from vpmu.commands.qemu import main; sys.exit(main(['-machine', '?']))"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert p.returncode == 0 and "ARM Virtual Machine" in p.stdout


def test_probes_do_not_load_the_emulator():
    code = ("import sys; from vpmu import qemufront; qemufront.parse(['-machine', 'virt', '-device', '?']); "
            "print(sorted(m for m in ('numba', 'unicorn', 'vpmu.board.machine') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stdout + p.stderr


@pytest.mark.parametrize("guest,append,status", [("board_wfi_deadlock", "", 104),    # vpmu's status: QEMU hangs
                                                 ("board_exit", "psci=off", 0),      # QEMU's: SYSTEM_OFF is 0
                                                 ("board_exit", "exit=9", 9)])       # semihosting exit code
def test_run_statuses_through_the_front(vpmu_guest_dir, capsys, guest, append, status):
    from vpmu.pytest_plugin import resolve_guest
    argv = ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-nographic", "-semihosting",
            "-kernel", resolve_guest(vpmu_guest_dir, guest)] + (["-append", append] if append else [])
    assert Q.run_front(argv, "vpmu-system-aarch64") == status
    err = capsys.readouterr().err
    assert err == "" if status != 104 else (err.startswith("vpmu-system-aarch64: ") and err.count("\n") == 1)
