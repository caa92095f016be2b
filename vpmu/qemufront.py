"""The QEMU-compatible front: ``qemu-system-aarch64``'s command line on vpmu's board.

Harnesses written for QEMU (kvm-unit-tests' ``run_tests.sh`` and ``arm/run``, PMU CI scripts)
start ``$QEMU`` with QEMU's options and judge the run by its exit status (chr-testdev) or its
output.  ``vpmu qemu ARGS`` and the ``vpmu-system-aarch64`` script take those options for a
one-vCPU ``virt`` machine, turn them into :class:`~vpmu.options.RunOptions` and run the guest;
the statuses and messages are QEMU's where a harness looks at them (docs/qemu-compat.md, "The
QEMU-compatible front").

:func:`parse` reads a command line into a :class:`Probe` (a help or listing request: print its
text, exit 0; answered without loading the emulator) or a :class:`Launch` (the kernel and the
run options); a command line the front does not accept raises :class:`FrontError`, whose text
is one line naming the option (status 1, QEMU's for every start-up error).  Everything is
checked before the kernel file is looked at, so kvm-unit-tests' "premature failure" check
(``-kernel _NO_FILE_4Uhere_``) sees an unsupported configuration as the last line of output and
reports the entry as SKIP with that reason, and a missing kernel as ``could not load kernel``.
:func:`launch` runs a Launch and returns the exit status (:func:`front_status` maps vpmu's
runner errors).

The mapping decisions (also in ``vpmu qemu --help``):

- ``-machine virt`` is vpmu's board: a GICv3 whatever ``gic-version`` says, except that
  ``gic-version=2`` (or ``host``) is refused; QEMU's ``virt`` without ``gic-version`` is a
  GICv2, which kvm-unit-tests' pmu, debug, timer, cache and selftest code do not depend on
  (they follow the device tree).
- ``-cpu cortex-a57`` is vpmu's Cortex-A57 with QEMU's cortex-a57 PMU (PMUv3, ``--pmu-version
  3.0``); ``-cpu max`` is the same core with the PMU of QEMU 7.2's ``max`` CPU (PMUv3p5:
  64-bit event counters, PMCR.LP), the only part of ``max`` vpmu models; ``-cpu host`` is
  refused (QEMU allows it only with KVM or HVF); ``pmu=off`` is ``--no-pmu``.  Both have 6
  event counters, as QEMU's.
- ``-icount shift=N`` (``-icount N``): QEMU's virtual clock advances 2**N ns per instruction
  and PMCCNTR counts that clock at 1 GHz; vpmu's cycle model with ``base=2**N`` is exactly
  that (the generic timer follows the same clock), N = 0..10 as QEMU allows.  ``shift=auto``
  (host-speed dependent) and record/replay are refused.  Without ``-icount`` vpmu still counts
  1 cycle per instruction (shift 0): QEMU's cycle counter then follows host time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from . import errors
from .config import CycleModel
from .options import RunOptions
from .sizes import format_size

QEMU_DIALECT = "7.2.0"                  # the QEMU version whose command line the front was checked against
FRONT_STATUS = 1                        # QEMU's exit status for every start-up error
MACHINE = "virt"
CPUS = {"cortex-a57": "3.0", "max": "3.5"}          # -cpu model -> the PMU version of QEMU's model
CPU_DEFAULT_NOTE = "QEMU virt's default CPU, cortex-a15, is 32-bit only"
MAX_ICOUNT_SHIFT = 10                   # QEMU: "icount: shift too big"
RAM_MIN, RAM_MAX = 1 << 20, 4 << 30     # what vpmu's board maps (vpmu.config.MEMORY_MIN/MAX)
MIB = 1 << 20
SIZE_SUFFIXES = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
HELP_WORDS = ("help", "?")

# devices and character-device backends the front knows, with the properties each takes
DEVICES = {
    "virtio-serial-device": ("virtio-bus", "virtio serial bus on a virtio-mmio transport", ("id",)),
    "virtconsole": ("virtio-serial-bus", "virtio console port 0 (chr-testdev's transport)",
                    ("chardev", "id", "name", "nr")),
}
CHARDEVS = {"testdev": ("id",), "stdio": ("id", "mux", "signal"), "null": ("id",)}
MACHINE_PROPS = {
    "gic-version": "3 or max: vpmu's GICv3 (2 and host are refused)",
    "accel": "tcg",
    "mte": "off (MTE is not modelled)",
    "virtualization": "off (no EL2)",
    "secure": "off (no EL3)",
    "its": "off (no ITS)",
}
MACHINE_SWITCHES = {"mte": "MTE is not modelled", "virtualization": "vpmu's board has no EL2",
                    "secure": "vpmu's board has no EL3", "its": "vpmu's GICv3 has no ITS"}
BOOLEANS = {"on": True, "yes": True, "true": True, "y": True, "off": False, "no": False, "false": False,
            "n": False}

# QEMU options the front refuses with a reason (everything else unknown is "invalid option")
REFUSED = {
    "enable-kvm": "vpmu is an emulator: KVM is not available (use -accel tcg)",
    "S": "vpmu cannot start with the CPU stopped (no monitor to continue it)",
    "mon": "vpmu has no monitor (QMP/HMP)",
    "qmp": "vpmu has no monitor (QMP/HMP)",
    "incoming": "vpmu cannot migrate",
    "gdb": "vpmu has no gdbstub",
    "s": "vpmu has no gdbstub",
    "bios": "vpmu boots kernels only (-kernel), no firmware",
    "pflash": "vpmu has no flash",
    "drive": "vpmu has no block devices",
    "hda": "vpmu has no block devices",
    "d": "QEMU's log is not available (vpmu run --trace records a trace)",
    "D": "QEMU's log is not available (vpmu run --trace records a trace)",
    "trace": "QEMU's trace events are not available (vpmu run --trace records a trace)",
    "no-shutdown": "vpmu always ends the run when the guest powers off",
    "daemonize": "vpmu runs in the foreground",
}


class FrontError(errors.VpmuError):
    """A command line the front refuses: one line naming the option; QEMU's start-up status."""
    status = FRONT_STATUS


@dataclass
class Probe:
    """A help or listing request (``-machine ?``, ``-device help``, ``--help`` ...): print
    ``text`` (``help`` means the front's own help, which the command prints) and exit 0."""
    what: str
    text: str = ""


@dataclass
class Launch:
    """What to run: the kernel and the options of the run."""
    kernel: str
    options: RunOptions


# ---------------------------------------------------------------------------------------------
# QemuOpts: "[implied=]value,key=value,..." with ",," for a literal comma

def parse_opts(text: str, implied: Optional[str]) -> list[tuple[str, str]]:
    """QEMU's ``key=value,...`` syntax: ``,,`` is a literal comma; a first item without ``=``
    is the value of the implied key; a later bare ``key`` means ``key=on``; empty items are
    skipped."""
    items, cur, i = [], [], 0
    while i < len(text):
        if text[i] == ",":
            if text[i + 1:i + 2] == ",":
                cur.append(",")
                i += 2
                continue
            items.append("".join(cur))
            cur = []
        else:
            cur.append(text[i])
        i += 1
    items.append("".join(cur))
    out = []
    for n, item in enumerate(items):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if sep:
            out.append((key, value))
        elif n == 0 and implied is not None:
            out.append((implied, item))
        else:
            out.append((item, "on"))
    return out


def _is_help(pairs: list[tuple[str, str]]) -> bool:
    return any(k in HELP_WORDS or v in HELP_WORDS for k, v in pairs)


def _bool(opt: str, key: str, value: str) -> bool:
    try:
        return BOOLEANS[value.lower()]
    except KeyError:
        raise FrontError(f"{opt}: {key}={value}: expected on or off") from None


def parse_size_mib(opt: str, text: str) -> int:
    """``-m`` sizes: a decimal number (fractions allowed) with an optional B/K/M/G/T suffix;
    no suffix means MiB (qemu_strtosz_MiB)."""
    t = text.strip()
    mult = MIB
    if t and t[-1].lower() in SIZE_SUFFIXES:
        mult, t = SIZE_SUFFIXES[t[-1].lower()], t[:-1]
    try:
        value = float(t) if "." in t else int(t, 10)
    except ValueError:
        raise FrontError(f"{opt}: invalid size '{text}'") from None
    size = int(value * mult)
    if size != value * mult or size < 0:
        raise FrontError(f"{opt}: invalid size '{text}'")
    return size


# ---------------------------------------------------------------------------------------------
# The parser's state

@dataclass
class _Chardev:
    backend: str
    mux: bool = False
    users: list = field(default_factory=list)        # the frontends connected to it


@dataclass
class _State:
    machine_type: Optional[str] = None
    machine_props: dict = field(default_factory=dict)
    accels: list = field(default_factory=list)
    cpu: Optional[str] = None
    cpu_props: dict = field(default_factory=dict)
    memory: Optional[int] = None
    memory_text: str = ""
    kernel: Optional[str] = None
    initrd: Optional[str] = None
    append: Optional[str] = None
    dtb: Optional[str] = None
    nographic: bool = False
    nodefaults: bool = False
    serials: list = field(default_factory=list)
    icount_shift: Optional[int] = None
    semihosting: bool = False
    semihosting_chardev: Optional[str] = None
    devices: list = field(default_factory=list)       # (driver, {prop: value}) in order
    chardevs: dict = field(default_factory=dict)      # id -> _Chardev
    probe: Optional[Probe] = None


Handler = Callable[[_State, str, str], None]


# ---------------------------------------------------------------------------------------------
# One handler per option

def _machine(st: _State, opt: str, arg: str) -> None:
    pairs = parse_opts(arg, "type")
    for key, value in pairs:
        if key == "type":
            st.machine_type = value
        elif key not in HELP_WORDS and value not in HELP_WORDS:
            st.machine_props[key] = value
    if _is_help(pairs):
        if st.machine_type is None or st.machine_type in HELP_WORDS:
            _probe(st, "machines", f"Supported machines are:\n{MACHINE:<20} ARM Virtual Machine (vpmu's board: one "
                                   f"vCPU, GICv3, PL011, PSCI, virtio-mmio console)\n")
        else:
            _probe(st, "machine-props", f"{st.machine_type} options:\n" + "".join(
                f"  {k}=<{v}>\n" for k, v in MACHINE_PROPS.items()))


def _accel(st: _State, opt: str, arg: str) -> None:
    pairs = parse_opts(arg, "accel")
    if _is_help(pairs):
        _probe(st, "accels", "Accelerators supported in QEMU binary:\ntcg\n")
        return
    accel = dict(pairs).get("accel")
    if accel != "tcg":
        raise FrontError(f"{opt} {arg}: vpmu is an emulator: only -accel tcg is available")
    for key, value in pairs:
        if key == "thread":
            if value not in ("single", "multi"):
                raise FrontError(f"{opt}: thread={value}: expected single or multi")
        elif key != "accel":
            raise FrontError(f"{opt}: property '{key}' is not supported by vpmu (only thread=)")
    st.accels.append(accel)


def _cpu(st: _State, opt: str, arg: str) -> None:
    model, *props = arg.split(",")
    if model in HELP_WORDS:
        _probe(st, "cpus", "Available CPUs:\n" + "".join(f"  {m}\n" for m in CPUS))
        return
    st.cpu, st.cpu_props = model, {}
    for item in props:
        key, sep, value = item.partition("=")
        st.cpu_props[key] = value if sep else "on"


def _memory(st: _State, opt: str, arg: str) -> None:
    for key, value in parse_opts(arg, "size"):
        if key != "size":
            raise FrontError(f"{opt}: {key}= is not supported by vpmu (one fixed RAM bank)")
        st.memory, st.memory_text = parse_size_mib(opt, value), value


def _smp(st: _State, opt: str, arg: str) -> None:
    topology = ("sockets", "dies", "clusters", "cores", "threads", "books", "drawers")
    values: dict[str, int] = {}
    for key, value in parse_opts(arg, "cpus"):
        if key not in ("cpus", "maxcpus") + topology:
            raise FrontError(f"{opt}: unknown property '{key}'")
        try:
            values[key] = int(value, 10)
        except ValueError:
            raise FrontError(f"{opt}: {key}={value}: expected a number") from None
    product = 1
    for key in topology:
        product *= values.get(key, 1)
    cpus = values.get("cpus", product)
    maxcpus = max(values.get("maxcpus", cpus), cpus, product)
    if cpus < 1:
        raise FrontError(f"{opt} {arg}: the number of CPUs must be at least 1")
    if maxcpus > 1:      # QEMU's wording: run_tests.sh --probe-maxsmp takes the last word as MAX_SMP
        raise FrontError(f"Invalid SMP CPUs {maxcpus}. The max CPUs supported by machine '{MACHINE}' is 1")


def _path(attr: str) -> Handler:
    def handler(st: _State, opt: str, arg: str) -> None:
        setattr(st, attr, arg)
    return handler


def _flag(attr: str) -> Handler:
    def handler(st: _State, opt: str, arg: str) -> None:
        setattr(st, attr, True)
    return handler


def _accepted(st: _State, opt: str, arg: str) -> None:
    """An option without effect on vpmu (``-no-reboot``: vpmu never reboots; ``-name``)."""


def _display(st: _State, opt: str, arg: str) -> None:
    pairs = parse_opts(arg, "type")
    if _is_help(pairs):
        _probe(st, "displays", "Available display backend types:\nnone\n")
        return
    if dict(pairs).get("type") != "none":
        raise FrontError(f"{opt} {arg}: vpmu has no display (use -display none or -nographic)")


def _none_only(what: str) -> Handler:
    def handler(st: _State, opt: str, arg: str) -> None:
        if arg != "none":
            raise FrontError(f"{opt} {arg}: vpmu has no {what} (only '{opt} none')")
    return handler


def _serial(st: _State, opt: str, arg: str) -> None:
    if arg in HELP_WORDS:
        _probe(st, "serials", "Available serial backends: stdio, mon:stdio, chardev:ID\n")
        return
    st.serials.append(arg)


def _chardev(st: _State, opt: str, arg: str) -> None:
    pairs = parse_opts(arg, "backend")
    if _is_help(pairs):
        _probe(st, "chardevs", "Available chardev backend types: \n" + "".join(f"  {b}\n" for b in CHARDEVS))
        return
    props = dict(pairs)
    backend = props.pop("backend")
    if backend not in CHARDEVS:
        raise FrontError(f"{opt} {arg}: chardev backend '{backend}' is not supported by vpmu "
                         f"(only {', '.join(CHARDEVS)})")
    cid = props.get("id")
    if not cid:
        raise FrontError(f"{opt} {arg}: chardev: no id specified")
    if cid in st.chardevs:
        raise FrontError(f"{opt} {arg}: Duplicate ID '{cid}' for chardev")
    mux = False
    for key, value in props.items():
        if key not in CHARDEVS[backend]:
            raise FrontError(f"{opt} {arg}: property '{key}' is not supported by vpmu for a {backend} chardev")
        if key == "mux":
            mux = _bool(opt, key, value)
        elif key == "signal":
            _bool(opt, key, value)
    st.chardevs[cid] = _Chardev(backend, mux)


def _device(st: _State, opt: str, arg: str) -> None:
    pairs = parse_opts(arg, "driver")
    props = dict(pairs)
    driver = props.pop("driver", None)
    if _is_help(pairs):
        if driver is None or driver in HELP_WORDS:
            _probe(st, "devices", "".join(f'name "{d}", bus {bus}, desc "{desc}"\n'
                                          for d, (bus, desc, _p) in DEVICES.items()))
        elif driver in DEVICES:
            _probe(st, "device-props", f"{driver} options:\n" + "".join(f"  {p}=<str>\n" for p in DEVICES[driver][2]))
        else:
            raise FrontError(f"{opt} {arg}: '{driver}' is not a valid device model name")
        return
    if driver == "pci-testdev":
        raise FrontError(f"{opt} {arg}: vpmu's board has no PCI bus")
    if driver not in DEVICES:
        raise FrontError(f"{opt} {arg}: '{driver}' is not a device vpmu models "
                         f"(only {', '.join(DEVICES)})")
    for key in props:
        if key not in DEVICES[driver][2]:
            raise FrontError(f"{opt} {arg}: property '{driver}.{key}' is not supported by vpmu")
    if driver == "virtconsole" and props.get("nr", "0") != "0":
        raise FrontError(f"{opt} {arg}: vpmu's console has port 0 only (no MULTIPORT)")
    st.devices.append((driver, props))


def _icount(st: _State, opt: str, arg: str) -> None:
    shift = None
    for key, value in parse_opts(arg, "shift"):
        if key == "shift":
            if value == "auto":
                raise FrontError(f"{opt} {arg}: shift=auto depends on the host's speed; vpmu needs a fixed shift")
            try:
                shift = int(value, 10)
            except ValueError:
                raise FrontError(f"{opt} {arg}: shift={value}: expected a number 0..{MAX_ICOUNT_SHIFT}") from None
            if not 0 <= shift <= MAX_ICOUNT_SHIFT:
                raise FrontError(f"{opt} {arg}: icount: shift too big (0..{MAX_ICOUNT_SHIFT})")
        elif key == "sleep":
            _bool(opt, key, value)          # vpmu never sleeps: waiting skips to the next deadline
        elif key == "align":
            if _bool(opt, key, value):
                raise FrontError(f"{opt} {arg}: align=on ties guest time to host time; vpmu does not")
        elif key in ("rr", "rrfile", "rrsnapshot"):
            raise FrontError(f"{opt} {arg}: record/replay is not available in vpmu")
        else:
            raise FrontError(f"{opt} {arg}: unknown property '{key}'")
    if shift is None:
        raise FrontError(f"{opt} {arg}: shift= is required")
    st.icount_shift = shift


def _semihosting_config(st: _State, opt: str, arg: str) -> None:
    for key, value in parse_opts(arg, "enable"):
        if key == "enable":
            st.semihosting = _bool(opt, key, value)
        elif key == "target":
            if value not in ("native", "auto"):
                raise FrontError(f"{opt} {arg}: target={value}: vpmu has no gdbstub (native or auto)")
        elif key == "chardev":
            st.semihosting_chardev = value
        elif key == "userspace":
            if _bool(opt, key, value):
                raise FrontError(f"{opt} {arg}: userspace=on: semihosting from EL0 is not available in vpmu")
        elif key == "arg":
            raise FrontError(f"{opt} {arg}: arg= is not supported by vpmu (SYS_GET_CMDLINE returns -append)")
        else:
            raise FrontError(f"{opt} {arg}: unknown property '{key}'")


def _semihosting(st: _State, opt: str, arg: str) -> None:
    st.semihosting = True


def _probe(st: _State, what: str, text: str) -> None:
    if st.probe is None:
        st.probe = Probe(what, text)


# option name -> (takes an argument, handler)
OPTIONS: dict[str, tuple[bool, Handler]] = {
    "machine": (True, _machine), "M": (True, _machine),
    "accel": (True, _accel),
    "cpu": (True, _cpu),
    "m": (True, _memory),
    "smp": (True, _smp),
    "kernel": (True, _path("kernel")),
    "initrd": (True, _path("initrd")),
    "append": (True, _path("append")),
    "dtb": (True, _path("dtb")),
    "nographic": (False, _flag("nographic")),
    "nodefaults": (False, _flag("nodefaults")),
    "display": (True, _display),
    "serial": (True, _serial),
    "chardev": (True, _chardev),
    "device": (True, _device),
    "icount": (True, _icount),
    "semihosting": (False, _semihosting),
    "semihosting-config": (True, _semihosting_config),
    "no-reboot": (False, _accepted),
    "name": (True, _accepted),
    "nic": (True, _none_only("network")),
    "net": (True, _none_only("network")),
    "monitor": (True, _none_only("monitor")),
}
IMMEDIATE = {"h": "help", "help": "help", "version": "version"}    # answered as soon as they are seen


# ---------------------------------------------------------------------------------------------
# Parsing

def parse(argv: list[str]) -> Union[Probe, Launch]:
    """Read a QEMU command line (without the program name).  Raises :class:`FrontError`."""
    st = _State()
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if not word.startswith("-") or word == "-":
            raise FrontError(f"'{word}': disk images are not supported by vpmu (use -kernel)")
        name = word[2:] if word.startswith("--") else word[1:]
        if name in IMMEDIATE:
            return Probe(IMMEDIATE[name])
        if name in REFUSED:
            raise FrontError(f"{word}: {REFUSED[name]}")
        if name not in OPTIONS:
            raise FrontError(f"{word}: invalid option (not supported by vpmu's QEMU front; see vpmu qemu --help)")
        takes_arg, handler = OPTIONS[name]
        arg = ""
        if takes_arg:
            if i >= len(argv):
                raise FrontError(f"{word}: requires an argument")
            arg = argv[i]
            i += 1
        handler(st, word, arg)
    if st.probe is not None:
        return st.probe
    return _launch(st)


def _launch(st: _State) -> Launch:
    """Check the whole configuration (the files last) and build the run options."""
    if st.machine_type is None:
        raise FrontError("No machine specified, and there is no default (use -machine virt)")
    if st.machine_type != MACHINE:
        raise FrontError(f"-machine {st.machine_type}: unsupported machine type (vpmu has only '{MACHINE}')")
    _check_machine_props(st.machine_props)
    if st.cpu is None:
        raise FrontError(f"-cpu is required: {CPU_DEFAULT_NOTE}; vpmu models {' and '.join(CPUS)}")
    if st.cpu == "host":
        raise FrontError("-cpu host: the 'host' CPU type can only be used with KVM or HVF")
    if st.cpu not in CPUS:
        raise FrontError(f"-cpu {st.cpu}: unknown CPU model for vpmu (only {', '.join(CPUS)})")
    no_pmu = False
    for key, value in st.cpu_props.items():
        if key != "pmu":
            raise FrontError(f"-cpu {st.cpu}: property '{key}' is not supported by vpmu (only pmu=on|off)")
        no_pmu = not _bool("-cpu", key, value)
    if st.memory is not None and not (RAM_MIN <= st.memory <= RAM_MAX and st.memory % 4096 == 0):
        raise FrontError(f"-m {st.memory_text}: vpmu's board takes a multiple of 4 KiB from "
                         f"{format_size(RAM_MIN)} to {format_size(RAM_MAX)}")
    virtio_console = _resolve_chardevs(st)
    if st.kernel is None:
        raise FrontError("-kernel is required (vpmu has no firmware)")
    _readable(st.kernel, f"could not load kernel '{st.kernel}'")
    if st.initrd is not None:
        _readable(st.initrd, f"could not load initrd '{st.initrd}'")
    if st.dtb is not None:
        _readable(st.dtb, f"Couldn't open dtb file {st.dtb}")
    cycles = None if not st.icount_shift else CycleModel(base=1 << st.icount_shift)
    try:
        options = RunOptions(pmu_version=CPUS[st.cpu], no_pmu=no_pmu, memory=st.memory, append=st.append,
                             dtb=st.dtb, initrd=st.initrd, virtio_console=virtio_console,
                             no_semihosting=not st.semihosting, cycles=cycles)
    except errors.UsageError as e:
        raise FrontError(str(e)) from None
    return Launch(st.kernel, options)


def _check_machine_props(props: dict) -> None:
    for key, value in props.items():
        if key == "gic-version":
            if value in ("2", "host"):
                raise FrontError(f"-machine gic-version={value}: vpmu's board has a GICv3 only")
            if value not in ("3", "max"):
                raise FrontError(f"-machine gic-version={value}: invalid GIC version")
        elif key == "accel":
            if value != "tcg":
                raise FrontError(f"-machine accel={value}: vpmu is an emulator: only tcg is available")
        elif key in MACHINE_SWITCHES:
            if _bool("-machine", key, value):
                raise FrontError(f"-machine {key}={value}: {MACHINE_SWITCHES[key]}")
        else:
            raise FrontError(f"-machine {key}={value}: property '{key}' is not supported by vpmu")


def _resolve_chardevs(st: _State) -> Optional[str]:
    """Connect the serial port, the virtio console and semihosting to their character
    devices (references are resolved after parsing: kvm-unit-tests names the testdev after the
    virtconsole that uses it); returns the console's backend for RunOptions.virtio_console."""
    serials = st.serials or (["mon:stdio"] if st.nographic and not st.nodefaults else [])
    if len(serials) > 1:
        raise FrontError(f"-serial {serials[1]}: vpmu's board has one UART")
    implicit_stdio = 0
    if not serials:
        raise FrontError("the UART has no backend: add -serial stdio or -nographic (vpmu has no display; "
                         "its UART writes to standard output)")
    serial = serials[0]
    if serial in ("stdio", "mon:stdio"):
        implicit_stdio = 1
    elif serial.startswith("chardev:"):
        _use(st, serial[len("chardev:"):], "serial", f"-serial {serial}", ("stdio",))
    else:
        raise FrontError(f"-serial {serial}: vpmu's UART writes to standard output (use -serial stdio)")
    if st.semihosting_chardev is not None:
        _use(st, st.semihosting_chardev, "semihosting", f"-semihosting-config chardev={st.semihosting_chardev}",
             ("stdio",))
    buses = [props for driver, props in st.devices if driver == "virtio-serial-device"]
    consoles = [props for driver, props in st.devices if driver == "virtconsole"]
    if len(buses) > 1:
        raise FrontError("-device virtio-serial-device: vpmu models one virtio serial device")
    if consoles and not buses:
        raise FrontError("-device virtconsole: No 'virtio-serial-bus' bus found for device 'virtconsole'")
    if len(consoles) > 1:
        raise FrontError("-device virtconsole: vpmu's console has port 0 only (one virtconsole)")
    backend: Optional[str] = None
    if buses:
        backend = "null"                      # a port without a character device drops what it gets
        if consoles and "chardev" in consoles[0]:
            cid = consoles[0]["chardev"]
            backend = _use(st, cid, "virtconsole", f"-device virtconsole,chardev={cid}", tuple(CHARDEVS))
    if implicit_stdio + sum(1 for c in st.chardevs.values() if c.backend == "stdio") > 1:
        raise FrontError("cannot use stdio by multiple character devices")
    return backend


def _use(st: _State, cid: str, user: str, where: str, backends: tuple) -> str:
    chardev = st.chardevs.get(cid)
    if chardev is None:
        raise FrontError(f"{where}: chardev '{cid}' not found")
    if chardev.backend not in backends:
        raise FrontError(f"{where}: a {chardev.backend} chardev cannot be used there (only {', '.join(backends)})")
    if chardev.users and not chardev.mux:
        raise FrontError(f"{where}: chardev '{cid}' is already in use by the {chardev.users[0]} (add mux=on)")
    chardev.users.append(user)
    return chardev.backend


def _readable(path: str, message: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise FrontError(f"{message}: {e.strerror}") from None


# ---------------------------------------------------------------------------------------------
# Running

def front_status(e: errors.VpmuError) -> int:
    """The exit status of a runner error under the front: QEMU's 1 for anything that stops the
    start (a bad option value, an image vpmu cannot load); vpmu's own status for what stops a
    running guest (102 fault loop, 104 WFI deadlock: QEMU would hang until the harness's timeout,
    which a harness also reports as a failure; 103 needs --max-insns, which the front does not
    set) and 106 (a vpmu bug)."""
    if isinstance(e, (errors.UsageError, errors.ImageError)):
        return FRONT_STATUS
    return e.status


def launch(run: Launch) -> int:
    """Run the guest; its UART goes to standard output.  Returns the exit status: the guest's
    (testdev ``(N << 1) | 1``, semihosting exit, PSCI SYSTEM_OFF 0); a runner error raises
    :class:`vpmu.errors.VpmuError` with the status :func:`front_status` gives."""
    from . import api
    try:
        cfg = run.options.to_machine_config()
        res = api.run_config(run.kernel, cfg, capture=False, keep_trace=False, raise_errors=True)
    except errors.VpmuError as e:
        raise errors.VpmuError(str(e), front_status(e)) from None
    return res.exit_status
