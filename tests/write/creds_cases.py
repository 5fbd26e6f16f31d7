# Credentials: objects made by a non-root caller, setgid directories, umask,
# permission checks before any copy-up; layerfs against kernel overlay.
# Run by creds.sh.  The merged root is 0777 (merged_mode).
from scenario import Scenario, O, STD

U, G = 1000, 1000
UA = ("type", "mode", "uid", "gid")


def base(B):
    """Top lower (0): pub/ (0777) with pub/rootfile, sgd/ (2777, gid 4321),
    priv/ (0700), sticky/ (1777) with a file of uid 2000, mine (1000's file).
    Bottom lower (1): pub/low, ro/ (0755) with ro/f, rootf (root 0644)."""
    B.dir(0, "pub", mode=0o777)
    B.file(0, "pub/rootfile", "r\n")
    B.dir(0, "sgd", mode=0o2777, gid=4321)
    B.file(0, "sgd/old", "o\n", gid=4321)
    B.dir(0, "priv", mode=0o700)
    B.file(0, "priv/secret", "s\n")
    B.dir(0, "sticky", mode=0o1777)
    B.file(0, "sticky/theirs", "t\n", uid=2000, gid=2000, mode=0o666)
    B.file(0, "mine", "mine\n", uid=U, gid=G, mode=0o600)
    B.file(1, "pub/low", "low\n")
    B.file(1, "ro/f", "f\n")
    B.file(1, "rootf", "root\n")


def user(code, umask=None, groups=None):
    return O.as_user(U, G, code, umask=umask, groups=groups)


def sc(name, ops, desc=""):
    return Scenario(name, base, ops, merged_mode=0o777, desc=desc)


CASES = [
    sc("user-creates-in-root",
       [user("open(P('f1'), 'w').write('x')"), user("os.mkdir(P('d1'))"),
        user("os.symlink('f1', P('l1'))"), user("os.mkfifo(P('p1'))"),
        O.stat("f1"), O.stat("d1"), O.stat("l1"), O.stat("p1"),
        O.ustat("f1", UA), O.ustat("d1", UA), O.ustat("l1", UA), O.ustat("p1", UA)],
       desc="new objects owned 1000:1000 in the merged view and the upper"),
    sc("user-creates-in-lower-dir",
       [user("open(P('pub/f2'), 'w').write('x')"), user("os.mkdir(P('pub/d2'), 0o777)"),
        O.stat("pub/f2"), O.stat("pub/d2"), O.ustat("pub", UA), O.ustat("pub/f2", UA),
        O.ustat("pub/d2", UA)],
       desc="the parent is copied up as root (its owner kept), the child is the caller's"),
    sc("setgid-dir",
       [user("open(P('sgd/f'), 'w').write('x')"), user("os.mkdir(P('sgd/sub'), 0o755)"),
        user("open(P('sgd/sub/f'), 'w').write('x')"),
        O.stat("sgd/f"), O.stat("sgd/sub"), O.stat("sgd/sub/f"),
        O.ustat("sgd/f", UA), O.ustat("sgd/sub", UA), O.ustat("sgd", UA)],
       desc="new files get the dir's group, new subdirs keep setgid"),
    sc("setgid-dir-root",
       [O.create("sgd/rf", "r"), O.mkdir("sgd/rd"), O.stat("sgd/rf"), O.stat("sgd/rd")]),
    sc("setgid-bit-stripped",
       [user("fd = os.open(P('sgd/x'), os.O_CREAT | os.O_WRONLY, 0o2755); os.close(fd)"),
        O.stat("sgd/x"), user("os.chmod(P('sgd/x'), 0o2755)"), O.stat("sgd/x")],
       desc="S_ISGID dropped for a creator outside the group"),
    sc("upper-setgid-dir",
       [O.mkdir("nsg", 0o777), O.chown("nsg", 0, 4321), O.chmod("nsg", 0o2777),
        user("open(P('nsg/f'), 'w').write('x')"), user("os.mkdir(P('nsg/s'))"),
        O.stat("nsg/f"), O.stat("nsg/s")]),
    sc("umask-027-user",
       [user("open(P('um'), 'w').write('x')", umask=0o027),
        user("os.mkdir(P('umd'), 0o777)", umask=0o027),
        user("os.mkfifo(P('ump'), 0o666)", umask=0o027),
        O.stat("um"), O.stat("umd"), O.stat("ump"), O.ustat("um", UA), O.ustat("umd", UA)],
       desc="umask 027 honoured"),
    sc("umask-027-in-lower-dir",
       [user("open(P('pub/um'), 'w').write('x')", umask=0o027),
        user("os.mkdir(P('pub/umd'), 0o777)", umask=0o027), O.stat("pub/um"),
        O.stat("pub/umd"), O.ustat("pub", UA)]),
    sc("denied-write-no-copyup",
       [user("open(P('rootf'), 'a').write('x')"), user("os.truncate(P('rootf'), 0)"),
        user("os.chmod(P('rootf'), 0o777)"), user("os.chown(P('rootf'), 1000, 1000)"),
        user("os.setxattr(P('rootf'), 'user.x', b'1')"),
        user("os.utime(P('rootf'), (1, 1))"), user("os.unlink(P('ro/f'))"),
        user("open(P('ro/new'), 'w')"), user("os.rename(P('ro/f'), P('moved'))"),
        user("os.listdir(P('priv'))"), user("open(P('priv/secret')).read()"),
        O.ulist(""), O.stat("rootf")],
       desc="EACCES/EPERM checked before any copy-up: nothing in the upper"),
    sc("sticky-dir",
       [user("os.unlink(P('sticky/theirs'))"), user("os.rename(P('sticky/theirs'), P('x'))"),
        user("open(P('sticky/theirs'), 'a').write('ok')"), O.read("sticky/theirs"),
        user("open(P('sticky/own'), 'w').write('o')"), user("os.unlink(P('sticky/own'))"),
        O.ulist("sticky")]),
    sc("owner-copyup",
       [user("open(P('mine'), 'a').write('more')"), user("os.chmod(P('mine'), 0o640)"),
        user("os.utime(P('mine'), (5, 6))"), O.stat("mine", STD + ("mtime",)),
        O.ustat("mine", UA), user("os.setxattr(P('mine'), 'user.mine', b'1')"),
        O.listxattr("mine")],
       desc="the owner's writes to its own lower file"),
    sc("chgrp-by-owner",
       [user("os.chown(P('mine'), -1, 4321)", groups=[G, 4321]), O.stat("mine"),
        user("os.chown(P('mine'), -1, 5555)", groups=[G, 4321]), O.stat("mine"),
        user("os.chown(P('mine'), 2000, -1)"), O.stat("mine")]),
    sc("user-rename-own",
       [user("open(P('pub/a'), 'w').write('a')"), user("os.rename(P('pub/a'), P('pub/b'))"),
        user("os.rename(P('pub/low'), P('pub/low2'))"), O.listdir("pub"), O.stat("pub/low2"),
        O.ustat("pub/low2", UA)]),
    sc("user-link-protected",
       [user("os.link(P('rootf'), P('pub/hl'))"), user("os.link(P('mine'), P('pub/hl2'))"),
        O.ulist("pub")],
       desc="fs.protected_hardlinks: linking a file one cannot write"),
]
