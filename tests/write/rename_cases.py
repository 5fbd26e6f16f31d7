# rename(2) and renameat2(2), redirects, opaque targets; layerfs against
# kernel overlay.  Run by rename.sh through scenario.py.
from scenario import Scenario, O, STD

NOREPLACE, EXCHANGE = 1, 2
UA = ("type", "mode", "uid", "gid")


def base(B):
    """Top lower (0): f, g, s -> f, d/{a,b,sub/c}, e/ (empty), both/{t}, full/{z}.
    Bottom lower (1): h, both/{b, bd/{q}}, only1/{x, y, in/{w}}, e2/ (empty)."""
    B.file(0, "f", "f\n", uid=11, gid=12)
    B.file(0, "g", "g\n")
    B.symlink(0, "s", "f")
    B.file(0, "d/a", "a\n")
    B.file(0, "d/b", "b\n")
    B.file(0, "d/sub/c", "c\n")
    B.dir(0, "d", mode=0o750, uid=3, gid=4)
    B.dir(0, "e", mode=0o711)
    B.file(0, "both/t", "t\n")
    B.file(0, "full/z", "z\n")
    B.file(1, "h", "h\n")
    B.file(1, "both/b", "b\n")
    B.file(1, "both/bd/q", "q\n")
    B.file(1, "only1/x", "x\n")
    B.file(1, "only1/y", "y\n")
    B.file(1, "only1/in/w", "w\n")
    B.dir(1, "e2")


LONG = "L" * 252


def long_redirect(B):
    """A lower hard link and a lower dir beside a lower dir whose path makes
    a redirect longer than the kernel's 256 bytes."""
    B.file(0, "i/f", "x\n", mode=0o4755, uid=1, gid=1000)
    B.hardlink(0, "i/f2", "i/f")
    B.file(0, "i/dir2/a", "a\n")
    B.file(0, "i/dir/" + LONG + "/lib", "l\n")


CASES = [
    Scenario("file-lower", base,
             [O.rename("f", "f2"), O.ustat("f", UA + ("rdev",)), O.ustat("f2", UA),
              O.read("f2"), O.stat("f2"), O.stat("f"), O.listdir("")],
             desc="lower file: copy-up to the new name, whiteout at the old one"),
    Scenario("file-upper", base,
             [O.create("n", "n"), O.rename("n", "n2"), O.ustat("n"), O.ulist("")],
             desc="upper-only file: no whiteout"),
    Scenario("file-lower-into-subdir", base,
             [O.rename("h", "only1/h"), O.ulist(""), O.ulist("only1"), O.read("only1/h")]),
    Scenario("file-over-lower", base,
             [O.create("n", "new"), O.rename("n", "g"), O.read("g"), O.ustat("g", UA + ("size",)),
              O.rename("f", "h"), O.read("h"), O.ustat("f", UA), O.listdir("")],
             desc="over an existing lower file (upper and lower sources)"),
    Scenario("symlink-lower", base,
             [O.rename("s", "s2"), O.readlink("s2"), O.read("s2"), O.ustat("s", UA)]),
    Scenario("noreplace", base,
             [O.renameat2("f", "g", NOREPLACE), O.renameat2("f", "h", NOREPLACE),
              O.renameat2("f", "new", NOREPLACE), O.read("new"), O.renameat2("g", "d", NOREPLACE),
              O.create("u1", "u"), O.renameat2("u1", "g", NOREPLACE), O.ulist("")],
             desc="RENAME_NOREPLACE: EEXIST on a lower-only target"),
    Scenario("exchange-lower-lower", base,
             [O.renameat2("f", "h", EXCHANGE), O.read("f"), O.read("h"), O.stat("f"),
              O.stat("h"), O.ulist("")],
             desc="RENAME_EXCHANGE of two lower files"),
    Scenario("exchange-lower-upper", base,
             [O.create("u1", "upper one"), O.renameat2("g", "u1", EXCHANGE), O.read("g"),
              O.read("u1"), O.ulist(""), O.ustat("g", UA)]),
    Scenario("exchange-missing", base,
             [O.renameat2("f", "nope", EXCHANGE), O.ulist("")]),
    Scenario("exchange-file-dir", base,
             [O.mkdir("nd"), O.renameat2("g", "nd", EXCHANGE),
              O.stat("g"), O.stat("nd")]),
    Scenario("exchange-lower-dirs", base,
             [O.renameat2("d", "only1", EXCHANGE), O.listdir("d"), O.listdir("only1"),
              O.read("d/x"), O.read("only1/a")],
             desc="exchange of two lower dirs (both need redirects)"),
    Scenario("exchange-upper-dir-lower-dir", base,
             [O.mkdir("nd"), O.create("nd/n", "n"), O.renameat2("nd", "only1", EXCHANGE),
              O.listdir("nd"), O.listdir("only1"), O.read("nd/x"), O.read("only1/n")]),
    Scenario("three-lowers-merged-dir",
             lambda B: (B.file(0, "m/top", "0"), B.file(1, "m/mid", "1"), B.file(2, "m/bot", "2"),
                        B.file(2, "m/sub/deep", "d"), B.file(1, "m/sub/mid", "m"),
                        B.whiteout(1, "m/gone"), B.file(2, "m/gone", "hidden")),
             [O.mkdir("x"), O.rename("m", "x/m2"),
              O.listdir("x/m2"), O.listdir("x/m2/sub"), O.read("x/m2/bot"),
              O.rename("x/m2/sub", "sub2"), O.listdir("sub2"), O.read("sub2/deep"),
              O.rename("x", "x2"), O.listdir("x2/m2")],
             nlowers=3, desc="redirects across three lowers, with a lower whiteout"),
    Scenario("dir-same-parent", base,
             [O.rename("d", "d2"), O.listdir("d2"), O.read("d2/a"), O.listdir("d2/sub"),
              O.read("d2/sub/c"), O.stat("d2", STD + ("mtime",)), O.stat("d"),
              O.ustat("d", UA + ("rdev",)), O.getxattr("d2", "trusted.overlay.redirect")],
             desc="lower dir renamed in its parent: redirect"),
    Scenario("dir-across-parents", base,
             [O.rename("only1", "both/o"), O.listdir("both/o"), O.read("both/o/x"),
              O.read("both/o/in/w"), O.listdir("both"), O.listdir("")],
             desc="lower dir renamed into another dir: absolute redirect"),
    Scenario("dir-renamed-twice", base,
             [O.rename("d", "d2"), O.rename("d2", "both/d3"), O.rename("both/d3", "e2x"),
              O.listdir("e2x"), O.read("e2x/b"), O.read("e2x/sub/c"),
              O.write("e2x/sub/c", "more\n"), O.create("e2x/new", "n"),
              O.unlink("e2x/a"), O.listdir("e2x"), O.listdir("e2x/sub"), O.listdir("")],
             desc="redirected dir renamed again, then its children used"),
    Scenario("dir-renamed-back", base,
             [O.rename("d", "d2"), O.rename("d2", "d"), O.listdir("d"), O.ulist("")],
             desc="rename there and back: what is left of the redirect"),
    Scenario("dir-merged-renamed", base,
             [O.rename("both", "both2"), O.listdir("both2"), O.read("both2/t"),
              O.read("both2/b"), O.listdir("both2/bd"), O.rename("both2/bd", "bd"),
              O.listdir("bd"), O.read("bd/q")],
             desc="a dir with copies in both lowers renamed; a child of it moved out"),
    Scenario("dir-renamed-then-old-name-reused", base,
             [O.rename("only1", "o2"), O.mkdir("only1"), O.listdir("only1"),
              O.create("only1/x", "fresh"), O.listdir("o2"), O.read("o2/x"), O.read("only1/x")],
             desc="mkdir at a renamed dir's old name: opaque, not the old contents"),
    Scenario("dir-with-copied-up-child", base,
             [O.write("d/a", "changed\n"), O.rename("d", "dx"), O.read("dx/a"), O.read("dx/b"),
              O.listdir("dx")]),
    Scenario("deep-subdir-moved-up", base,
             [O.rename("only1/in", "in2"), O.listdir("only1"), O.listdir("in2"),
              O.read("in2/w"), O.rename("d/sub", "only1/sub2"), O.listdir("only1/sub2"),
              O.read("only1/sub2/c")]),
    Scenario("upper-dir-over-empty-lower", base,
             [O.mkdir("n"), O.create("n/x", "x"), O.rename("n", "e"), O.listdir("e"),
              O.read("e/x"), O.ustat("e", UA), O.stat("e")],
             desc="upper dir over an empty lower dir: the result is opaque"),
    Scenario("lower-dir-over-empty-lower", base,
             [O.rename("only1", "e"), O.listdir("e"), O.read("e/y"), O.rename("full", "e2"),
              O.listdir("e2")]),
    Scenario("dir-over-nonempty", base,
             [O.mkdir("n"), O.rename("n", "d"), O.rename("n", "both"), O.rename("e", "full"),
              O.listdir("d")],
             desc="ENOTEMPTY onto a dir with entries in any layer"),
    Scenario("dir-over-whiteouts-only", base,
             [O.unlink("full/z"), O.mkdir("n"), O.rename("n", "full"), O.listdir("full"),
              O.ulist("full")]),
    Scenario("lower-dir-over-whiteouts-only", base,
             [O.unlink("full/z"), O.rename("only1", "full"), O.listdir("full"), O.read("full/x"),
              O.ulist("full")]),
    Scenario("type-mismatch", base,
             [O.rename("f", "d"), O.rename("d", "f"), O.rename("e", "d/sub"),
              O.rename("d", "d/sub/inside"), O.rename("f", "f/x"), O.rename("nope", "x")],
             desc="EISDIR, ENOTDIR, EINVAL, ENOENT"),
    Scenario("rename-in-redirected-dir", base,
             [O.rename("d", "d2"), O.rename("d2/a", "d2/a2"), O.rename("d2/b", "b-out"),
              O.rename("d2/sub", "d2/sub2"), O.listdir("d2"), O.listdir("d2/sub2"),
              O.read("d2/a2"), O.read("b-out"), O.read("d2/sub2/c")]),
    Scenario("rename-same-name", base,
             [O.rename("f", "f"), O.rename("d", "d"), O.ulist("")],
             desc="rename onto itself: a no-op, nothing copied up"),
    Scenario("lower-hardlinks-rename-and-exchange", lambda B: (
                 B.file(0, "h/c", "c\n"), B.hardlink(0, "h/sub/c", "h/c"),
                 B.hardlink(0, "h/c2", "h/c"), B.hardlink(0, "h/c3", "h/c")),
             [O.renameat2("h/c", "h/sub/c", EXCHANGE), O.stat("h/c"), O.stat("h/sub/c"),
              O.rename("h/c2", "h/c3"), O.listdir("h"), O.stat("h/c3"), O.ulist("h")],
             desc="two names of a lower hard link are two objects (index=off)"),
    Scenario("hardlink-rename-same-inode", base,
             [O.create("u", "u"), O.link("u", "u2"), O.rename("u", "u2"), O.listdir(""),
              O.stat("u2")]),

    # redirect_dir=off: a dir with lower copies cannot move.
    Scenario("redirect-off", base,
             [O.rename("d", "d2"), O.rename("only1", "both/o"), O.rename("both", "both2"),
              O.mkdir("n"), O.create("n/f", "f"), O.rename("n", "n2"), O.listdir("n2"),
              O.rename("f", "f2"), O.rename("e", "e3"), O.listdir("")],
             lfs_opts=["redirect_dir=off"], k_opts=["redirect_dir=off"],
             desc="redirect_dir=off: EXDEV for dirs with lower copies"),
    # The kernel copies up both sides (and sets the source's redirect)
    # before the too-long redirect fails the rename with EXDEV: the
    # hard link is broken and the copies stay.
    Scenario("exchange-long-redirect-copies-up-first", long_redirect,
             [O.renameat2("i/f", "i/dir/" + LONG, EXCHANGE), O.stat("i/f"), O.stat("i/f2"),
              O.ulist("i"), O.ulist("i/dir")]),
    Scenario("exchange-long-redirect-source-redirect-stays", long_redirect,
             [O.renameat2("i/dir2", "i/dir/" + LONG, EXCHANGE), O.ulist("i"), O.ulist("i/dir"),
              O.listdir("i/dir2")]),
    # Renaming over an upper dir that holds only whiteouts: the kernel
    # first swaps it for an empty opaque dir, then the too-long redirect
    # fails; the swap stays (parent mtime, opaque, no origin).
    Scenario("over-whiteouts-dir-then-long-redirect", lambda B: (
                 B.file(0, "p/w/x", "x\n"), B.file(0, "qqqqq/" + LONG + "/k", "k\n")),
             [O.rename("p/w/x", "p/x2"), O.rename("qqqqq/" + LONG, "p/w"), O.ulist("p"),
              O.ustat("p/w", ("type", "mode")), O.stat("p"), O.listdir("p/w")]),
    # The same with the parent's attributes cached first: after the
    # failure the mount must show the times the swap gave the parent.
    Scenario("over-whiteouts-dir-then-long-redirect-cached-parent", lambda B: (
                 B.file(1, "Y" * 255 + "/d/e", "e\n"), B.dir(0, "q/f/g/l/c", mode=0o750),
                 B.dir(0, "q/g/k/f/g/b/k")),
             [O.rename("q/g/k/f/g", "q/f/g/l/c"), O.stat("q/g/k"),
              O.rename("Y" * 255 + "/d", "q/g/k/f"), O.stat("q/g/k"),
              O.ustat("q/g/k/f", ("type", "mode"))]),
    # A failed RENAME_WHITEOUT still sets the source dir's times (ext4):
    # the mount must show them, as the kernel's does.
    Scenario("enotempty-rename-parent-times", lambda B: (
                 B.file(0, "src/sub/p/.dot", "x\n"), B.dir(0, "t")),
             [O.mkdir("t/sub"), O.mkdir("t/sub/p"), O.mknod_fifo("src/sub/p/h"),
              O.rename("src/sub", "t/sub"), O.stat("src"), O.stat("t")]),
    # Source first: the upper-only dir moving into a merged parent is
    # marked opaque before the other side's too-long redirect fails.
    Scenario("exchange-opaque-before-long-redirect", lambda B: (
                 B.dir(1, "a/c"), B.dir(0, "a/m/" + LONG + "/b"), B.dir(1, "a/m/" + LONG)),
             [O.mkdir("a/c/c"), O.mkdir("a/c/c/n", 0o555),
              O.renameat2("a/c/c/n", "a/m/" + LONG + "/b", EXCHANGE), O.ulist("a/c/c")]),
    # A lower dir renamed to a ".wh.*" name keeps its lower copies (the
    # name is a marker only in a lower layer) and comes back unmarked.
    Scenario("dir-to-marker-name-and-back", lambda B: B.file(0, "f/p/l", "l\n"),
             [O.rename("f/p", "f/.wh.b"), O.listdir("f/.wh.b"), O.rename("f/.wh.b", "f/p"),
              O.listdir("f/p"), O.read("f/p/l")]),
    Scenario("redirect-off-copied-up-dir", base,
             [O.chmod("d", 0o755), O.rename("d", "d2"), O.create("e/x", "x"),
              O.rename("e", "e3")],
             lfs_opts=["redirect_dir=off"], k_opts=["redirect_dir=off"]),
]
