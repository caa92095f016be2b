"""QEMU's edits to a device tree the user passes (``--dtb``), on the flattened blob.

QEMU's virt board loads a ``-dtb FILE`` instead of its own tree but still edits it as it
edits its own (hw/arm/boot.c ``arm_load_dtb``, docs/research/qemu-boot.md section 4):

- every root node named ``memory`` or ``memory@...`` is removed and ``memory@<RAM base>``
  (``device_type = "memory"``, ``reg`` = RAM base and size in the root's cells) is added;
- ``/chosen`` is created if missing; ``bootargs`` is set from a non-empty ``-append``, and
  ``linux,initrd-start``/``linux,initrd-end`` (root ``#address-cells`` wide) with ``-initrd``;
- ``/psci`` is replaced by the board's (the one :mod:`vpmu.dtb` generates);
- every ``rng-seed`` property gets new bytes of the same length (``qemu_fdt_randomize_seeds``
  at reset; here from the run's ``--seed``, so runs stay reproducible);
- the blob is opened into a buffer of 2 x (file size + 10000) bytes
  (``load_device_tree``), all of which is copied to guest memory.

Everything else (other nodes, property bytes, the memory reservation block,
``boot_cpuid_phys``) is kept as it was.  The blob is parsed strictly (any inconsistency is a
:class:`FdtError` with a one-line reason) because it comes from the user; QEMU refuses the
same trees (``#address-cells``/``#size-cells`` missing or 0, a 32-bit ``#size-cells`` with
4 GiB of RAM, an initrd address that does not fit the root's cells).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable, Optional

FDT_MAGIC = 0xD00D_FEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
HEADER = struct.Struct(">10I")             # magic .. size_dt_struct (version 17 header)
HEADER_V16 = 36                            # a version 16 header has no size_dt_struct
FDT_VERSION, FDT_LAST_COMP_VERSION = 17, 16
QEMU_DTB_SLACK = 10000                     # load_device_tree: (size + 10000) * 2
MAX_DEPTH = 64                             # deeper than any real tree (libfdt: FDT_MAX_DEPTH 64)


class FdtError(ValueError):
    """The blob is not a device tree we can edit (the message says why)."""


@dataclass
class Node:
    name: str
    props: list[tuple[str, bytes]] = field(default_factory=list)
    children: list["Node"] = field(default_factory=list)

    def get(self, name: str) -> Optional[bytes]:
        return next((v for k, v in self.props if k == name), None)

    def set_first(self, name: str, value: bytes) -> None:
        """Set a property: in place if it exists, else first in the node (libfdt's
        fdt_setprop inserts a new property before the others)."""
        for i, (k, _) in enumerate(self.props):
            if k == name:
                self.props[i] = (name, value)
                return
        self.props.insert(0, (name, value))

    def child(self, name: str) -> Optional["Node"]:
        return next((c for c in self.children if c.name == name), None)


@dataclass
class Tree:
    root: Node
    reserved: list[tuple[int, int]]
    boot_cpuid_phys: int


# --- parsing -----------------------------------------------------------------------------------

def _cstr(buf: bytes, off: int, end: int, what: str) -> tuple[str, int]:
    z = buf.find(b"\0", off, end)
    if z < 0:
        raise FdtError(f"unterminated {what} at offset {off:#x}")
    try:
        return buf[off:z].decode("ascii"), z + 1
    except UnicodeDecodeError:
        raise FdtError(f"{what} at offset {off:#x} is not ASCII") from None


def parse(blob: bytes) -> Tree:
    """The tree of a version 16 or 17 blob (raises FdtError)."""
    if len(blob) < HEADER_V16:
        raise FdtError("too short for a device tree header")
    magic, total, off_struct, off_strings, off_rsv, version, last_comp, boot_cpu, size_strings = \
        struct.unpack_from(">9I", blob)
    if magic != FDT_MAGIC:
        raise FdtError("not a device tree blob (bad magic)")
    if version < 16 or last_comp > FDT_VERSION:
        raise FdtError(f"device tree version {version} (last compatible {last_comp}) is not supported: "
                       f"use version 16 or 17 (dtc's default)")
    if total > len(blob):
        raise FdtError(f"the header's totalsize {total} exceeds the file ({len(blob)} bytes)")
    end_struct = total
    if version >= 17:
        if len(blob) < HEADER.size:
            raise FdtError("too short for a version 17 header")
        end_struct = off_struct + HEADER.unpack_from(blob)[9]
    for name, off, size in (("structure block", off_struct, end_struct - off_struct),
                            ("strings block", off_strings, size_strings),
                            ("memory reservation block", off_rsv, 16)):
        if off < HEADER_V16 or size < 0 or off + size > total:
            raise FdtError(f"the {name} lies outside the blob")
    end_strings = off_strings + size_strings

    reserved = []
    off = off_rsv
    while True:
        if off + 16 > total:
            raise FdtError("unterminated memory reservation block")
        addr, size = struct.unpack_from(">QQ", blob, off)
        off += 16
        if addr == 0 and size == 0:
            break
        reserved.append((addr, size))

    root: Optional[Node] = None
    stack: list[Node] = []
    off = off_struct
    while True:
        if off + 4 > end_struct:
            raise FdtError("the structure block ends without FDT_END")
        tag = struct.unpack_from(">I", blob, off)[0]
        off += 4
        if tag == FDT_BEGIN_NODE:
            name, off = _cstr(blob, off, end_struct, "node name")
            off = (off + 3) & ~3
            node = Node(name)
            if stack:
                stack[-1].children.append(node)
            elif root is None:
                root = node
            else:
                raise FdtError("more than one root node")
            stack.append(node)
            if len(stack) > MAX_DEPTH:
                raise FdtError(f"nodes nested deeper than {MAX_DEPTH}")
        elif tag == FDT_END_NODE:
            if not stack:
                raise FdtError(f"FDT_END_NODE without a node at offset {off - 4:#x}")
            stack.pop()
        elif tag == FDT_PROP:
            if not stack or off + 8 > end_struct:
                raise FdtError(f"property outside a node at offset {off - 4:#x}")
            size, nameoff = struct.unpack_from(">II", blob, off)
            off += 8
            if off + size > end_struct:
                raise FdtError(f"property value at offset {off:#x} runs past the structure block")
            if nameoff >= size_strings:
                raise FdtError(f"property name offset {nameoff} is outside the strings block")
            pname, _ = _cstr(blob, off_strings + nameoff, end_strings, "property name")
            stack[-1].props.append((pname, bytes(blob[off:off + size])))
            off = (off + size + 3) & ~3
        elif tag == FDT_NOP:
            continue
        elif tag == FDT_END:
            break
        else:
            raise FdtError(f"unknown structure tag {tag:#x} at offset {off - 4:#x}")
    if root is None or stack:
        raise FdtError("the structure block has no complete root node")
    return Tree(root, reserved, boot_cpu)


# --- writing -----------------------------------------------------------------------------------

def serialize(tree: Tree, total_size: Optional[int] = None) -> bytes:
    """A version 17 blob of ``tree``, padded to ``total_size`` when given."""
    strings = bytearray()
    where: dict[str, int] = {}

    def name_off(name: str) -> int:
        if name not in where:
            where[name] = len(strings)
            strings.extend(name.encode("ascii") + b"\0")
        return where[name]

    out = bytearray()

    def emit(node: Node) -> None:
        out.extend(struct.pack(">I", FDT_BEGIN_NODE))
        out.extend(node.name.encode("ascii") + b"\0")
        out.extend(bytes(-len(out) % 4))
        for name, value in node.props:
            out.extend(struct.pack(">III", FDT_PROP, len(value), name_off(name)))
            out.extend(value + bytes(-len(value) % 4))
        for c in node.children:
            emit(c)
        out.extend(struct.pack(">I", FDT_END_NODE))

    root = Node("", tree.root.props, tree.root.children)   # the root's name is empty on disk
    emit(root)
    out.extend(struct.pack(">I", FDT_END))
    rsv = b"".join(struct.pack(">QQ", a, s) for a, s in tree.reserved) + bytes(16)
    off_rsv = HEADER.size + (-HEADER.size % 8)
    off_struct = off_rsv + len(rsv)
    off_strings = off_struct + len(out)
    total = off_strings + len(strings)
    size = total if total_size is None else total_size
    if size < total:
        raise FdtError(f"the edited tree ({total} bytes) does not fit in {size} bytes")
    head = HEADER.pack(FDT_MAGIC, size, off_struct, off_strings, off_rsv, FDT_VERSION,
                       FDT_LAST_COMP_VERSION, tree.boot_cpuid_phys, len(strings), len(out))
    blob = head + bytes(off_rsv - HEADER.size) + rsv + bytes(out) + bytes(strings)
    return blob + bytes(size - len(blob))


# --- QEMU's edits ------------------------------------------------------------------------------

def _cells(value: int, ncells: int, what: str) -> bytes:
    if ncells not in (1, 2) or value >> (32 * ncells):
        raise FdtError(f"{what} {value:#x} does not fit the root's {ncells} address/size cells")
    return value.to_bytes(4 * ncells, "big")


def _u32(node: Node, name: str) -> int:
    v = node.get(name)
    if v is None or len(v) != 4:
        raise FdtError(f"the root node has no 32-bit {name} property")
    return struct.unpack(">I", v)[0]


def qemu_edits(blob: bytes, *, ram_base: int, ram_size: int, bootargs: Optional[str],
               initrd: Optional[tuple[int, int]], psci: Node,
               rng_seed: Callable[[int], bytes] = bytes) -> bytes:
    """The blob QEMU's arm_load_dtb would copy into guest memory for ``-dtb`` (module
    docstring): edited, then padded to QEMU's buffer size.  ``psci`` is the board's node;
    ``rng_seed(n)`` gives the n bytes that replace an ``rng-seed`` property."""
    tree = parse(blob)
    root = tree.root
    acells, scells = _u32(root, "#address-cells"), _u32(root, "#size-cells")
    if acells == 0 or scells == 0:
        raise FdtError("#address-cells or #size-cells is 0 in the root node")
    if scells < 2 and ram_size >= 4 << 30:
        raise FdtError("a 32-bit #size-cells cannot describe 4 GiB of RAM or more")
    kept = [c for c in root.children if c.name != "memory" and not c.name.startswith("memory@")
            and c.name != "psci"]
    memory = Node(f"memory@{ram_base:x}", [("device_type", b"memory\0"),
                                            ("reg", _cells(ram_base, acells, "the RAM base")
                                             + _cells(ram_size, scells, "the RAM size"))])
    # libfdt adds a subnode first among its parent's: memory, then /chosen if missing, then /psci
    kept.insert(0, memory)
    chosen = root.child("chosen")
    if chosen is None:
        chosen = Node("chosen")
        kept.insert(0, chosen)
    if bootargs:
        chosen.set_first("bootargs", bootargs.encode("ascii") + b"\0")
    if initrd is not None:
        chosen.set_first("linux,initrd-start", _cells(initrd[0], acells, "the initrd start"))
        chosen.set_first("linux,initrd-end", _cells(initrd[1], acells, "the initrd end"))
    root.children = [psci] + kept
    stack = [root]
    while stack:
        node = stack.pop()
        node.props = [(k, rng_seed(len(v)) if k == "rng-seed" else v) for k, v in node.props]
        stack.extend(node.children)
    return serialize(tree, 2 * (len(blob) + QEMU_DTB_SLACK))
