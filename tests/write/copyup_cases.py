# Copy-up: what triggers it, what it keeps.  Run by copyup.sh through
# scenario.py; every scenario is compared with the kernel's overlay.
import os
import struct

from scenario import Scenario, O, STD

OWN = dict(uid=1234, gid=5678)
CAP = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)   # v2, effective, cap_net_raw


def base(B):
    """Top lower (0): f, s -> f, d/{sib,sub/{g,g2}}, fifo p.
    Bottom lower (1): d/lowsib, d/sub/deep (merged dirs), e/x."""
    B.file(0, "f", "lower f\n", mode=0o640, xattrs={"user.k": b"v"}, **OWN)
    B.symlink(0, "s", "f", **OWN)
    B.dir(0, "d", mode=0o750, **OWN)
    B.file(0, "d/sib", "sibling\n", **OWN)
    B.dir(0, "d/sub", mode=0o711, **OWN)
    B.file(0, "d/sub/g", "lower g\n", mode=0o604, xattrs={"user.g": b"1"}, **OWN)
    B.file(0, "d/sub/g2", "lower g2\n", **OWN)
    B.fifo(0, "p", 0o620)
    B.dir(1, "d", mode=0o700)
    B.file(1, "d/lowsib", "low sibling\n")
    B.dir(1, "d/sub", mode=0o700)
    B.file(1, "d/sub/deep", "deep\n")
    B.file(1, "e/x", "x\n")


# mtime: exact when it is one the builder set ("old:<ns>"), else "new".
FULL = STD + ("mtime",)
UFULL = ("type", "mode", "uid", "gid", "size", "mtime")
TIMES = STD + ("mtime", "atime")
UTIMES = UFULL + ("atime",)


def after(target):
    """What to look at after a trigger on target."""
    parent = os.path.dirname(target)
    ops = [O.stat(target, FULL), O.read(target) if not target == "p" else O.stat("p"),
           O.ustat(target, UFULL), O.ulist("")]
    if parent:
        ops += [O.ulist(parent), O.ustat(parent, UFULL), O.stat(parent, FULL)]
    return ops


def trig(name, op, target="d/sub/g", desc="", extra=()):
    return Scenario("trigger-" + name, base, [op] + after(target) + list(extra),
                    desc=desc or "copy-up on " + name)


CASES = [
    trig("open-rdonly", O.open("d/sub/g", os.O_RDONLY), desc="no copy-up for a read-only open"),
    trig("open-wronly", O.open("d/sub/g", os.O_WRONLY),
         desc="open O_WRONLY, nothing written, copies up"),
    trig("open-rdwr", O.open("d/sub/g", os.O_RDWR)),
    trig("open-trunc", O.open("d/sub/g", os.O_WRONLY | os.O_TRUNC)),
    trig("open-trunc-write", O.open("d/sub/g", os.O_WRONLY | os.O_TRUNC, data="new\n")),
    trig("truncate", O.truncate("d/sub/g", 3)),
    trig("ftruncate-same-size", O.ftruncate("d/sub/g", 8)),
    trig("chmod", O.chmod("d/sub/g", 0o4710)),
    trig("chown", O.chown("d/sub/g", 42, 43)),
    trig("chown-uid-only", O.chown("d/sub/g", 42, -1)),
    trig("lchown-symlink", O.chown("s", 4321, 8765, follow=False), target="s",
         extra=[O.ustat("f"), O.stat("f", FULL)], desc="lchown copies up the link, not f"),
    trig("chown-through-symlink", O.chown("s", 4321, 8765), target="f",
         extra=[O.ustat("s")]),
    trig("utime-set", O.utime("d/sub/g", 1_200_000_000_123_456_789, 1_300_000_000_987_654_321)),
    trig("utime-now-omit", O.utime("d/sub/g", "now", "omit"),
         desc="UTIME_NOW atime, UTIME_OMIT mtime: mtime kept from the lower"),
    trig("utime-omit-set", O.utime("d/sub/g", "omit", 1_300_000_000_000_000_007),
         desc="UTIME_OMIT atime: atime kept from the lower"),
    trig("utime-omit-omit", O.utime("d/sub/g", "omit", "omit")),
    trig("utime-now-now", O.utime("d/sub/g", "now", "now")),
    trig("lutime-symlink", O.utime("s", 1_200_000_000_000_000_000, 1_250_000_000_000_000_000,
                                   follow=False), target="s"),
    trig("setxattr", O.setxattr("d/sub/g", "user.new", "val")),
    trig("removexattr", O.removexattr("d/sub/g", "user.g")),
    trig("removexattr-missing", O.removexattr("d/sub/g", "user.none"),
         desc="ENODATA; does it copy up?"),
    trig("link", O.link("d/sub/g", "d/sub/hl"), extra=[O.stat("d/sub/hl", FULL)]),
    trig("rename", O.rename("d/sub/g", "d/sub/renamed"), target="d/sub/renamed"),
    trig("fifo-chmod", O.chmod("p", 0o600), target="p", desc="special file copy-up"),
    Scenario("trigger-chardev-chmod",
             lambda B: (base(B), os.mknod(B.p(0, "nulldev"), 0o20666, os.makedev(1, 3))),
             [O.chmod("nulldev", 0o600), O.stat("nulldev", FULL + ("rdev",)),
              O.ustat("nulldev", UFULL + ("rdev",))], desc="a device node copies up as one"),
    trig("dir-chmod", O.chmod("d/sub", 0o755), target="d/sub",
         desc="a directory copy-up takes no children"),
    trig("dir-setxattr", O.setxattr("d/sub", "user.dx", "1"), target="d/sub"),
    trig("dir-utime", O.utime("d/sub", 1_200_000_000_000_000_000, "omit"), target="d/sub"),

    # Namespace changes inside a lower dir copy up only the parent chain.
    Scenario("parents-create", base,
             [O.create("d/sub/new", "n\n")] + after("d/sub/new") +
             [O.ustat("d", UFULL), O.stat("d", FULL), O.ulist("d/sub")],
             desc="create in a lower dir: only d and d/sub copied up, with lower attrs"),
    Scenario("parents-mkdir", base,
             [O.mkdir("d/sub/nd", 0o700)] + after("d/sub/nd") + [O.ustat("d", UFULL)]),
    Scenario("parents-unlink", base,
             [O.unlink("d/sub/g"), O.ulist("d/sub"), O.ulist("d"), O.ustat("d/sub", UFULL),
              O.ustat("d", UFULL), O.stat("d", FULL), O.listdir("d/sub")]),
    Scenario("parents-rename", base,
             [O.rename("d/sub/g2", "d/sub/g3"), O.ulist("d/sub"), O.ulist("d"),
              O.ustat("d/sub", UFULL), O.ustat("d", UFULL), O.stat("d", FULL),
              O.listdir("d/sub")]),
    Scenario("parents-symlink", base,
             [O.symlink("../f", "d/sub/ln"), O.ulist("d/sub"), O.ustat("d", UFULL),
              O.stat("d/sub/ln", ("type", "uid", "gid", "size"))]),

    # What a copy-up keeps.
    Scenario("keep-holes", lambda B: B.sparse(0, "big", 64 << 20, ((0, b"head"),
                                                                    (32 << 20, b"mid"),
                                                                    ((64 << 20) - 4, b"tail"))),
             [O.write("big", "!"), O.ustat("big", ("size", "sparse")),
              O.stat("big", ("size", "sparse")), O.read("big")],
             desc="a sparse file stays sparse in the upper"),
    Scenario("keep-holes-chmod", lambda B: B.sparse(1, "big", 16 << 20, ((8 << 20, b"x"),)),
             [O.chmod("big", 0o600), O.ustat("big", ("size", "sparse"))]),
    Scenario("keep-suid-sgid",
             lambda B: (B.file(0, "su", "suid\n", mode=0o4755, **OWN),
                        B.file(0, "sg", "sgid\n", mode=0o2755, **OWN),
                        B.file(1, "sgx", "sgid no gx\n", mode=0o2644, **OWN),
                        B.dir(0, "sd", mode=0o3775, **OWN)),
             [O.setxattr("su", "user.t", "1"), O.setxattr("sg", "user.t", "1"),
              O.open("sgx", os.O_WRONLY), O.setxattr("sd", "user.t", "1"),
              O.ustat("su", UFULL), O.ustat("sg", UFULL), O.ustat("sgx", UFULL),
              O.ustat("sd", UFULL), O.stat("su"), O.stat("sg"), O.stat("sgx"), O.stat("sd")],
             desc="setuid/setgid/sticky survive a copy-up"),
    Scenario("write-suid-as-root",
             lambda B: (B.file(0, "su", "suid\n", mode=0o6755, **OWN),),
             [O.write("su", "more\n"), O.stat("su"), O.ustat("su", UFULL)],
             desc="root (CAP_FSETID) writing a setuid file keeps the bits"),
    Scenario("keep-owner-times",
             lambda B: (B.file(1, "t/a", "a\n", **OWN), B.dir(1, "t", mode=0o751, **OWN),
                        B.times(1, "t/a", 1_111_111_111_222_333_444, 1_122_222_222_333_444_555)),
             [O.stat("t/a", TIMES), O.setxattr("t/a", "user.x", "1"), O.stat("t/a", TIMES),
              O.ustat("t/a", UTIMES), O.ustat("t", UFULL), O.stat("t", FULL)],
             desc="owner, atime and mtime (ns) copied; the parent's times kept"),
    Scenario("keep-times-on-write-open",
             lambda B: (B.file(0, "a", "a\n"),
                        B.times(0, "a", 1_111_111_111_000_000_001, 1_122_222_222_000_000_002)),
             [O.open("a", os.O_WRONLY), O.stat("a", TIMES), O.ustat("a", UTIMES)]),
    Scenario("lower-atime-untouched",
             lambda B: (B.file(0, "r/a", "a\n"), B.file(1, "r/b", "b\n"), B.dir(1, "q")),
             [O.read("r/a"), O.read("r/b"), O.listdir("r"), O.listdir("q"),
              O.lstat_lower(0, "r/a"), O.lstat_lower(1, "r/b"), O.lstat_lower(0, "r"),
              O.lstat_lower(1, "r"), O.lstat_lower(1, "q")],
             desc="reading through the union leaves lower atimes alone (O_NOATIME)"),
    Scenario("keep-xattrs",
             lambda B: B.file(0, "x", "x\n", mode=0o755,
                              xattrs={"user.a": b"alpha", "user.bin": bytes(range(0, 256, 7)),
                                      "security.capability": CAP, "trusted.other": b"t"}),
             [O.utime("x", 1_200_000_000_000_000_000, "omit"), O.listxattr("x"),
              O.getxattr("x", "security.capability"), O.getxattr("x", "user.bin"),
              O.getxattr("x", "trusted.other"), O.ustat("x", UFULL)],
             desc="user.*, trusted.* and security.capability copied up"),
    Scenario("keep-xattrs-symlink-dir",
             lambda B: (B.symlink(0, "sl", "nowhere"),
                        B.dir(0, "xd", xattrs={"user.d": b"dv", "trusted.t": b"1"}),
                        B.file(0, "xd/f", "f")),
             [O.setxattr("sl", "trusted.s", "sv", follow=False), O.chmod("xd", 0o700),
              O.listxattr("sl", follow=False), O.listxattr("xd"), O.ustat("xd", UFULL)]),
    Scenario("parent-mtime-kept",
             lambda B: (B.file(1, "p1/p2/p3/f", "f\n"), B.file(1, "p1/p2/other", "o\n")),
             [O.stat("p1/p2/p3", FULL), O.write("p1/p2/p3/f", "w\n"),
              O.stat("p1", FULL), O.stat("p1/p2", FULL), O.stat("p1/p2/p3", FULL),
              O.ustat("p1", UFULL), O.ustat("p1/p2", UFULL), O.ustat("p1/p2/p3", UFULL)],
             desc="copying a file up leaves its parents' mtimes as they were"),
    Scenario("longname-deep",
             lambda B: B.file(1, "a/b/c/d/e/f/g/h/i/j/" + "N" * 255, "long\n", **OWN),
             [O.write("a/b/c/d/e/f/g/h/i/j/" + "N" * 255, "more\n"),
              O.stat("a/b/c/d/e/f/g/h/i/j/" + "N" * 255, FULL),
              O.rename("a/b/c/d/e/f/g/h/i/j/" + "N" * 255, "a/b/c/d/e/f/g/h/i/j/" + "M" * 255),
              O.create("a/b/c/d/e/f/g/h/i/j/" + "O" * 255, "o"),
              O.create("a/b/c/d/e/f/g/h/i/j/" + "P" * 256, "p"),
              O.listdir("a/b/c/d/e/f/g/h/i/j")],
             desc="255-byte names 10 levels down"),
    Scenario("lower-file-in-both-layers",
             lambda B: (B.file(0, "both", "top\n"), B.file(1, "both", "bottom\n")),
             [O.write("both", "+\n"), O.read("both")],
             desc="copy-up takes the top lower's copy"),
    Scenario("empty-and-bigger-files",
             lambda B: (B.file(0, "empty", ""), B.file(1, "onemeg", b"\x5a" * (1 << 20) +
                                                       b"end")),
             [O.chmod("empty", 0o600), O.write("onemeg", "x"), O.stat("onemeg"),
              O.ustat("onemeg", ("size",))]),
]
