# Hard links (index=off, the kernel's default here); layerfs against kernel
# overlay.  Run by links.sh through scenario.py.
from scenario import Scenario, O

UA = ("type", "mode", "uid", "gid", "nlink")


def base(B):
    """Top lower (0): f, a == b (one inode, nlink 2), s -> f.
    Bottom lower (1): x == dir/y (nlink 2), three-way p == q == r."""
    B.file(0, "f", "f\n", uid=5, gid=6)
    B.file(0, "a", "pair\n")
    B.hardlink(0, "b", "a")
    B.symlink(0, "s", "f")
    B.file(1, "x", "x\n")
    B.hardlink(1, "dir/y", "x")
    B.file(1, "p", "p\n")
    B.hardlink(1, "q", "p")
    B.hardlink(1, "r", "p")


def both(a, b):
    return [O.stat(a), O.stat(b), O.read(a), O.read(b)]


CASES = [
    Scenario("link-lower-file", base,
             [O.ino_mark("f", "f"), O.link("f", "f2"), O.ino_same("f", "f"),
              O.ino_same("f2", "f"), O.ustat("f", UA), O.ustat("f2", UA)] + both("f", "f2") +
             [O.write("f2", "through f2\n")] + both("f", "f2"),
             desc="link() of a lower file copies it up and links in the upper"),
    Scenario("link-lower-into-lower-dir", base,
             [O.link("f", "dir/f"), O.ulist("dir")] + both("f", "dir/f")),
    Scenario("link-symlink", base,
             [O.link("s", "s2"), O.readlink("s2"), O.stat("s"), O.stat("s2")]),
    Scenario("lower-pair", base,
             [O.ino_mark("a", "a"), O.ino_same("b", "a")] + both("a", "b"),
             desc="a lower hard-linked pair: one st_ino, nlink 2"),
    Scenario("lower-pair-write-one", base,
             [O.ino_mark("a", "a"), O.write("a", "via a\n"), O.ino_same("a", "a"),
              O.ino_same("b", "a")] + both("a", "b") + [O.ustat("a", UA), O.ustat("b", UA)],
             desc="write through one name of a lower pair (index=off breaks the link)"),
    Scenario("lower-pair-chmod-both", base,
             [O.chmod("a", 0o600), O.chmod("b", 0o640)] + both("a", "b") +
             [O.ustat("a", UA), O.ustat("b", UA)]),
    Scenario("lower-pair-unlink-one", base,
             [O.unlink("a"), O.stat("b"), O.read("b"), O.ustat("a", ("type",))]),
    Scenario("lower-pair-link-again", base,
             [O.link("a", "c"), O.stat("a"), O.stat("b"), O.stat("c"), O.ustat("c", UA)]),
    Scenario("lower-three-way", base,
             [O.stat("p"), O.write("q", "q!\n"), O.stat("p"), O.stat("q"), O.stat("r"),
              O.unlink("r"), O.stat("p"), O.read("p"), O.read("q")]),
    Scenario("cross-dir-pair", base,
             [O.stat("x"), O.stat("dir/y"), O.rename("dir/y", "y2"), O.stat("y2"),
              O.stat("x"), O.read("y2")]),
    Scenario("upper-links", base,
             [O.create("u", "u\n"), O.link("u", "u2"), O.link("u", "dir/u3"),
              O.write("u2", "more\n")] + both("u", "dir/u3") +
             [O.unlink("u"), O.stat("u2"), O.rename("u2", "u4"), O.stat("dir/u3")],
             desc="links made in the upper: one inode throughout"),
    Scenario("link-errors", base,
             [O.link("f", "a"), O.link("dir", "dir2"), O.link("nope", "n"), O.link("f", "nope/x")],
             desc="EEXIST, EPERM (dir), ENOENT"),
    Scenario("link-over-whiteout", base,
             [O.unlink("x"), O.link("f", "x"), O.stat("x"), O.read("x"), O.ustat("x", UA)]),
]
