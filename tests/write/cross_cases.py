# Cross-implementation: phase 1 with one implementation, unmount, phase 2
# with the other on the same upper (fresh workdir).  Variants KL, LK, LL
# are each compared with KK (kernel then kernel).  Run by cross.sh.
from scenario import Scenario, O

UA = ("type", "mode", "uid", "gid")


def base(B):
    B.file(0, "f", "f\n", uid=3, gid=4, xattrs={"user.f": b"1"})
    B.file(0, "d/a", "a\n")
    B.file(0, "d/sub/c", "c\n")
    B.file(1, "d/low", "low\n")
    B.file(1, "only1/x", "x\n")
    B.file(1, "only1/y", "y\n")
    B.file(1, "g", "g\n")
    B.file(1, "pair1", "pair\n")
    B.hardlink(1, "pair2", "pair1")
    B.dir(1, "empty")
    B.symlink(0, "s", "d/a")


def phases(name, p1, p2, desc=""):
    return Scenario(name, base, p1, phase2=p2, desc=desc)


CASES = [
    phases("redirect-then-rename-again",
           [O.rename("d", "d2"), O.rename("only1", "d2/o")],
           [O.listdir("d2"), O.listdir("d2/o"), O.read("d2/o/x"), O.read("d2/low"),
            O.rename("d2", "d3"), O.rename("d3/o", "o4"), O.listdir("d3"), O.listdir("o4"),
            O.read("o4/y"), O.write("d3/sub/c", "+\n"), O.read("d3/sub/c")],
           desc="redirects written by one, followed and rewritten by the other"),
    phases("whiteouts-then-rmdir",
           [O.unlink("only1/x"), O.unlink("only1/y"), O.unlink("g"), O.rmtree("d/sub")],
           [O.listdir(""), O.listdir("only1"), O.rmdir("only1"), O.create("g", "new g"),
            O.mkdir("d/sub"), O.listdir("d/sub"), O.listdir("d")],
           desc="whiteouts by one, rmdir / recreate by the other"),
    phases("opaque-then-fill",
           [O.rmtree("only1"), O.mkdir("only1"), O.create("only1/n", "n"), O.mkdir("d/nd")],
           [O.listdir("only1"), O.create("only1/x", "fresh"), O.listdir("only1"),
            O.listdir("d/nd"), O.rmdir("d/nd"), O.listdir("d")]),
    phases("copyup-then-modify",
           [O.write("f", "more\n"), O.chmod("d/a", 0o600), O.setxattr("g", "user.g", "1"),
            O.link("f", "f-link"), O.write("pair1", "changed\n")],
           [O.read("f"), O.stat("f"), O.stat("f-link"), O.write("f-link", "again\n"),
            O.read("f"), O.stat("pair1"), O.stat("pair2"), O.read("pair2"),
            O.write("pair2", "p2\n"), O.listxattr("g"), O.removexattr("g", "user.g"),
            O.listxattr("f")]),
    phases("escaped-xattrs",
           [O.setxattr("f", "trusted.overlay.foo", "1"), O.setxattr("d", "trusted.overlay.opaque", "y")],
           [O.listxattr("f"), O.getxattr("f", "trusted.overlay.foo"), O.listdir("d"),
            O.getxattr("d", "trusted.overlay.opaque"),
            O.removexattr("f", "trusted.overlay.foo"), O.listxattr("f")]),
    phases("dir-over-empty-lower",
           [O.mkdir("nd"), O.create("nd/x", "x"), O.rename("nd", "empty")],
           [O.listdir("empty"), O.read("empty/x"), O.rename("empty", "e2"), O.listdir("e2")]),
    phases("exchange-then-continue",
           [O.renameat2("d", "only1", 2)],
           [O.listdir("d"), O.listdir("only1"), O.read("d/x"), O.read("only1/a"),
            O.renameat2("d", "only1", 2), O.listdir("d"), O.read("d/sub/c")]),
]
