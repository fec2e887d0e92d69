#!/usr/bin/env python3
"""Turn a QEMU `-M virt,dumpdtb=` blob into what /sys/firmware/fdt shows.

QEMU pads the blob to 1 MiB; the kernel's copy keeps the header's totalsize,
but our fixtures must stay small, so the free space after the strings block is
cut. Like the running kernel (drivers/of/fdt.c, arch/arm64/kernel/pi/kaslr_early.c),
`rng-seed` is overwritten with FDT_NOP tokens and `kaslr-seed` is zeroed.

usage: make_dtb.py IN.dtb OUT.dtb
"""
import struct
import sys

FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9

blob = bytearray(open(sys.argv[1], "rb").read())
magic, total, off_struct, off_strings, off_rsv, ver, lcv, cpu, sz_strings, sz_struct = struct.unpack_from(">10I", blob)
assert magic == 0xD00DFEED
strings = bytes(blob[off_strings:off_strings + sz_strings])

def name_at(off):
    return strings[off:strings.index(b"\0", off)].decode()

pos = off_struct
while True:
    (tok,) = struct.unpack_from(">I", blob, pos)
    if tok == FDT_BEGIN_NODE:
        end = blob.index(b"\0", pos + 4)
        pos = (end + 1 + 3) & ~3
    elif tok == FDT_PROP:
        length, nameoff = struct.unpack_from(">II", blob, pos + 4)
        nxt = (pos + 12 + length + 3) & ~3
        name = name_at(nameoff)
        if name == "rng-seed":
            for p in range(pos, nxt, 4):
                struct.pack_into(">I", blob, p, FDT_NOP)
        elif name == "kaslr-seed":
            blob[pos + 12:pos + 12 + length] = bytes(length)
        pos = nxt
    elif tok in (FDT_END_NODE, FDT_NOP):
        pos += 4
    elif tok == FDT_END:
        break
    else:
        raise SystemExit(f"bad token {tok:#x} at {pos:#x}")

new_total = off_strings + sz_strings
assert off_strings >= off_struct + sz_struct and off_rsv < off_struct
struct.pack_into(">I", blob, 4, new_total)
open(sys.argv[2], "wb").write(bytes(blob[:new_total]))
