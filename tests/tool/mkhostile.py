#!/usr/bin/env python3
"""Writes the hostile and broken archives of tests/tool/hostile.sh into DIR.

    mkhostile.py DIR OUTSIDE

OUTSIDE is a directory that no archive may touch.  Each archive is
DIR/<case>.tar (or .tar.gz); the case names say what it tries.
"""
import io
import os
import sys
import tarfile

out, outside = sys.argv[1], sys.argv[2]


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, dev=(0, 0), pax=None):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.linkname = link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.devmajor, ti.devminor = dev
    if pax:
        ti.pax_headers = pax
    return ti, data


def write(case, entries, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(os.path.join(out, case + ".tar"), "w", format=fmt) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)


D = tarfile.DIRTYPE
write("dotdot", [entry("ok"), entry("../escape", data=b"x")])
write("dotdot-nested", [entry("a", D, mode=0o755), entry("a/../../escape", data=b"x")])
write("absolute", [entry(outside + "/abs", data=b"x")])
write("symlink-parent-abs", [entry("l", tarfile.SYMTYPE, link=outside), entry("l/pwned", data=b"x")])
write("symlink-parent-rel", [entry("l", tarfile.SYMTYPE, link="../outside"), entry("l/pwned", data=b"x")])
write("symlink-parent-deep", [entry("d", D, mode=0o755), entry("d/l", tarfile.SYMTYPE, link="/"),
                              entry("d/l" + outside + "/pwned", data=b"x")])
write("hardlink-out", [entry("h", tarfile.LNKTYPE, link="../outside/target")])
write("hardlink-abs", [entry("h", tarfile.LNKTYPE, link=outside + "/target")])
write("hardlink-later", [entry("h", tarfile.LNKTYPE, link="later"), entry("later", data=b"x")])
write("hardlink-via-symlink", [entry("s", tarfile.SYMTYPE, link=outside), entry("h", tarfile.LNKTYPE, link="s/target")])
write("hardlink-dir", [entry("d", D, mode=0o755), entry("h", tarfile.LNKTYPE, link="d")])
write("under-a-file", [entry("f", data=b"x"), entry("f/x", data=b"y")])
write("symlink-over-dir", [entry("d", D, mode=0o755), entry("d/f", data=b"x"), entry("d", tarfile.SYMTYPE, link=outside)])
write("whiteout-dotdot", [entry(".wh..", data=b"")])
write("long-component", [entry("a" * 300, data=b"x")])
write("device", [entry("ok", data=b"x"), entry("null", tarfile.CHRTYPE, dev=(1, 3))])
write("outward-symlink", [entry("out", tarfile.SYMTYPE, link=outside + "/target"), entry("rel", tarfile.SYMTYPE, link="../../x"),
                          entry("f", data=b"x"), entry("g", tarfile.LNKTYPE, link="f"), entry("out2", data=b"y")])
write("overlay-xattr", [entry("d", D, mode=0o755, pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                                        "SCHILY.xattr.user.ok": "1"})])

# a good archive cut in the middle of a file's data
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for i in range(3):
        ti, d = entry("file%d" % i, data=bytes(range(256)) * 40)
        t.addfile(ti, io.BytesIO(d))
raw = buf.getvalue()
open(os.path.join(out, "truncated-data.tar"), "wb").write(raw[:512 * 3 + 5000])
open(os.path.join(out, "truncated-header.tar"), "wb").write(raw[:512 + 10240 + 200])

# a pax header that says it is 8 GiB long, then the end of the file
h = tarfile.TarInfo("PaxHeaders/x")
h.type = tarfile.XHDTYPE
h.size = 0o77777777777
open(os.path.join(out, "huge-pax.tar"), "wb").write(h.tobuf(tarfile.USTAR_FORMAT) + b"30 path=" + b"a" * 100)
# a pax record whose length runs past its header
h.size = 512
open(os.path.join(out, "bad-pax-record.tar"), "wb").write(
    h.tobuf(tarfile.USTAR_FORMAT) + (b"99999 path=x\n").ljust(512, b"\0") + entry("x")[0].tobuf() + b"\0" * 1024)
# a size field of 8 GiB in a plain header, no data
ti = tarfile.TarInfo("big")
ti.size = 0o77777777777
open(os.path.join(out, "huge-size.tar"), "wb").write(ti.tobuf(tarfile.USTAR_FORMAT) + b"x" * 100)
# a checksum that does not match
b = bytearray(entry("x", data=b"")[0].tobuf(tarfile.USTAR_FORMAT))
b[148:156] = b"0000000\0"
open(os.path.join(out, "bad-checksum.tar"), "wb").write(bytes(b) + b"\0" * 1024)
open(os.path.join(out, "garbage.tar"), "wb").write(os.urandom(4096))
open(os.path.join(out, "empty-file.tar"), "wb").write(b"")
# gzip cut short
import gzip
open(os.path.join(out, "truncated.tar.gz"), "wb").write(gzip.compress(raw)[:300])
