#!/usr/bin/env python3
"""Differential scenario runner: layerfs against the kernel's overlayfs.

A scenario is a builder of lower layers plus a list of operations on the
merged tree.  The runner builds the lowers twice (identically), mounts one
copy with layerfs and one with kernel overlay, runs the operations on both
(each step's result: a value or an errno name), and compares:

  * every step result;
  * the merged trees: path, type, mode, uid, gid, size, sha256, symlink
    target, user-visible xattrs, nlink, mtime ("old:<ns>" for the fixed
    times the builder sets, "new" otherwise), which paths share st_ino, and
    which paths kept their st_ino across the operations;
  * the uppers: path, type (char 0/0 = whiteout), mode, owner, content,
    mtime class, xattrs (trusted.overlay.origin: presence only;
    trusted.overlay.impure ignored);
  * st_ino persistence across a remount (each side by itself);
  * a cross-mount: layerfs's upper under the kernel and the kernel's upper
    under layerfs (fresh workdirs), both against the kernel's own tree.

Usage: scenario.py --tmp DIR CASES.py [NAME...]
CASES.py defines CASES, a list of Scenario objects (see the Scenario class).
Exit 0 all pass, 1 any failure, 77 all skipped.

Every operation on a mount runs in a forked child with a deadline; a hang
is a failure, the mount is aborted and the run goes on.
"""
import ctypes
import ctypes.util
import difflib
import errno
import hashlib
import json
import mmap
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
import traceback

LAYERFS = os.environ.get("LAYERFS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tools", "layerfs")
PY = sys.executable or "/usr/bin/python3"

VERBOSE = os.environ.get("WTEST_VERBOSE") == "1"   # print the kernel's results too
OP_TIMEOUT = float(os.environ.get("OP_TIMEOUT", "60"))
MOUNT_TIMEOUT = 30

# The builder's fixed times: everything below 2020 is "old" (set by us).
T_ATIME = 1_000_000_000_000_000_000   # 2001-09-09
T_MTIME = 1_100_000_000_000_000_000   # 2004-11-09
OLD_LIMIT = 1_577_836_800_000_000_000  # 2020-01-01

ERRNAMES = errno.errorcode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ovltest import (AT_FDCWD, AT_SYMLINK_NOFOLLOW, RENAME_EXCHANGE, RENAME_NOREPLACE,  # noqa: E402,F401
                     UTIME_NOW, UTIME_OMIT, Timespec, daemon_pids, fallocate, is_mounted, libc,
                     mountpoints, pid_alive, renameat2, utimensat)


# ------------------------------------------------------------------ utilities

def log(*a):
    print(*a, flush=True)


def run(cmd, timeout=MOUNT_TIMEOUT, check=True):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                                 p.stdout.decode(errors="replace").strip()))
    return p


def errname(e):
    return ERRNAMES.get(e.errno, str(e.errno))


def in_child(fn, timeout=OP_TIMEOUT, on_line=None):
    """Runs fn(emit) in a forked child; emit(obj) streams a JSON line back.
    Returns (lines, status) with status 'ok', 'hang' or 'crash: ...'."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = os.fdopen(w, "w")
        code = 0
        try:
            def emit(obj):
                out.write(json.dumps(obj) + "\n")
                out.flush()
            fn(emit)
        except BaseException:
            try:
                out.write(json.dumps({"__crash__": traceback.format_exc()}) + "\n")
                out.flush()
            except BaseException:
                pass
            code = 1
        os._exit(code)
    os.close(w)
    deadline = time.monotonic() + timeout
    buf = b""
    status = "ok"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            status = "hang"
            break
        rd, _, _ = select.select([r], [], [], left)
        if not rd:
            continue
        chunk = os.read(r, 65536)
        if not chunk:
            break
        buf += chunk
    os.close(r)
    if status == "hang":
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    lines = []
    for ln in buf.decode(errors="replace").splitlines():
        try:
            obj = json.loads(ln)
        except ValueError:
            continue
        if isinstance(obj, dict) and "__crash__" in obj:
            status = "crash: " + obj["__crash__"]
            continue
        lines.append(obj)
    return lines, status


# ------------------------------------------------------------------ mounts

class Mount:
    """One union mount: kind 'kernel' or 'layerfs'."""
    live = []

    def __init__(self, kind, lowers, upper, work, merged, opts=()):
        self.kind, self.lowers, self.upper, self.work, self.merged = \
            kind, lowers, upper, work, merged
        self.opts = list(opts)
        self.pids = []

    def mount(self):
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d, exist_ok=True)
        if self.kind == "kernel":
            o = "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(self.lowers), self.upper,
                                                         self.work)
            # redirect_dir=on as layerfs's default, unless the scenario says
            extra = ([] if any(x.startswith("redirect_dir") for x in self.opts)
                     else ["redirect_dir=on"]) + self.opts
            o += "".join("," + x for x in extra)
            run(["timeout", "-k", "2", str(MOUNT_TIMEOUT), "mount", "-t", "overlay", "overlay",
                 "-o", o, self.merged])
        else:
            cmd = ["timeout", "-k", "2", str(MOUNT_TIMEOUT), LAYERFS, "mount",
                   ":".join(self.lowers), self.upper, self.merged, "--workdir", self.work]
            for x in self.opts:
                cmd += ["-o", x]
            Mount.live.append(self)
            run(cmd)
            self.pids = daemon_pids(self.merged)
        if self not in Mount.live:
            Mount.live.append(self)
        if not is_mounted(self.merged):
            raise RuntimeError("%s mount of %s: nothing mounted" % (self.kind, self.merged))
        want = "overlay" if self.kind == "kernel" else "fuse"
        with open("/proc/self/mounts") as f:
            types = [ln.split()[2] for ln in f if ln.split()[1] == self.merged]
        if not types or not types[-1].startswith(want):
            raise RuntimeError("%s: mounted type %s, wanted %s" % (self.merged, types, want))
        return self

    def umount(self):
        """Clean unmount; falls back to lazy ones.  Waits for the daemon."""
        ok = True
        if is_mounted(self.merged):
            if self.kind == "layerfs":
                p = run(["timeout", "-k", "2", "20", LAYERFS, "umount", self.merged],
                        check=False)
                if p.returncode != 0:
                    ok = False
                    run(["timeout", "-k", "2", "10", "fusermount3", "-u", "-z", self.merged],
                        check=False)
            else:
                p = run(["timeout", "-k", "2", "20", "umount", self.merged], check=False)
                ok = p.returncode == 0
            if is_mounted(self.merged):
                ok = False
                run(["timeout", "-k", "2", "10", "umount", "-l", self.merged], check=False)
        deadline = time.monotonic() + 10
        for pid in self.pids:
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if pid_alive(pid):
                ok = False
                os.kill(pid, signal.SIGKILL)
        if self in Mount.live:
            Mount.live.remove(self)
        return ok

    def abort(self):
        """After a hang: kill the daemon, lazy-unmount."""
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.kind == "layerfs":
            run(["timeout", "10", "fusermount3", "-u", "-z", self.merged], check=False)
        run(["timeout", "10", "umount", "-l", self.merged], check=False)
        if self in Mount.live:
            Mount.live.remove(self)


def cleanup_mounts():
    for m in reversed(list(Mount.live)):
        try:
            m.abort() if m.kind == "layerfs" else m.umount()
        except Exception:
            pass


# ------------------------------------------------------------------ lowers

class Builder:
    """Builds lower layers: index 0 is the top lower.  After the build every
    entry not given explicit times gets fixed old ones (distinct mtimes)."""

    def __init__(self, layers, upper=None):
        self.layers = layers
        self.upper = upper
        self.explicit = set()

    def p(self, layer, rel):
        root = self.upper if layer == "u" else self.layers[layer]
        return os.path.join(root, rel)

    def _parents(self, layer, rel):
        d = os.path.dirname(rel)
        if d:
            os.makedirs(self.p(layer, d), exist_ok=True)

    def dir(self, layer, rel, mode=0o755, uid=0, gid=0, xattrs=None):
        self._parents(layer, rel)
        path = self.p(layer, rel)
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        for k, v in (xattrs or {}).items():
            os.setxattr(path, k, v)
        return path

    def file(self, layer, rel, data=b"", mode=0o644, uid=0, gid=0, xattrs=None):
        self._parents(layer, rel)
        path = self.p(layer, rel)
        if isinstance(data, str):
            data = data.encode()
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        for k, v in (xattrs or {}).items():
            os.setxattr(path, k, v)
        return path

    def sparse(self, layer, rel, size, chunks=((0, b"head"),)):
        self._parents(layer, rel)
        path = self.p(layer, rel)
        with open(path, "wb") as f:
            f.truncate(size)
            for off, data in chunks:
                f.seek(off)
                f.write(data)
        return path

    def symlink(self, layer, rel, target, uid=0, gid=0):
        self._parents(layer, rel)
        path = self.p(layer, rel)
        os.symlink(target, path)
        os.lchown(path, uid, gid)
        return path

    def hardlink(self, layer, rel, existing):
        self._parents(layer, rel)
        os.link(self.p(layer, existing), self.p(layer, rel))

    def whiteout(self, layer, rel):
        self._parents(layer, rel)
        os.mknod(self.p(layer, rel), stat.S_IFCHR | 0, os.makedev(0, 0))

    def opaque(self, layer, rel):
        os.setxattr(self.p(layer, rel), "trusted.overlay.opaque", b"y")

    def fifo(self, layer, rel, mode=0o644):
        self._parents(layer, rel)
        os.mkfifo(self.p(layer, rel), mode)

    def times(self, layer, rel, atime_ns, mtime_ns):
        os.utime(self.p(layer, rel), ns=(atime_ns, mtime_ns), follow_symlinks=False)
        self.explicit.add(self.p(layer, rel))

    def finalize(self):
        """Fixed times, deepest first so directories keep theirs."""
        i = 0
        roots = list(self.layers) + ([self.upper] if self.upper else [])
        for root in roots:
            paths = []
            for dp, dns, fns in os.walk(root):
                for n in dns + fns:
                    paths.append(os.path.join(dp, n))
            paths.sort(key=lambda x: (-x.count("/"), x))
            for path in paths + [root]:
                i += 1
                if path in self.explicit:
                    continue
                os.utime(path, ns=(T_ATIME, T_MTIME + i * 1_000_000_001),
                         follow_symlinks=False)


# ------------------------------------------------------------------ snapshots

def tclass(ns):
    return "old:%d" % ns if ns < OLD_LIMIT else "new"


def ftype(mode, rdev=0):
    if stat.S_ISREG(mode):
        return "reg"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "lnk"
    if stat.S_ISCHR(mode):
        return "whiteout" if rdev == 0 else "chr(%d,%d)" % (os.major(rdev), os.minor(rdev))
    if stat.S_ISBLK(mode):
        return "blk"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "sock"
    return "?"


def show_bytes(b):
    if len(b) > 96:
        return "<%d bytes sha:%s>" % (len(b), hashlib.sha256(b).hexdigest()[:16])
    try:
        s = b.decode("ascii")
        if all(32 <= ord(c) < 127 for c in s):
            return repr(s)
    except UnicodeDecodeError:
        pass
    return "0x" + b.hex()


def sha_of(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()[:16]


def walk(root):
    """Sorted relative paths below root (not following symlinks)."""
    out = []

    def rec(rel):
        d = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(d))
        except OSError as e:
            out.append((rel or ".", "LISTDIR-ERROR " + errname(e)))
            return
        for n in names:
            r = os.path.join(rel, n) if rel else n
            out.append((r, None))
            try:
                st = os.lstat(os.path.join(root, r))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                rec(r)
    rec("")
    return out


def xattr_list(path, upper):
    """Sorted 'name=value' strings; in an upper: origin -> presence, impure dropped."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return ["LISTXATTR-ERROR " + errname(e)]
    out = []
    for n in sorted(names):
        # uuid: the kernel (uuid=on) stamps the upper root; not layout.
        if upper and n in ("trusted.overlay.impure", "user.overlay.impure",
                           "trusted.overlay.uuid", "user.overlay.uuid"):
            continue
        if upper and n in ("trusted.overlay.origin", "user.overlay.origin"):
            out.append(n + "=<present>")
            continue
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
            out.append("%s=%s" % (n, show_bytes(v)))
        except OSError as e:
            out.append("%s=<%s>" % (n, errname(e)))
    return out


def entry_line(root, rel, st, upper):
    t = ftype(st.st_mode, st.st_rdev)
    f = ["type=" + t, "mode=%04o" % stat.S_IMODE(st.st_mode), "uid=%d" % st.st_uid,
         "gid=%d" % st.st_gid]
    # The kernel shares one whiteout inode (linked from its workdir): a
    # whiteout's nlink in an upper says nothing.
    if not upper or t not in ("dir", "whiteout"):
        f.append("nlink=%d" % st.st_nlink)
    path = os.path.join(root, rel)
    if t == "reg":
        f.append("size=%d" % st.st_size)
        try:
            f.append("sha=" + sha_of(path))
        except OSError as e:
            f.append("sha=<%s>" % errname(e))
    elif t == "lnk":
        try:
            f.append("target=" + repr(os.readlink(path)))
        except OSError as e:
            f.append("target=<%s>" % errname(e))
    if t != "whiteout":
        f.append("mtime=" + tclass(st.st_mtime_ns))
    xs = xattr_list(path, upper)
    if xs:
        f.append("xattrs=[" + ", ".join(xs) + "]")
    return " ".join(f)


def snap_tree(root, upper=False):
    """Returns dict: lines (list of str), inos ({rel: ino}), types."""
    lines, inos, types = [], {}, {}
    try:
        st = os.lstat(root)
        lines.append(". " + entry_line(root, "", st, upper).replace(" nlink=", " dirnlink="))
    except OSError as e:
        lines.append(". ERROR " + errname(e))
    for rel, err in walk(root):
        if err:
            lines.append("%s %s" % (rel, err))
            continue
        try:
            st = os.lstat(os.path.join(root, rel))
        except OSError as e:
            lines.append("%s LSTAT-ERROR %s" % (rel, errname(e)))
            continue
        lines.append("%s %s" % (rel, entry_line(root, rel, st, upper)))
        inos[rel] = st.st_ino
        types[rel] = ftype(st.st_mode, st.st_rdev)
    return {"lines": lines, "inos": inos, "types": types}


def ino_scan(root):
    """{rel: [ino, type]} by lstat only (no reads, no xattrs)."""
    out = {}
    for rel, err in walk(root):
        if err:
            continue
        try:
            st = os.lstat(os.path.join(root, rel))
        except OSError:
            continue
        out[rel] = [st.st_ino, ftype(st.st_mode, st.st_rdev)]
    return out


def ino_groups(inos, types):
    by = {}
    for rel, ino in inos.items():
        if types.get(rel) in ("dir", "whiteout"):
            continue
        by.setdefault(ino, []).append(rel)
    groups = sorted(sorted(v) for v in by.values() if len(v) > 1)
    return ["same-ino: " + " ".join(g) for g in groups]


def ino_stability(pre, post_inos, post_types):
    out = []
    for rel in sorted(pre):
        if rel in post_inos and post_types.get(rel) == pre[rel][1]:
            out.append("%s ino %s" % (rel, "kept" if pre[rel][0] == post_inos[rel] else
                                      "CHANGED"))
    return out


# ------------------------------------------------------------------ operations

class Ctx:
    """What an operation sees: m (merged root), u (upper root), l (lowers),
    w (workdir), kind ('kernel'/'layerfs'), vars (a dict shared by steps)."""

    def __init__(self, mount):
        self.m, self.u, self.l, self.w = mount.merged, mount.upper, mount.lowers, mount.work
        self.kind = mount.kind
        self.vars = {}

    def p(self, rel):
        return os.path.join(self.m, rel) if rel else self.m

    def up(self, rel):
        return os.path.join(self.u, rel) if rel else self.u


def norm(v):
    if isinstance(v, bytes):
        return show_bytes(v) if len(v) <= 256 else "sha:" + hashlib.sha256(v).hexdigest()[:16]
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {str(k): norm(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


def stat_fields(st, fields):
    out = {}
    for f in fields:
        if f == "type":
            out[f] = ftype(st.st_mode, st.st_rdev)
        elif f == "mode":
            out[f] = "%04o" % stat.S_IMODE(st.st_mode)
        elif f in ("mtime", "atime", "ctime"):
            ns = getattr(st, "st_%s_ns" % f)
            out[f] = tclass(ns)
        elif f == "mtime_exact":
            out[f] = st.st_mtime_ns
        elif f == "atime_exact":
            out[f] = st.st_atime_ns
        elif f == "sparse":
            # the kernel copies data in 1 MiB chunks around each data extent
            out[f] = st.st_blocks * 512 < st.st_size // 4
        else:
            out[f] = getattr(st, "st_" + f)
    return out


STD = ("type", "mode", "uid", "gid", "size", "nlink")


class O:
    """Operation makers; each returns (label, fn(ctx) -> result)."""

    @staticmethod
    def call(label, fn):
        return (label, fn)

    @staticmethod
    def open(rel, flags, mode=0o644, data=None):
        names = []
        for n in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND",
                  "O_NOFOLLOW", "O_DIRECTORY"):
            if flags & getattr(os, n):
                names.append(n)
        def fn(c):
            fd = os.open(c.p(rel), flags, mode)
            try:
                if data is not None:
                    os.write(fd, data if isinstance(data, bytes) else data.encode())
            finally:
                os.close(fd)
            return "ok"
        return ("open %s %s%s" % (rel, "|".join(names) or "O_RDONLY",
                                  " write %r" % (data,) if data is not None else ""), fn)

    @staticmethod
    def write(rel, data, off=None, append=True):
        if isinstance(data, str):
            data = data.encode()
        def fn(c):
            fl = os.O_WRONLY | (os.O_APPEND if append and off is None else 0)
            fd = os.open(c.p(rel), fl)
            try:
                n = os.pwrite(fd, data, off) if off is not None else os.write(fd, data)
            finally:
                os.close(fd)
            return n
        return ("write %s %s %r" % (rel, "append" if off is None else "@%d" % off,
                                    data[:40]), fn)

    @staticmethod
    def read(rel):
        def fn(c):
            with open(c.p(rel), "rb") as f:
                return f.read()
        return ("read " + rel, fn)

    @staticmethod
    def create(rel, data=b"", mode=0o644):
        return O.open(rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, data)

    @staticmethod
    def truncate(rel, n):
        return ("truncate %s %d" % (rel, n), lambda c: os.truncate(c.p(rel), n))

    @staticmethod
    def ftruncate(rel, n):
        def fn(c):
            fd = os.open(c.p(rel), os.O_RDWR)
            try:
                os.ftruncate(fd, n)
            finally:
                os.close(fd)
        return ("ftruncate %s %d" % (rel, n), fn)

    @staticmethod
    def chmod(rel, mode):
        return ("chmod %s %04o" % (rel, mode), lambda c: os.chmod(c.p(rel), mode))

    @staticmethod
    def chown(rel, uid, gid, follow=True):
        return ("%schown %s %d:%d" % ("" if follow else "l", rel, uid, gid),
                lambda c: os.chown(c.p(rel), uid, gid, follow_symlinks=follow))

    @staticmethod
    def utime(rel, atime, mtime, follow=True):
        """atime/mtime: ns, or 'now' / 'omit'."""
        return ("utimensat %s %s %s%s" % (rel, atime, mtime, "" if follow else " nofollow"),
                lambda c: utimensat(c.p(rel), atime, mtime, follow))

    @staticmethod
    def setxattr(rel, name, value, flags=0, follow=True):
        if isinstance(value, str):
            value = value.encode()
        return ("setxattr %s %s=%s flags=%d" % (rel, name, show_bytes(value), flags),
                lambda c: os.setxattr(c.p(rel), name, value, flags, follow_symlinks=follow))

    @staticmethod
    def getxattr(rel, name, follow=True):
        return ("getxattr %s %s" % (rel, name),
                lambda c: os.getxattr(c.p(rel), name, follow_symlinks=follow))

    @staticmethod
    def listxattr(rel, follow=True):
        return ("listxattr " + rel,
                lambda c: sorted(os.listxattr(c.p(rel), follow_symlinks=follow)))

    @staticmethod
    def removexattr(rel, name, follow=True):
        return ("removexattr %s %s" % (rel, name),
                lambda c: os.removexattr(c.p(rel), name, follow_symlinks=follow))

    @staticmethod
    def link(a, b):
        return ("link %s %s" % (a, b), lambda c: os.link(c.p(a), c.p(b)))

    @staticmethod
    def symlink(target, rel):
        return ("symlink %s -> %s" % (rel, target), lambda c: os.symlink(target, c.p(rel)))

    @staticmethod
    def unlink(rel):
        return ("unlink " + rel, lambda c: os.unlink(c.p(rel)))

    @staticmethod
    def rmdir(rel):
        return ("rmdir " + rel, lambda c: os.rmdir(c.p(rel)))

    @staticmethod
    def mkdir(rel, mode=0o755):
        return ("mkdir %s %04o" % (rel, mode), lambda c: os.mkdir(c.p(rel), mode))

    @staticmethod
    def mknod_fifo(rel, mode=0o644):
        return ("mkfifo " + rel, lambda c: os.mkfifo(c.p(rel), mode))

    @staticmethod
    def rename(a, b):
        return ("rename %s %s" % (a, b), lambda c: os.rename(c.p(a), c.p(b)))

    @staticmethod
    def renameat2(a, b, flags):
        fname = {1: "NOREPLACE", 2: "EXCHANGE"}.get(flags, str(flags))
        return ("renameat2 %s %s %s" % (a, b, fname),
                lambda c: renameat2(c.p(a), c.p(b), flags))

    @staticmethod
    def rmtree(rel):
        return ("rm -r " + rel, lambda c: shutil.rmtree(c.p(rel)))

    @staticmethod
    def listdir(rel=""):
        return ("listdir " + (rel or "."), lambda c: sorted(os.listdir(c.p(rel))))

    @staticmethod
    def stat(rel, fields=STD, follow=False):
        return ("%sstat %s %s" % ("" if follow else "l", rel, ",".join(fields)),
                lambda c: stat_fields(os.stat(c.p(rel), follow_symlinks=follow), fields))

    @staticmethod
    def ustat(rel, fields=("type", "mode", "uid", "gid")):
        """lstat of the upper's copy ('absent' when there is none)."""
        def fn(c):
            try:
                st = os.lstat(c.up(rel))
            except FileNotFoundError:
                return "absent"
            return stat_fields(st, fields)
        return ("upper-lstat %s %s" % (rel, ",".join(fields)), fn)

    @staticmethod
    def lstat_lower(layer, rel, fields=("type", "mode", "uid", "gid", "size", "mtime",
                                        "atime")):
        """lstat of a lower layer's own copy (to see that it was left alone)."""
        def fn(c):
            try:
                st = os.lstat(os.path.join(c.l[layer], rel))
            except FileNotFoundError:
                return "absent"
            return stat_fields(st, fields)
        return ("lower%d-lstat %s %s" % (layer, rel, ",".join(fields)), fn)

    @staticmethod
    def ulist(rel=""):
        """Names in the upper dir ('absent' when there is none)."""
        def fn(c):
            try:
                return sorted(os.listdir(c.up(rel)))
            except FileNotFoundError:
                return "absent"
        return ("upper-listdir " + (rel or "."), fn)

    @staticmethod
    def readlink(rel):
        return ("readlink " + rel, lambda c: os.readlink(c.p(rel)))

    @staticmethod
    def ino_mark(rel, key):
        def fn(c):
            c.vars["ino:" + key] = os.lstat(c.p(rel)).st_ino
            return "ok"
        return ("remember st_ino of %s as %s" % (rel, key), fn)

    @staticmethod
    def ino_same(rel, key):
        return ("st_ino of %s == %s" % (rel, key),
                lambda c: os.lstat(c.p(rel)).st_ino == c.vars["ino:" + key])

    @staticmethod
    def fsync(rel, data=False):
        def fn(c):
            fd = os.open(c.p(rel), os.O_RDONLY)
            try:
                (os.fdatasync if data else os.fsync)(fd)
            finally:
                os.close(fd)
        return ("f%ssync %s" % ("data" if data else "", rel), fn)

    @staticmethod
    def fallocate(rel, off, length):
        def fn(c):
            fd = os.open(c.p(rel), os.O_RDWR)
            try:
                os.posix_fallocate(fd, off, length)
            finally:
                os.close(fd)
        return ("posix_fallocate %s %d %d" % (rel, off, length), fn)

    @staticmethod
    def mmap_write(rel, off, data):
        if isinstance(data, str):
            data = data.encode()
        def fn(c):
            fd = os.open(c.p(rel), os.O_RDWR)
            try:
                size = os.fstat(fd).st_size
                mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                mm[off:off + len(data)] = data
                mm.flush()
                mm.close()
            finally:
                os.close(fd)
            return "ok"
        return ("mmap-write %s @%d %r" % (rel, off, data), fn)

    @staticmethod
    def as_user(uid, gid, code, umask=None, groups=None, label=None):
        """Runs python CODE as uid/gid (setpriv); CODE sees P(rel) -> merged
        path and sets R; prints R or the errno name."""
        def fn(c):
            prog = ("import os,sys,errno\nM=%r\nP=lambda r: os.path.join(M, r)\nR='ok'\n"
                    "try:\n%s\nexcept OSError as e:\n    R=errno.errorcode[e.errno]\n"
                    "print(repr(R))\n" % (c.m, "\n".join("    " + ln for ln in
                                                          code.strip().splitlines())))
            cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid]
            cmd += ["--groups=" + ",".join(map(str, groups))] if groups else ["--clear-groups"]
            if umask is not None:
                prog = "os.umask(%#o)\n" % umask + prog
                prog = "import os\n" + prog
            cmd += [PY, "-c", prog]
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=OP_TIMEOUT - 5, cwd="/")
            if p.returncode != 0:
                return "exit %d: %s" % (p.returncode, p.stderr.decode()[-300:])
            return p.stdout.decode().strip()
        return (label or "as %d:%d%s: %s" % (uid, gid, "" if umask is None else
                                               " umask %04o" % umask,
                                               code.strip().replace("\n", "; ")), fn)


def run_ops(ctx, ops, emit):
    for i, (label, fn) in enumerate(ops):
        try:
            r = fn(ctx)
            res = norm(r) if r is not None else "ok"
        except OSError as e:
            res = "ERR " + errname(e)
        except Exception as e:  # a test bug or a surprise: keep it visible
            res = "EXC %s: %s" % (type(e).__name__, e)
        emit([i, label, res])


# ------------------------------------------------------------------ scenarios

class Scenario:
    """name: short id.  build(b): makes the lowers with Builder b (b.upper is
    the upper dir when preupper=True).  ops: list of (label, fn(ctx)).
    nlowers: number of lower layers.  lfs_opts / k_opts: extra -o options.
    cross / remount: do those phases.  phase2: ops run after a remount with
    the other implementation (KK vs KL vs LK vs LL).  check(ctx_results):
    extra assertions."""

    def __init__(self, name, build, ops, nlowers=2, lfs_opts=(), k_opts=(), cross=True,
                 remount=True, preupper=False, phase2=None, desc="", merged_mode=None):
        self.name, self.build, self.ops = name, build, ops
        self.nlowers, self.lfs_opts, self.k_opts = nlowers, list(lfs_opts), list(k_opts)
        self.cross, self.remount, self.preupper = cross, remount, preupper
        self.phase2, self.desc, self.merged_mode = phase2, desc, merged_mode


class Side:
    def __init__(self, base, kind, sc):
        self.base, self.kind, self.sc = base, kind, sc
        self.lowers = [os.path.join(base, "l%d" % i) for i in range(sc.nlowers)]
        self.upper = os.path.join(base, "u")
        self.work = os.path.join(base, "w")
        self.merged = os.path.join(base, "m")

    def build(self):
        os.makedirs(self.base)
        os.chmod(self.base, 0o755)
        for d in self.lowers + [self.upper, self.work, self.merged]:
            os.makedirs(d)
        b = Builder(self.lowers, self.upper if self.sc.preupper else None)
        self.sc.build(b)
        b.finalize()
        if self.sc.merged_mode is not None:
            for d in self.lowers + [self.upper]:
                os.chmod(d, self.sc.merged_mode)

    def mount(self, kind, work=None, merged=None):
        opts = self.sc.lfs_opts if kind == "layerfs" else self.sc.k_opts
        return Mount(kind, self.lowers, self.upper, work or self.work, merged or self.merged,
                     opts).mount()


def udiff(a, b, na, nb):
    return "\n".join(difflib.unified_diff(a, b, na, nb, lineterm="", n=2))


class Result:
    def __init__(self, name):
        self.name = name
        self.problems = []

    def bad(self, what, detail=""):
        self.problems.append((what, detail))


def merged_snapshot(mount, res, what):
    lines, status = in_child(lambda emit: emit(snap_tree(mount.merged)), OP_TIMEOUT)
    if status != "ok" or not lines:
        res.bad("%s: snapshot of the %s merged tree %s" % (what, mount.kind, status))
        mount.abort()
        return None
    return lines[0]


def compare_lines(res, what, a, b, na, nb):
    if a != b:
        res.bad(what, udiff(a, b, na, nb))
        return False
    return True


def run_scenario(sc, tmp):
    res = Result(sc.name)
    root = os.path.join(tmp, sc.name)
    sides = {"kernel": Side(os.path.join(root, "k"), "kernel", sc),
             "layerfs": Side(os.path.join(root, "f"), "layerfs", sc)}
    os.makedirs(root)
    os.chmod(root, 0o755)
    for s in sides.values():
        s.build()

    steps, snaps, pre, mounts = {}, {}, {}, {}
    try:
        for kind, s in sides.items():
            try:
                mounts[kind] = s.mount(kind)
            except Exception as e:
                res.bad("%s mount failed: %s" % (kind, e))
                return res
            ctx = Ctx(mounts[kind])
            m = mounts[kind]
            got, status = in_child(lambda emit: emit(ino_scan(m.merged)))
            pre[kind] = got[0] if got else {}
            if status != "ok":
                res.bad("%s: pre-op scan %s" % (kind, status))
                m.abort()
                return res
            got, status = in_child(lambda emit: run_ops(ctx, sc.ops, emit))
            steps[kind] = got
            if status != "ok":
                res.bad("%s: operations %s (after %d of %d steps)" % (kind, status, len(got),
                                                                      len(sc.ops)))
                m.abort()
                return res
            snaps[kind] = merged_snapshot(m, res, "after ops")
            if snaps[kind] is None:
                return res

        def fmt_steps(kind):
            return ["%2d %s -> %s" % (i, label, json.dumps(r)) for i, label, r in steps[kind]]
        compare_lines(res, "step results differ", fmt_steps("kernel"), fmt_steps("layerfs"),
                      "kernel", "layerfs")
        if VERBOSE:
            log("\n".join("   k| " + x for x in fmt_steps("kernel")))

        def tree_lines(kind):
            sn = snaps[kind]
            return (sn["lines"] + ino_groups(sn["inos"], sn["types"]) +
                    ino_stability(pre[kind], sn["inos"], sn["types"]))
        compare_lines(res, "merged trees differ", tree_lines("kernel"), tree_lines("layerfs"),
                      "kernel merged", "layerfs merged")

        for kind in sides:
            if not mounts[kind].umount():
                res.bad("%s: clean unmount failed" % kind)
        uppers = {k: snap_tree(s.upper, upper=True) for k, s in sides.items()}

        def upper_lines(kind):
            u = uppers[kind]
            return u["lines"] + ino_groups(u["inos"], u["types"])
        compare_lines(res, "upper layouts differ", upper_lines("kernel"), upper_lines("layerfs"),
                      "kernel upper", "layerfs upper")
        if VERBOSE:
            log("\n".join("   ku| " + x for x in upper_lines("kernel")))

        # Remount each with itself: st_ino persistence.
        if sc.remount:
            persist = {}
            for kind, s in sides.items():
                m = s.mount(kind, work=s.work)
                got, status = in_child(lambda emit: emit(ino_scan(m.merged)))
                if status != "ok":
                    res.bad("%s: scan after remount %s" % (kind, status))
                    m.abort()
                    return res
                after = got[0]
                sn = snaps[kind]
                persist[kind] = ["%s ino %s" % (r, "kept" if after[r][0] == sn["inos"][r]
                                                else "CHANGED")
                                 for r in sorted(after) if r in sn["inos"]] + \
                    ["%s missing after remount" % r for r in sorted(sn["inos"]) if r not in after]
                if not m.umount():
                    res.bad("%s: clean unmount after remount failed" % kind)
            compare_lines(res, "st_ino persistence across remount differs",
                          persist["kernel"], persist["layerfs"], "kernel", "layerfs")

        if sc.cross:
            kref = snaps["kernel"]["lines"]
            for upper_of, reader in (("layerfs", "kernel"), ("kernel", "layerfs")):
                s = sides[upper_of]
                w2 = os.path.join(s.base, "w-cross")
                m2 = os.path.join(s.base, "m-cross")
                try:
                    m = s.mount(reader, work=w2, merged=m2)
                except Exception as e:
                    res.bad("cross-mount: %s cannot mount the %s upper: %s" % (reader, upper_of,
                                                                                e))
                    continue
                sn = merged_snapshot(m, res, "cross-mount")
                if sn is None:
                    continue
                compare_lines(res, "cross-mount: %s reading the %s upper differs from the kernel "
                              "tree" % (reader, upper_of), kref, sn["lines"],
                              "kernel merged (kernel upper)",
                              "%s merged (%s upper)" % (reader, upper_of))
                if not m.umount():
                    res.bad("cross-mount %s: clean unmount failed" % reader)
    finally:
        for m in mounts.values():
            if m in Mount.live:
                m.abort()
    return res


def run_phase2(sc, tmp):
    """Two phases: ops with A, unmount, phase2 ops with B, on the same upper.
    Variants KK (reference), KL, LK, LL; each compared to KK."""
    res = Result(sc.name)
    root = os.path.join(tmp, sc.name)
    os.makedirs(root)
    os.chmod(root, 0o755)
    variants = [("kernel", "kernel"), ("kernel", "layerfs"), ("layerfs", "kernel"),
                ("layerfs", "layerfs")]
    out = {}
    short = {"kernel": "K", "layerfs": "L"}
    try:
        for a, b in variants:
            tag = short[a] + short[b]
            s = Side(os.path.join(root, tag), a, sc)
            s.build()
            lines = []
            for phase, kind, ops in ((1, a, sc.ops), (2, b, sc.phase2)):
                work = s.work if phase == 1 else s.work + "2"
                try:
                    m = s.mount(kind, work=work)
                except Exception as e:
                    res.bad("%s phase %d: %s mount failed: %s" % (tag, phase, kind, e))
                    break
                ctx = Ctx(m)
                got, status = in_child(lambda emit: run_ops(ctx, ops, emit))
                lines += ["phase%d %2d %s -> %s" % (phase, i, lb, json.dumps(r))
                          for i, lb, r in got]
                if status != "ok":
                    res.bad("%s phase %d (%s): operations %s" % (tag, phase, kind, status))
                    m.abort()
                    break
                sn = merged_snapshot(m, res, "%s phase %d" % (tag, phase))
                if sn is None:
                    break
                lines += ["phase%d tree %s" % (phase, x) for x in sn["lines"]]
                lines += ["phase%d %s" % (phase, x) for x in ino_groups(sn["inos"], sn["types"])]
                if not m.umount():
                    res.bad("%s phase %d: clean unmount failed" % (tag, phase))
            up = snap_tree(s.upper, upper=True)
            lines += ["upper " + x for x in up["lines"]]
            out[tag] = lines
        if VERBOSE and "KK" in out:
            log("\n".join("   KK| " + x for x in out["KK"]))
        for tag in ("KL", "LK", "LL"):
            if tag in out:
                compare_lines(res, "%s differs from KK (phase1 %s, phase2 %s)" %
                              (tag, {"K": "kernel", "L": "layerfs"}[tag[0]],
                               {"K": "kernel", "L": "layerfs"}[tag[1]]),
                              out["KK"], out[tag], "KK", tag)
    finally:
        cleanup_mounts()
    return res


def main(argv):
    tmp = None
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "--tmp":
            tmp = argv[i + 1]
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if not tmp or not args:
        print("usage: scenario.py --tmp DIR CASES.py [NAME...]", file=sys.stderr)
        return 2
    cases_file, names = args[0], args[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    ns = {"__file__": cases_file, "__name__": "cases"}
    with open(cases_file) as f:
        exec(compile(f.read(), cases_file, "exec"), ns)
    cases = ns["CASES"]
    if names:
        cases = [c for c in cases if c.name in names]
    signal.signal(signal.SIGTERM, lambda *a: (cleanup_mounts(), os._exit(1)))
    results = []
    t0 = time.monotonic()
    try:
        for sc in cases:
            t1 = time.monotonic()
            try:
                r = run_phase2(sc, tmp) if sc.phase2 is not None else run_scenario(sc, tmp)
            except Exception:
                r = Result(sc.name)
                r.bad("runner error", traceback.format_exc())
            finally:
                cleanup_mounts()
            shutil.rmtree(os.path.join(tmp, sc.name), ignore_errors=True)
            results.append(r)
            verdict = "ok" if not r.problems else "FAILED"
            log("== %-34s %s (%.1fs)%s" % (sc.name, verdict, time.monotonic() - t1,
                                          "  -- " + sc.desc if sc.desc else ""))
            for what, detail in r.problems:
                log("   * " + what)
                if detail:
                    for ln in detail.splitlines()[:120]:
                        log("     | " + ln)
    finally:
        cleanup_mounts()
    failed = [r.name for r in results if r.problems]
    log("%d scenarios, %d failed (%.1fs)%s" % (len(results), len(failed),
                                             time.monotonic() - t0,
                                             ": " + " ".join(failed) if failed else ""))
    if failed:
        print("FAIL: %s" % " ".join(failed))
        return 1
    if not results:
        print("SKIP: no scenario selected")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
