# Whiteouts and opaque directories, layerfs against kernel overlay.
# Run by whiteout.sh through scenario.py.
import os

from scenario import Scenario, O

UA = ("type", "mode", "uid", "gid")


def base(B):
    """Top lower (0): f, d/{a,b}, e/ (empty), both/{t}; bottom lower (1):
    g, both/{b}, only1/{x,y}, dd/{k/{deep}}; a lower-layer whiteout: 0 hides 1's hid."""
    B.file(0, "f", "f\n")
    B.file(0, "d/a", "a\n")
    B.file(0, "d/b", "b\n")
    B.dir(0, "e", mode=0o750, uid=7, gid=8)
    B.file(0, "both/t", "t\n")
    B.file(1, "g", "g\n")
    B.file(1, "both/b", "b\n")
    B.file(1, "only1/x", "x\n")
    B.file(1, "only1/y", "y\n")
    B.file(1, "dd/k/deep", "deep\n")
    B.file(1, "hid/z", "z\n")
    B.whiteout(0, "hid")
    B.file(1, "hf", "hidden file\n")
    B.whiteout(0, "hf")


CASES = [
    Scenario("rm-lower-file", base,
             [O.unlink("f"), O.unlink("g"), O.stat("f"), O.ustat("f", UA + ("rdev",)),
              O.ustat("g", UA + ("rdev",)), O.listdir(""), O.create("f2", "x")],
             desc="unlink of a lower file leaves a char 0/0 whiteout"),
    Scenario("rm-upper-only", base,
             [O.create("new", "n"), O.unlink("new"), O.ustat("new"), O.mkdir("nd"),
              O.rmdir("nd"), O.ustat("nd"), O.ulist("")],
             desc="removing an upper-only name leaves nothing"),
    Scenario("rm-copied-up", base,
             [O.write("f", "more"), O.unlink("f"), O.ustat("f", UA + ("rdev",))],
             desc="removing a copied-up lower file leaves a whiteout"),
    Scenario("rmdir-lower-empty", base,
             [O.rmdir("e"), O.ustat("e", UA + ("rdev",)), O.stat("e"), O.listdir("")]),
    Scenario("rmdir-notempty", base,
             [O.rmdir("d"), O.rmdir("only1"), O.rmdir("both"), O.rmdir("dd"),
              O.create("e/new", "n"), O.rmdir("e"), O.ulist(""), O.ulist("e")],
             desc="ENOTEMPTY with entries in the top lower, the bottom one, both, the upper"),
    Scenario("rmdir-only-whiteouts", base,
             [O.unlink("both/t"), O.unlink("both/b"), O.listdir("both"), O.ulist("both"),
              O.rmdir("both"), O.ustat("both", UA + ("rdev",)), O.stat("both"),
              O.ulist("")],
             desc="a merged dir holding only whiteouts can go; one whiteout left"),
    Scenario("rm-r-deep-lower", base,
             [O.rmtree("dd"), O.ulist(""), O.ustat("dd", UA + ("rdev",)), O.listdir("")]),
    Scenario("recreate-file-over-whiteout", base,
             [O.unlink("f"), O.create("f", "again\n"), O.ustat("f", UA + ("size",)),
              O.stat("f"), O.read("f"), O.unlink("g"), O.mkdir("g"), O.ustat("g"),
              O.listdir("g"), O.getxattr("g", "trusted.overlay.opaque")],
             desc="file over a whiteout: a plain upper file; mkdir over one"),
    Scenario("mkdir-over-whiteout", base,
             [O.rmtree("only1"), O.mkdir("only1", 0o700), O.listdir("only1"),
              O.ustat("only1"), O.create("only1/x", "new x"), O.listdir("only1")],
             desc="mkdir over a whited-out lower dir makes an opaque dir"),
    Scenario("rmdir-opaque-dir", base,
             [O.rmtree("only1"), O.mkdir("only1"), O.rmdir("only1"), O.ustat("only1", UA + ("rdev",)),
              O.stat("only1"), O.mkdir("only1"), O.listdir("only1")],
             desc="an opaque dir hiding lower entries is empty: rmdir works"),
    Scenario("dir-over-file-whiteout", base,
             [O.unlink("f"), O.mkdir("f"), O.stat("f"), O.rmdir("f"), O.create("f", "F"),
              O.stat("f")],
             desc="file -> whiteout -> dir -> whiteout -> file"),
    Scenario("file-over-dir-whiteout", base,
             [O.rmtree("d"), O.create("d", "now a file"), O.stat("d"), O.ustat("d")]),
    Scenario("symlink-over-whiteout", base,
             [O.unlink("g"), O.symlink("f", "g"), O.readlink("g"), O.ustat("g")]),
    Scenario("mkdir-in-upper-only-dir", base,
             [O.mkdir("n1"), O.mkdir("n1/n2"), O.ustat("n1"), O.ustat("n1/n2")],
             desc="a plain mkdir in an upper-only dir is not opaque"),
    Scenario("mkdir-in-merged-dir", base,
             [O.mkdir("both/newdir"), O.mkdir("d/nd"), O.ustat("both/newdir"),
              O.create("both/newdir/f", "f"), O.listdir("both/newdir")],
             desc="mkdir in a merged dir: the kernel marks the new dir opaque"),
    Scenario("mkdir-in-lower-only-dir", base,
             [O.mkdir("only1/nd"), O.listdir("only1")]),
    Scenario("mkdir-over-lower-whiteout", base,
             [O.stat("hid"), O.mkdir("hid"), O.listdir("hid"), O.create("hf", "new hf"),
              O.read("hf")],
             desc="names hidden by a whiteout in a lower layer"),
    Scenario("whiteout-in-upper-subdir", base,
             [O.unlink("only1/x"), O.listdir("only1"), O.ulist("only1"),
              O.ustat("only1/x", UA + ("rdev",)), O.create("only1/x", "back"),
              O.listdir("only1"), O.read("only1/x")]),
    Scenario("rename-onto-whiteout", base,
             [O.unlink("f"), O.create("tmp", "T"), O.rename("tmp", "f"), O.ustat("f"),
              O.unlink("g"), O.create("tmp2", "T2"),
              O.renameat2("tmp2", "g", 1), O.ustat("g")],
             desc="rename (incl. NOREPLACE) onto a whited-out name"),
    Scenario("readdir-after-many-removals",
             lambda B: [B.file(i % 2, "many/f%03d" % i, "%d" % i) for i in range(60)],
             [O.call("unlink every third", lambda c: [os.unlink(c.p("many/f%03d" % i))
                                                        for i in range(0, 60, 3)] and None),
              O.listdir("many"), O.ulist("many"),
              O.call("create 5 back", lambda c: [open(c.p("many/f%03d" % i), "w").write("b")
                                                  for i in range(0, 15, 3)] and None),
              O.listdir("many")]),
    # The kernel makes an unlink's whiteout in the workdir: it does not
    # take the group of a set-group-ID parent (found by the soak).
    Scenario("unlink-whiteout-in-setgid-dir", lambda B: (
                 B.file(0, "sg/e", "e\n", uid=4242), B.file(0, "sg/f", "f\n")),
             [O.chown("sg", 1000, 65534), O.chmod("sg", 0o2755), O.chown("sg/e", 4242, 0),
              O.unlink("sg/e"), O.unlink("sg/f"), O.ustat("sg/e", ("type", "uid", "gid")),
              O.ustat("sg/f", ("type", "uid", "gid"))]),
    # A lower xattr whiteout whose name a layer above shows (and the upper
    # then whites out) does not make the directory non-empty.
    Scenario("rmdir-lower-xattr-whiteout-shadowed", lambda B: (
                 B.file(0, "i/n", "top\n"),
                 B.file(1, "i/n", "", xattrs={"trusted.overlay.whiteout": b""}),
                 B.dir(1, "i", xattrs={"trusted.overlay.opaque": b"x"})),
             [O.unlink("i/n"), O.rmdir("i"), O.listdir(""), O.ulist("")]),
]
