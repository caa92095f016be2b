"""``vpmu policy explain|lint|diff|export|import|impact`` (see vpmu.policy).

Exit status: 0 success / nothing to report, 1 ``lint`` found warnings, ``diff`` found
differences or ``impact`` saw a counter change, 2 bad input (one line on stderr).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from .. import api, policy, report
from ..config import PMU_VERSIONS, event_space
from ..filter import (STRUCT_SIZE, FilterRange, pack_filters, parse_filter, ranges_to_structs,
                      space_description, unpack_filters)
from ..policy import (DEFAULT_PMU_VERSION, PolicyError, bytes_from_file, check_space, diff_policies,
                      effective, explain_policy, fmt_range, impact_report, import_bytes, lint_policy,
                      names_in, read_policy_file, readable_structs)

from .output import add_format_options, render

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _policy_from(filters: Optional[list], policy: Optional[str], what: str = "") -> list[FilterRange]:
    if filters and policy:
        raise PolicyError(f"give the {what}policy either as --{what}filter items or as "
                          f"--{what}policy FILE, not both")
    if policy:
        return read_policy_file(policy)
    out = []
    for t in filters or []:
        try:
            out.append(parse_filter(t))
        except ValueError as e:
            raise PolicyError(str(e)) from None
    return out


def _nr_events(args) -> int:
    v = args.pmu_version
    if v not in PMU_VERSIONS:
        raise PolicyError(f"unknown --pmu-version {v!r} (use one of {', '.join(PMU_VERSIONS)})")
    return event_space(PMU_VERSIONS[v])


def _cmd_explain(args) -> int:
    ranges = _policy_from(args.filter, args.policy)
    sys.stdout.write(explain_policy(ranges, _nr_events(args)))
    return EXIT_OK


def _cmd_lint(args) -> int:
    ranges = _policy_from(args.filter, args.policy)
    nr = _nr_events(args)
    warns = lint_policy(ranges, nr)
    for w in warns:
        print(w)
    print(f"{len(warns)} warning(s) for {len(ranges)} filter(s) "
          f"({space_description(nr)})")
    return EXIT_FINDINGS if warns else EXIT_OK


def _cmd_diff(args) -> int:
    nr = _nr_events(args)
    a = _policy_from(args.filter, args.policy)
    b = _policy_from(args.new_filter, args.new_policy, "new-")
    diffs = diff_policies(a, b, nr)
    fmt = lambda rs: ", ".join(str(r) for r in rs) or "(no filter)"  # noqa: E731
    print(f"A: {fmt(a)}")
    print(f"B: {fmt(b)}")
    if not diffs:
        print("The policies allow and deny exactly the same events.")
        if bool(a) != bool(b):
            print("Note: only one of them installs a filter; PMCEID0/1[63:32] differ on a "
                  "10-bit guest and SET_PMU behaves differently.")
        return EXIT_OK
    print("Events decided differently (A -> B):")
    total = 0
    for first, last, va, vb in diffs:
        total += last - first + 1
        label = f"{'allow' if va else 'deny'} -> {'allow' if vb else 'deny'}"
        n = last - first + 1
        count = "" if n == 1 else f"({n} events) "
        print(f"  {fmt_range(first, last):<14} {label:<15} {count}{names_in(first, last)}".rstrip())
    print(f"{total} event(s) differ.")
    return EXIT_FINDINGS


def _cmd_export(args) -> int:
    ranges = _policy_from(args.filter, args.policy)
    check_space(ranges, _nr_events(args))
    structs = ranges_to_structs(ranges)
    data = pack_filters(structs)
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as e:
            raise PolicyError(f"cannot write {args.output}: {e.strerror or e}") from None
        print(f"wrote {len(structs)} struct kvm_pmu_event_filter ({len(data)} bytes) to {args.output}")
    if args.readable:
        sys.stdout.write(readable_structs(structs))
    elif not args.output:
        for s in structs:
            print(s.pack().hex())
    return EXIT_OK


def _cmd_import(args) -> int:
    data = bytes_from_file(args.file)
    if len(data) % STRUCT_SIZE:
        raise PolicyError(f"{args.file}: {len(data)} bytes is not a whole number of "
                          f"{STRUCT_SIZE}-byte struct kvm_pmu_event_filter entries")
    structs = unpack_filters(data)
    ranges = import_bytes(data)
    if any(s.pad != b"\0\0\0" for s in structs):
        print(f"{args.file}: note: nonzero pad bytes (KVM ignores them; re-export writes zeros)",
              file=sys.stderr)
    check_space(ranges, _nr_events(args))
    if args.args:
        print(" ".join(f"--filter {r}" for r in ranges))
    else:
        print(f"# {len(structs)} struct kvm_pmu_event_filter from {args.file}")
        for r in ranges:
            print(r)
    return EXIT_OK


def _cmd_impact(args) -> int:
    nr = _nr_events(args)
    ranges = _policy_from(args.filter, args.policy)
    flt = effective(ranges, nr)
    opts = {"pmu_version": args.pmu_version}
    if args.max_insns is not None:
        opts["max_insns"] = args.max_insns
    results = []
    for filters in ([], [str(r) for r in ranges]):
        try:
            res = api.run(args.elf, filters=filters, **opts)
        except Exception as e:                      # the runner's own errors: still one line
            raise PolicyError(f"{args.elf}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        if getattr(res, "error", None):
            raise PolicyError(f"{args.elf}: {res.error}")
        results.append(res)
    rep = impact_report(results[0], results[1], flt, PMU_VERSIONS[args.pmu_version])
    data = rep.to_dict()
    sys.stdout.write(render(args, data, rep.format,
                            lambda sep: report.records_to_sv(data["counters"], sep, policy.IMPACT_COLUMNS)))
    return EXIT_FINDINGS if rep.changed else EXIT_OK


def _wrap(func, name: str):
    def run(args) -> int:
        try:
            return func(args)
        except (PolicyError, ValueError, OSError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            sys.stderr.write(f"vpmu policy {name}: error: {msg}\n")
            return EXIT_USAGE
    return run


def _add_policy_args(p: argparse.ArgumentParser, prefix: str = "", what: str = "") -> None:
    p.add_argument(f"--{prefix}filter", action="append", default=[], metavar="allow|deny:FIRST[-LAST]",
                   help=f"one KVM_ARM_VCPU_PMU_V3_FILTER call of the {what}policy, in order "
                        "(hex, decimal or event names; inclusive; allow:none = zero-length)")
    p.add_argument(f"--{prefix}policy", metavar="FILE",
                   help=f"read the {what}policy from FILE: the binary export, its hex dump, or "
                        "one item per line with # comments ('-' = stdin)")


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``policy`` with sub-commands to an argparse subparsers object.  Each leaf sets
    ``func``: call ``args.func(args)`` and use the int it returns as the exit status."""
    top = subparsers.add_parser(
        "policy", help="evaluate KVM PMU event-filter policies (explain, lint, diff, export, import, impact)",
        description=policy.__doc__.split("\n\n")[0] + " Exit status: 0 ok, 1 findings "
                    "(lint warnings, diff differences, impact changes), 2 bad input.")
    sp = top.add_subparsers(dest="policy_command", metavar="COMMAND")
    sp.required = True

    def leaf(name: str, func, help_text: str, policy: bool = True) -> argparse.ArgumentParser:
        p = sp.add_parser(name, help=help_text, description=help_text)
        if policy:
            _add_policy_args(p)
        p.add_argument("--pmu-version", default=DEFAULT_PMU_VERSION, metavar="|".join(PMU_VERSIONS),
                       help="host PMU version: 3.0 has a 1024-event space, 3.1+ 65536 "
                            f"(default {DEFAULT_PMU_VERSION})")
        p.set_defaults(func=_wrap(func, name))
        return p

    leaf("explain", _cmd_explain, "show the effective policy: the default and every "
         "allowed/denied range with event names")
    leaf("lint", _cmd_lint, "warn about KVM filter pitfalls (cancelling, SW_INCR/CHAIN, "
         "CPU_CYCLES, event space, redundant or shadowed ranges); exit 1 if any warning")
    d = leaf("diff", _cmd_diff, "list the events two policies decide differently "
             "(A: --filter/--policy, B: --new-filter/--new-policy, default no filter); exit 1 if any")
    _add_policy_args(d, "new-", "new ")
    e = leaf("export", _cmd_export, "the struct kvm_pmu_event_filter array a VMM passes to KVM: "
             "hex on stdout (one 8-byte struct per line), binary with -o, or --readable")
    e.add_argument("-o", "--output", metavar="FILE", help="write the binary array to FILE")
    e.add_argument("--readable", action="store_true", help="print a table of the structs")
    i = leaf("import", _cmd_import, "turn an exported array (binary or hex) back into "
             "filter items", policy=False)
    i.add_argument("file", metavar="FILE", help="binary array or its hex dump ('-' = stdin)")
    i.add_argument("--args", action="store_true", help="print as --filter options on one line")
    m = leaf("impact", _cmd_impact, "run a guest without and with the policy and report which "
             "programmed counters changed and which programmed events the policy denies; "
             "exit 1 if a counter changed")
    m.add_argument("elf", metavar="GUEST.elf")
    m.add_argument("--max-insns", type=int, default=None, metavar="N")
    add_format_options(m, "the report (-x: the counter table)")
    return top
