#!/usr/bin/env python3
"""Differential tester: layerfs against the kernel's overlayfs, on random
layers and random operation sequences (seeded, reproducible).

For each seed it generates 2-4 random lower layers, copies them (cp -a) for
each side, mounts one stack with layerfs and one with kernel overlay
(redirect_dir=on, layerfs's default), runs the same random operations on both
merged trees, and compares:

  * after every step: the result (value or errno name) and the state of the
    touched paths (type, mode, uid, gid, size and nlink for non-dirs, mtime
    class, content hash, symlink target, xattrs, directory listing);
  * at the end: the whole merged tree, plus which paths share an st_ino
    (the partition, not the numbers);
  * the two uppers after unmounting (whiteouts, opaque markers, redirects,
    xattrs; origin and uuid: presence only; impure ignored);
  * each upper remounted under the other implementation (and under its own),
    fresh workdirs, against the kernel reading the kernel's upper.

On a mismatch it shrinks the operation sequence (delta debugging, rerunning
subsets from scratch), then the lower entries, and prints the seed, the
minimal sequence, both results, and the case as a scenario for
tests/write/scenario.py.  Deliberate differences (KNOWN below) are reported
as "known difference: ..." and do not fail.

  difftest.py --seeds 1,2,3 --ops 200      fixed seeds (the suite)
  difftest.py --seconds 600 --ops 300      soak: fresh seeds until time is up
  difftest.py --replay CASE.json           rerun a saved (shrunk) case

Needs root, /dev/fuse and the kernel overlay; exits 77 (skip) without them.
Last line: "diff: N seeds, M ops, K mismatches" (K: seeds, or replayed cases,
that showed an unexplained difference).  Exit 0 when K == 0.  See README.md.
"""
import argparse
import atexit
import ctypes
import ctypes.util
import errno
import hashlib
import json
import mmap
import os
import random
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERFS = os.environ.get("LAYERFS") or os.path.join(HERE, "..", "..", "build", "tools", "layerfs")
OP_TIMEOUT = 30.0        # one operation (or one snapshot) on a mount
MOUNT_TIMEOUT = 30
NAME_MAX = 255

# Builder times: fixed and old, so "old:<ns>" vs "new" is comparable.
T_ATIME = 1_000_000_000_000_000_000    # 2001-09-09
T_MTIME = 1_100_000_000_000_000_000    # 2004-11-09
OLD_LIMIT = 1_577_836_800_000_000_000  # 2020-01-01
NOWHERE = "/nonexistent-layerfs-diff"  # absolute symlinks point below this

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 0x10
# test hook for the watchdog: SIGSTOP the layerfs daemon before this step
# ("N" stops it, "N:KILL" kills it)
_hook = os.environ.get("DIFFTEST_STOP_DAEMON_AT", "-1").split(":")
STOP_DAEMON_AT = int(_hook[0])
STOP_DAEMON_SIG = getattr(signal, "SIG" + _hook[1]) if len(_hook) > 1 else signal.SIGSTOP
PAD_DEPTH = 8            # merged dirs sit this deep: a relative symlink that
MAX_DOTDOT = 6           # climbs out of the tree lands in our own padding

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ovltest import (AT_FDCWD, AT_SYMLINK_NOFOLLOW, RENAME_EXCHANGE, RENAME_NOREPLACE,  # noqa: E402,F401
                     UTIME_NOW, UTIME_OMIT, Timespec, daemon_pids, fallocate, is_mounted, libc,
                     mountpoints, pid_alive, renameat2, utimensat)


# ------------------------------------------------------------------ hashing

class _Hasher:
    def __init__(self):
        self.lib = None
        try:
            lib = ctypes.CDLL("libxxhash.so.0")
            lib.XXH64.restype = ctypes.c_ulonglong
            lib.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_ulonglong]
            self.lib = lib
        except OSError:
            pass

    def __call__(self, data):
        if self.lib is not None:
            return "%016x" % self.lib.XXH64(data, len(data), 0)
        return hashlib.blake2b(data, digest_size=8).hexdigest()


xxh = _Hasher()


def pat(word, n):
    """The bytes of a generated payload: WORD repeated, cut to N."""
    w = word.encode()
    return (w * (n // len(w) + 1))[:n]


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def tclass(ns):
    return "old:%d" % ns if ns < OLD_LIMIT else "new"


def ftype(st):
    m = st.st_mode
    if stat.S_ISREG(m):
        return "reg"
    if stat.S_ISDIR(m):
        return "dir"
    if stat.S_ISLNK(m):
        return "lnk"
    if stat.S_ISCHR(m):
        return "wh" if st.st_rdev == 0 else "chr"
    if stat.S_ISFIFO(m):
        return "fifo"
    if stat.S_ISBLK(m):
        return "blk"
    if stat.S_ISSOCK(m):
        return "sock"
    return "?"


def _shorten(v):
    if isinstance(v, str) and len(v) > 48:
        return "/".join(c if len(c) <= 24 else "%s..(%d)..%s" % (c[:8], len(c), c[-6:])
                        for c in v.split("/"))
    if isinstance(v, list):
        return [_shorten(x) for x in v]
    if isinstance(v, dict):
        return {k: _shorten(x) for k, x in v.items()}
    return v


def show(v, limit=160):
    s = json.dumps(_shorten(v), sort_keys=True, ensure_ascii=False)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


# ------------------------------------------------------------------ state capture
# (these run in the worker processes, on a mount)

# impure is a cache hint the kernel writes on directories holding copied-up
# or moved entries; origin bytes are file handles (compared for presence).
PRIVATE_UPPER_DROP = ("trusted.overlay.impure", "user.overlay.impure")
# origin: file handles of each side's own lowers; uuid: random per mount
ORIGIN_NAMES = ("trusted.overlay.origin", "user.overlay.origin",
                "trusted.overlay.uuid", "user.overlay.uuid")


def xattr_map(path, upper=False):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return {"<list>": "E:" + errname(e)}
    out = {}
    for n in names:
        if upper and n in PRIVATE_UPPER_DROP:
            continue
        if upper and n in ORIGIN_NAMES:
            out[n] = "<present>"
            continue
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
            out[n] = v.hex() if len(v) <= 48 else "h:%d:%s" % (len(v), xxh(v))
        except OSError as e:
            out[n] = "E:" + errname(e)
    return out


def file_hash(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        return "E:" + errname(e)
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        data = b"".join(chunks)
        return "%d:%s" % (len(data), xxh(data))
    except OSError as e:
        return "E:" + errname(e)
    finally:
        os.close(fd)


def listing(path):
    """(names, phantoms): phantoms are listed names whose lstat says ENOENT."""
    names = sorted(os.listdir(path))
    real, phantoms = [], []
    for n in names:
        try:
            os.lstat(os.path.join(path, n))
            real.append(n)
        except OSError as e:
            (phantoms if e.errno == errno.ENOENT else real).append(n)
    return real, phantoms


def record(path, upper=False, with_names=True, st=None):
    """The state of one path, as a flat dict of comparable fields."""
    if st is None:
        try:
            st = os.lstat(path)
        except OSError as e:
            return {"err": errname(e)}
    t = ftype(st)
    r = {"type": t, "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid,
         "gid": st.st_gid}
    if t not in ("dir", "wh"):
        r["size"] = st.st_size
        r["nlink"] = st.st_nlink
    if t != "wh":
        r["mtime"] = tclass(st.st_mtime_ns)
    if t == "reg":
        r["content"] = file_hash(path)
    elif t == "lnk":
        try:
            r["target"] = os.readlink(path)
        except OSError as e:
            r["target"] = "E:" + errname(e)
    elif t == "chr":
        r["rdev"] = "%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    for n, v in xattr_map(path, upper).items():
        r["x:" + n] = v
    if t == "dir" and with_names:
        try:
            names, phantoms = listing(path)
            r["names"] = names
            r["phantoms"] = phantoms
        except OSError as e:
            r["names"] = "E:" + errname(e)
    return r


def walk(root):
    """[(rel, lstat or None, errname or None)] for the whole tree, sorted,
    phantom entries (listed, lstat ENOENT) included with err ENOENT."""
    out = []

    def rec(rel):
        d = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(d))
        except OSError as e:
            out.append((rel, None, "LISTDIR:" + errname(e)))
            return
        for n in names:
            r = rel + "/" + n if rel else n
            try:
                st = os.lstat(os.path.join(root, r))
            except OSError as e:
                out.append((r, None, errname(e)))
                continue
            out.append((r, st, None))
            if stat.S_ISDIR(st.st_mode):
                rec(r)
    rec("")
    return out


def tree_types(root):
    """{rel: type} ('?' for phantoms) for the op generator."""
    out = {"": "dir"}
    for rel, st, err in walk(root):
        if st is not None:
            out[rel] = ftype(st)
        elif err == "ENOENT":
            out[rel] = "?"
    return out


def snapshot(root, upper=False):
    """{"recs": {rel: record}, "ino": {rel: st_ino}} of the whole tree."""
    recs, inos = {}, {}
    recs["."] = record(root, upper)
    for rel, st, err in walk(root):
        if st is None:
            if err.startswith("LISTDIR:"):
                recs.setdefault(rel or ".", {})["names"] = "E:" + err[8:]
            else:
                recs[rel] = {"err": err}
            continue
        recs[rel] = record(os.path.join(root, rel), upper, with_names=False, st=st)
        t = recs[rel]["type"]
        if t != "wh":
            inos[rel] = st.st_ino
        if t == "dir":
            try:
                names, phantoms = listing(os.path.join(root, rel))
                recs[rel]["phantoms"] = phantoms
            except OSError:
                pass
    return {"recs": recs, "ino": inos}


# ------------------------------------------------------------------ operations
# An operation is a JSON list: [name, args...].  Paths are relative to the
# merged root.  Slots hold fds kept open across operations.

OPEN_FLAGS = {"O_RDONLY": os.O_RDONLY, "O_WRONLY": os.O_WRONLY, "O_RDWR": os.O_RDWR,
              "O_CREAT": os.O_CREAT, "O_EXCL": os.O_EXCL, "O_TRUNC": os.O_TRUNC,
              "O_APPEND": os.O_APPEND, "O_DIRECTORY": os.O_DIRECTORY,
              "O_NOFOLLOW": os.O_NOFOLLOW}


def flags_of(names):
    f = 0
    for n in names:
        f |= OPEN_FLAGS[n]
    return f


# which arguments are paths, per op (indices into op[1:])
PATH_ARGS = {
    "read": [0], "write": [0], "append": [0], "truncate": [0], "open": [0], "mkdir": [0],
    "unlink": [0], "rmdir": [0], "rename": [0, 1], "link": [0, 1], "symlink": [1],
    "mkfifo": [0], "chmod": [0], "chown": [0], "utime": [0], "setxattr": [0],
    "removexattr": [0], "getxattr": [0], "listxattr": [0], "listdir": [0], "readlink": [0],
    "lstat": [0], "fallocate": [0], "mmap": [0], "fdopen": [1], "rmtree": [0],
}
# ops that follow a symlink in the last component
FOLLOWS = {"read", "write", "append", "truncate", "open", "chmod", "fallocate", "mmap",
           "fdopen"}
STRUCTURAL = {"open", "mkdir", "unlink", "rmdir", "rename", "link", "symlink", "mkfifo",
              "rmtree"}


class OpCtx:
    def __init__(self, root, base):
        self.root = root
        self.base = base        # everything we may touch lies below this
        self.fds = {}

    def p(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    def safe(self, path, follow):
        """A symlink must never lead an operation out of our temp dir."""
        d = path if follow else os.path.dirname(path)
        real = os.path.realpath(d)
        return real == self.base or real.startswith(self.base + "/") or \
            real.startswith(NOWHERE + "/") or real == NOWHERE

    def close_all(self):
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()


def fstat_rec(st):
    r = {"type": ftype(st), "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid,
         "gid": st.st_gid}
    if r["type"] != "dir":
        r["size"] = st.st_size
        r["nlink"] = st.st_nlink
    return r


def do_op(c, op):
    name, a = op[0], op[1:]
    for i in PATH_ARGS.get(name, []):
        follow = name in FOLLOWS or (name in ("chown", "utime") and a[-1])
        if not c.safe(c.p(a[i]), follow):
            return "unsafe-path"
    P = c.p
    NB = os.O_NONBLOCK
    if name == "read":
        fd = os.open(P(a[0]), os.O_RDONLY | NB)
        try:
            data = b""
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                data += b
            return "%d:%s" % (len(data), xxh(data))
        finally:
            os.close(fd)
    if name == "write":
        path, off, word, n = a
        fd = os.open(P(path), os.O_WRONLY | NB)
        try:
            return os.pwrite(fd, pat(word, n), off)
        finally:
            os.close(fd)
    if name == "append":
        path, word, n = a
        fd = os.open(P(path), os.O_WRONLY | os.O_APPEND | NB)
        try:
            return os.write(fd, pat(word, n))
        finally:
            os.close(fd)
    if name == "truncate":
        os.truncate(P(a[0]), a[1])
        return None
    if name == "open":
        path, fl, mode, word, n = a
        fd = os.open(P(path), flags_of(fl) | NB, mode)
        try:
            if n:
                return os.write(fd, pat(word, n))
            return None
        finally:
            os.close(fd)
    if name == "mkdir":
        os.mkdir(P(a[0]), a[1])
        return None
    if name == "unlink":
        os.unlink(P(a[0]))
        return None
    if name == "rmdir":
        os.rmdir(P(a[0]))
        return None
    if name == "rmtree":
        rm_rf(P(a[0]))
        return None
    if name == "rename":
        if a[2]:
            renameat2(P(a[0]), P(a[1]), a[2])
        else:
            os.rename(P(a[0]), P(a[1]))
        return None
    if name == "link":
        os.link(P(a[0]), P(a[1]), follow_symlinks=False)
        return None
    if name == "symlink":
        os.symlink(a[0], P(a[1]))
        return None
    if name == "mkfifo":
        os.mkfifo(P(a[0]), a[1])
        return None
    if name == "chmod":
        os.chmod(P(a[0]), a[1])
        return None
    if name == "chown":
        os.chown(P(a[0]), a[1], a[2], follow_symlinks=a[3])
        return None
    if name == "utime":
        utimensat(P(a[0]), a[1], a[2], a[3])
        return None
    if name == "setxattr":
        path, xn, word, n, fl = a
        os.setxattr(P(path), xn, pat(word, n), fl, follow_symlinks=False)
        return None
    if name == "removexattr":
        os.removexattr(P(a[0]), a[1], follow_symlinks=False)
        return None
    if name == "getxattr":
        v = os.getxattr(P(a[0]), a[1], follow_symlinks=False)
        return "%d:%s" % (len(v), xxh(v))
    if name == "listxattr":
        return {"xattrs": sorted(os.listxattr(P(a[0]), follow_symlinks=False))}
    if name == "listdir":
        names, phantoms = listing(P(a[0]))
        return {"names": names, "phantoms": phantoms}
    if name == "readlink":
        return os.readlink(P(a[0]))
    if name == "lstat":
        return fstat_rec(os.lstat(P(a[0])))
    if name == "fallocate":
        path, mode, off, length = a
        fd = os.open(P(path), os.O_RDWR | NB)
        try:
            fallocate(fd, mode, off, length)
            return None
        finally:
            os.close(fd)
    if name == "mmap":
        path, off, word, n = a
        fd = os.open(P(path), os.O_RDWR | NB)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return "empty"
            if off >= size:
                return "beyond"
            data = pat(word, min(n, size - off))
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            try:
                mm[off:off + len(data)] = data
                mm.flush()
            finally:
                mm.close()
            return len(data)
        finally:
            os.close(fd)
    # fd slots
    slot = a[0]
    if name == "fdopen":
        old = c.fds.pop(slot, None)
        if old is not None:
            os.close(old)
        c.fds[slot] = os.open(P(a[1]), flags_of(a[2]) | NB)
        return None
    fd = c.fds.get(slot)
    if fd is None:
        return "no-fd"
    if name == "fdread":
        data = os.pread(fd, a[2], a[1])
        return "%d:%s" % (len(data), xxh(data))
    if name == "fdwrite":
        return os.pwrite(fd, pat(a[2], a[3]), a[1])
    if name == "fdappend":
        return os.write(fd, pat(a[1], a[2]))
    if name == "fdstat":
        return fstat_rec(os.fstat(fd))
    if name == "fdtrunc":
        os.ftruncate(fd, a[1])
        return None
    if name == "fdsync":
        os.fsync(fd)
        return None
    if name == "fdlist":
        real, phantoms = [], []
        for n in sorted(os.listdir(fd)):
            try:
                os.lstat(n, dir_fd=fd)
                real.append(n)
            except OSError as e:
                (phantoms if e.errno == errno.ENOENT else real).append(n)
        return {"names": real, "phantoms": phantoms}
    if name == "fdxattr":
        os.setxattr(fd, a[1], pat(a[2], a[3]))
        return None
    if name == "fdclose":
        del c.fds[slot]
        os.close(fd)
        return None
    raise ValueError("unknown op %r" % (name,))


def rm_rf(path):
    """rm -rf PATH: depth first, without following symlinks; like rm -f, an
    entry that is gone (ENOENT) when unlinked is no error."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        for n in sorted(os.listdir(path)):
            try:
                rm_rf(os.path.join(path, n))
            except FileNotFoundError:
                pass
        os.rmdir(path)
    else:
        os.unlink(path)


def run_op(c, op):
    try:
        r = do_op(c, op)
        return "ok" if r is None else r
    except OSError as e:
        return "E:" + errname(e)
    except Exception as e:   # a tester bug or a surprise: keep it visible
        return "X:%s: %s" % (type(e).__name__, e)


def qpath(p):
    """A path for humans: long names cut in the middle."""
    if p == "":
        return "."
    parts = []
    for c in p.split("/"):
        parts.append(c if len(c) <= 24 else "%s..(%d)..%s" % (c[:8], len(c), c[-6:]))
    return "/".join(parts)


def op_label(op):
    name, a = op[0], op[1:]
    q = qpath
    if name in ("write", "fdwrite"):
        return "%s %s @%d %d bytes of %r" % (name, q(a[0]) if name == "write" else "fd%d" % a[0],
                                             a[1], a[3], a[2])
    if name == "append":
        return "append %s %d bytes of %r" % (q(a[0]), a[2], a[1])
    if name == "open":
        return "open %s %s mode %04o%s" % (q(a[0]), "|".join(a[1]), a[2],
                                          " + write %d bytes" % a[4] if a[4] else "")
    if name == "rename":
        fl = {0: "", 1: " NOREPLACE", 2: " EXCHANGE"}[a[2]]
        return "rename%s %s -> %s" % (fl, q(a[0]), q(a[1]))
    if name == "symlink":
        return "symlink %s -> %r" % (q(a[1]), a[0] if len(a[0]) < 80 else a[0][:40] + "...")
    if name in ("mkdir", "chmod", "mkfifo"):
        return "%s %s %04o" % (name, q(a[0]), a[1])
    if name == "setxattr":
        return "setxattr %s %s=%d bytes of %r flags=%d" % (q(a[0]), a[1], a[3], a[2], a[4])
    if name == "fdopen":
        return "fd%d = open %s %s" % (a[0], q(a[1]), "|".join(a[2]))
    if name.startswith("fd"):
        return "%s fd%d %s" % (name, a[0], " ".join(map(str, a[1:])))
    if name == "fallocate":
        return "fallocate %s mode=%#x off=%d len=%d" % (q(a[0]), a[1], a[2], a[3])
    if name == "mmap":
        return "mmap-write %s @%d %d bytes of %r" % (q(a[0]), a[1], a[3], a[2])
    parts = []
    for i, v in enumerate(a):
        parts.append(q(v) if i in PATH_ARGS.get(name, []) else str(v))
    return name + " " + " ".join(parts)


def touched_paths(op, slots):
    """Paths whose state is compared after OP: its path args and their parents."""
    name, a = op[0], op[1:]
    paths = []
    if name.startswith("fd") and name != "fdopen":
        if a[0] in slots:
            paths.append(slots[a[0]])
    else:
        for i in PATH_ARGS.get(name, []):
            paths.append(a[i])
    out = []
    for p in paths:
        for q in (p, os.path.dirname(p)):
            if q not in out:
                out.append(q)
    return out


# ------------------------------------------------------------------ workers

class Hang(Exception):
    pass


class WorkerDied(Exception):
    pass


def worker_loop(rfd, wfd, root, base):
    c = OpCtx(root, base)
    buf = b""
    out = os.fdopen(wfd, "wb")

    def reply(obj):
        out.write((json.dumps(obj) + "\n").encode())
        out.flush()
    while True:
        while b"\n" not in buf:
            chunk = os.read(rfd, 65536)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        msg = json.loads(line)
        cmd = msg["c"]
        try:
            if cmd == "op":
                res = {"r": run_op(c, msg["op"])}
                res["state"] = {p: record(c.p(p)) for p in msg.get("state", [])}
                if msg.get("tree"):
                    res["tree"] = tree_types(root)
                reply(res)
            elif cmd == "snap":
                reply(snapshot(root))
            elif cmd == "tree":
                reply(tree_types(root))
            elif cmd == "closeall":
                c.close_all()
                reply("ok")
            elif cmd == "exit":
                c.close_all()
                reply("ok")
                return
        except Exception:
            reply({"__crash__": traceback.format_exc()})


class Worker:
    """A forked process that runs operations on one mount; every reply is
    awaited with a deadline (a hung daemon fails the run, never hangs it)."""
    live = []

    def __init__(self, root, base, label):
        self.label = label
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(w1)
                os.close(r2)
                for w in Worker.live:      # other workers' pipes
                    for fd in (w.wfd, w.rfd):
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                os.chdir("/")
                worker_loop(r1, w2, root, base)
            finally:
                os._exit(0)
        os.close(r1)
        os.close(w2)
        self.pid, self.wfd, self.rfd, self.buf = pid, w1, r2, b""
        Worker.live.append(self)

    def send(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        try:
            while data:
                n = os.write(self.wfd, data)
                data = data[n:]
        except OSError:
            raise WorkerDied(self.label)

    def recv(self, timeout=None):
        deadline = time.monotonic() + (timeout or OP_TIMEOUT)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Hang(self.label)
            rd, _, _ = select.select([self.rfd], [], [], left)
            if not rd:
                continue
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise WorkerDied(self.label)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        obj = json.loads(line)
        if isinstance(obj, dict) and "__crash__" in obj:
            raise RuntimeError("worker %s crashed:\n%s" % (self.label, obj["__crash__"]))
        return obj

    def call(self, obj, timeout=None):
        self.send(obj)
        return self.recv(timeout)

    def signal_kill(self):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def kill(self):
        if self.pid is None:
            return
        self.signal_kill()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                p, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if p:
                break
            time.sleep(0.02)
        self.close()

    def close(self):
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.pid = None
        if self in Worker.live:
            Worker.live.remove(self)

    def stop(self):
        """Close fds and exit cleanly; kill if it does not answer."""
        if self.pid is None:
            return
        try:
            self.call({"c": "exit"}, timeout=15)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.close()
        except (Hang, WorkerDied, RuntimeError, OSError):
            self.kill()


# ------------------------------------------------------------------ mounts

def run(cmd, timeout=MOUNT_TIMEOUT):
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, (e.output or b"") + b" (timeout)")
    except OSError as e:          # e.g. the binary is being rebuilt
        return subprocess.CompletedProcess(cmd, 126, ("cannot run %s: %s" % (cmd[0], e)).encode())


class Mount:
    live = []

    def __init__(self, kind, lowers, upper, work, merged):
        self.kind, self.lowers, self.upper, self.work, self.merged = \
            kind, lowers, upper, work, merged
        self.pids = []

    def mount(self):
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d, exist_ok=True)
        Mount.live.append(self)
        if self.kind == "kernel":
            o = "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=on" % (
                ":".join(self.lowers), self.upper, self.work)
            p = run(["mount", "-t", "overlay", "overlay", "-o", o, self.merged])
        else:
            p = run([LAYERFS, "mount", ":".join(self.lowers), self.upper, self.merged,
                     "--workdir", self.work])
            self.pids = daemon_pids(self.merged)
        if p.returncode != 0 or not is_mounted(self.merged):
            msg = p.stdout.decode(errors="replace").strip()
            self.abort()
            raise RuntimeError("%s mount failed (exit %d): %s" % (self.kind, p.returncode, msg))
        return self

    def umount(self):
        """Clean unmount, else lazy; waits for the daemon.  True if clean."""
        ok = True
        if is_mounted(self.merged):
            if self.kind == "layerfs":
                p = run([LAYERFS, "umount", self.merged], timeout=30)
            else:
                p = run(["umount", self.merged], timeout=30)
            if p.returncode != 0:
                ok = False
            if is_mounted(self.merged):
                ok = False
                self._lazy()
        deadline = time.monotonic() + 15
        for pid in self.pids:
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if pid_alive(pid):
                ok = False
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self in Mount.live:
            Mount.live.remove(self)
        return ok

    def _lazy(self):
        if self.kind == "layerfs":
            run(["fusermount3", "-u", "-z", self.merged], timeout=10)
        if is_mounted(self.merged):
            run(["umount", "-l", self.merged], timeout=10)

    def abort(self):
        """After a hang or failure: kill the daemon, lazy-unmount."""
        for pid in self.pids or daemon_pids(self.merged):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if is_mounted(self.merged):
            self._lazy()
        if self in Mount.live:
            Mount.live.remove(self)


def cleanup_all():
    for w in list(Worker.live):
        w.kill()
    for m in reversed(list(Mount.live)):
        try:
            if m.kind == "layerfs":
                m.abort()
            else:
                m.umount()
        except Exception:
            pass


# ------------------------------------------------------------------ lower layers
# A build is a list of actions (JSON lists), applied by Builder exactly as
# tests/write/scenario.py's Builder applies the printed scenario.

class Builder:
    def __init__(self, layers):
        self.layers = layers

    def p(self, layer, rel):
        return os.path.join(self.layers[layer], rel)

    def _parents(self, layer, rel):
        d = os.path.dirname(rel)
        if d:
            os.makedirs(self.p(layer, d), exist_ok=True)

    def apply(self, act):
        k, layer, rel = act[0], act[1], act[2]
        path = self.p(layer, rel)
        if k != "setx":
            self._parents(layer, rel)
        if k == "dir":
            _, _, _, mode, uid, gid, xattrs = act
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
            for n, v in xattrs:
                os.setxattr(path, n, bytes.fromhex(v))
        elif k == "file":
            _, _, _, word, n, mode, uid, gid, xattrs = act
            with open(path, "wb") as f:
                f.write(pat(word, n) if n else b"")
            os.chown(path, uid, gid)
            os.chmod(path, mode)
            for xn, v in xattrs:
                os.setxattr(path, xn, bytes.fromhex(v))
        elif k == "sparse":
            _, _, _, size, chunks = act
            with open(path, "wb") as f:
                f.truncate(size)
                for off, word, n in chunks:
                    f.seek(off)
                    f.write(pat(word, n))
        elif k == "symlink":
            _, _, _, target, uid, gid = act
            os.symlink(target, path)
            os.lchown(path, uid, gid)
        elif k == "hardlink":
            os.link(self.p(layer, act[3]), path)
        elif k == "whiteout":
            os.mknod(path, stat.S_IFCHR | 0, os.makedev(0, 0))
        elif k == "fifo":
            os.mkfifo(path, act[3])
        elif k == "setx":   # an xattr on an existing entry (symlinks, opaque marks)
            os.setxattr(path, act[3], bytes.fromhex(act[4]), follow_symlinks=False)
        else:
            raise ValueError(act)

    def finalize(self):
        """Fixed times, deepest first so directories keep theirs."""
        i = 0
        for root in self.layers:
            paths = []
            for dp, dns, fns in os.walk(root):
                for n in dns + fns:
                    paths.append(os.path.join(dp, n))
            paths.sort(key=lambda x: (-x.count("/"), x))
            for path in paths + [root]:
                i += 1
                os.utime(path, ns=(T_ATIME, T_MTIME + i * 1_000_000_001), follow_symlinks=False)


def build_layers(build, nlowers, dest):
    layers = [os.path.join(dest, "l%d" % i) for i in range(nlowers)]
    for d in layers:
        os.makedirs(d)
    b = Builder(layers)
    for act in build:
        try:
            b.apply(act)
        except OSError:
            # a shrunk build can lack a hard link's source or hold a file
            # where a later entry wants a directory: skip that entry
            pass
    b.finalize()
    return layers


def rand_word(rng, k=None):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(k or
                                                                                      rng.randint(3, 6)))


class Flavour:
    """Per-seed generation choices (also drive the known-difference rules)."""
    def __init__(self, rng):
        self.nlowers = rng.randint(2, 4)
        self.xwh_layers = {i for i in range(self.nlowers) if rng.random() < 0.35}
        self.aufs = rng.random() < 0.25
        self.uovl = rng.random() < 0.3
        self.long_names = ["".join(rng.choice("LMNOPQRSTUVWXYZ") for _ in range(
            rng.choice([200, 240, 251, 252, 254, 255]))) for _ in range(3)]
        base = list("abcdefghijklmnop") + ["sub", "dir", "data", "lib", "x1", "x2"]
        rng.shuffle(base)
        self.short = base[:rng.randint(8, 14)]
        self.odd = ["sp ace", "\u00fcn\u00efc\u00f6de", ".dot", "-dash", "x.y.z", "a:b", "q\\e"]


def pick_name(rng, fl, for_op=False):
    r = rng.random()
    if r < 0.80:
        return rng.choice(fl.short)
    if r < 0.90:
        return rng.choice(fl.long_names)
    if r < 0.97:
        return rng.choice(fl.odd)
    return rand_word(rng)


def gen_xattrs(rng, fl, kind):
    xs = []
    if rng.random() < 0.25:
        for _ in range(rng.randint(1, 3)):
            if kind == "lnk":
                n = "trusted." + rand_word(rng, 3)
            else:
                n = rng.choice(["user.", "user.", "trusted."]) + rand_word(rng, 3)
            xs.append([n, pat(rand_word(rng), rng.choice([0, 1, 5, 30, 100, 250])).hex()])
    if fl.uovl and kind != "lnk" and rng.random() < 0.15:
        xs.append([rng.choice(["user.overlay.", "user.fuseoverlayfs."]) + rand_word(rng, 4),
                   pat(rand_word(rng), 4).hex()])
    return xs


MODES_F = [0o644, 0o644, 0o600, 0o755, 0o444, 0o640, 0o4755, 0o2755, 0o000, 0o666]
MODES_D = [0o755, 0o755, 0o700, 0o750, 0o1777, 0o777, 0o555]
IDS = [0, 0, 0, 1, 1000, 65534, 4242]


def gen_lowers(rng, fl):
    """The build actions for fl.nlowers layers; layer 0 is the top.  Layers
    are generated bottom first, so upper ones can hide what lower ones hold."""
    acts = []
    known = {}                      # rel -> type in some lower already built
    for layer in reversed(range(fl.nlowers)):
        budget = [rng.randint(40, 160)]
        files_here = []             # for hard links
        dirs_here = set()

        def add_dir(rel, opaque=False):
            dirs_here.add(rel)
            xs = gen_xattrs(rng, fl, "dir")
            acts.append(["dir", layer, rel, rng.choice(MODES_D), rng.choice(IDS),
                         rng.choice(IDS), xs])
            if opaque:
                acts.append(["setx", layer, rel, "trusted.overlay.opaque", b"y".hex()])

        def gen_dir(rel, depth):
            if budget[0] <= 0:
                return
            if rng.random() < 0.07 and depth <= 1:
                n = rng.randint(25, 70)          # a wide directory
            elif depth == 0:
                n = rng.randint(6, 14)
            else:
                n = rng.choice([0, 1, 2, 3, 3, 4, 4, 5, 6])
            used = set()
            for _ in range(n):
                if budget[0] <= 0:
                    break
                name = pick_name(rng, fl)
                if rng.random() < 0.3 and n > 10:
                    name = rand_word(rng)
                if name in used:
                    continue
                used.add(name)
                budget[0] -= 1
                crel = rel + "/" + name if rel else name
                if len(crel) > 3000:
                    continue
                t = known.get(crel)
                if t is None or rng.random() < 0.25:
                    t = rng.choices(["reg", "dir", "lnk", "hard", "fifo", "wh", "sparse"],
                                    [40, 24, 8, 4, 2, 10, 3])[0]
                    if t == "wh" and layer == fl.nlowers - 1 and rng.random() < 0.7:
                        t = "reg"
                if t in ("wh", "?"):
                    t = "wh" if layer < fl.nlowers - 1 else "reg"
                if t == "dir":
                    add_dir(crel, opaque=rng.random() < 0.08 and layer < fl.nlowers - 1)
                    known.setdefault(crel, "dir")
                    if depth < 4:
                        gen_dir(crel, depth + 1)
                elif t == "reg":
                    n_bytes = rng.choice([0, 0, rng.randint(1, 64), rng.randint(1, 64),
                                          rng.randint(64, 5000), rng.randint(5000, 70000)])
                    acts.append(["file", layer, crel, rand_word(rng), n_bytes,
                                 rng.choice(MODES_F), rng.choice(IDS), rng.choice(IDS),
                                 gen_xattrs(rng, fl, "reg")])
                    files_here.append(crel)
                    known.setdefault(crel, "reg")
                elif t == "sparse":
                    size = rng.choice([1 << 20, 3 << 20, 70000, 4096 * 5 + 3])
                    chunks = [[rng.randrange(0, size), rand_word(rng), rng.randint(1, 3000)]
                              for _ in range(rng.randint(0, 3))]
                    acts.append(["sparse", layer, crel, size, chunks])
                    files_here.append(crel)
                    known.setdefault(crel, "reg")
                elif t == "lnk":
                    acts.append(["symlink", layer, crel, gen_target(rng, fl, crel, known),
                                 rng.choice(IDS), rng.choice(IDS)])
                    if rng.random() < 0.15:
                        acts.append(["setx", layer, crel, "trusted." + rand_word(rng, 3),
                                     pat(rand_word(rng), 10).hex()])
                    known.setdefault(crel, "lnk")
                elif t == "hard":
                    if files_here:
                        acts.append(["hardlink", layer, crel, rng.choice(files_here)])
                        known.setdefault(crel, "reg")
                elif t == "fifo":
                    acts.append(["fifo", layer, crel, rng.choice([0o644, 0o600, 0o666])])
                    known.setdefault(crel, "fifo")
                elif t == "wh":
                    if layer in fl.xwh_layers:
                        acts.append(["file", layer, crel, "w", 0, 0o644, 0, 0,
                                     [["trusted.overlay.whiteout", ""]]])
                        # the parent is marked as holding xattr whiteouts
                        # (rarely not: the kernel then lists the whiteout)
                        if rng.random() < 0.9:
                            acts.append(["setx", layer, rel, "trusted.overlay.opaque",
                                         b"x".hex()])
                    else:
                        acts.append(["whiteout", layer, crel])
            # a deep chain now and then
            if depth <= 1 and rng.random() < 0.06 and budget[0] > 0:
                chain = rel
                for _ in range(rng.randint(8, 14)):
                    chain = (chain + "/" if chain else "") + rng.choice(fl.short[:4])
                acts.append(["dir", layer, chain, 0o755, 0, 0, []])
                acts.append(["file", layer, chain + "/deep", rand_word(rng), 10, 0o644, 0, 0, []])
                known.setdefault(chain, "dir")
                budget[0] -= 2

        gen_dir("", 0)
        if fl.aufs and layer < fl.nlowers - 1 and rng.random() < 0.7:
            # AUFS/OCI markers (layerfs reads them, the kernel shows files),
            # in their own directory so the rules can tell them apart
            d = "aufs%d" % layer
            acts.append(["file", layer, d + "/.wh.aw%d" % layer, "", 0, 0o644, 0, 0, []])
            if rng.random() < 0.4:
                acts.append(["file", layer, d + "/.wh..wh..opq", "", 0, 0o644, 0, 0, []])
            for below in range(layer + 1, fl.nlowers):
                acts.append(["file", below, d + "/aw%d" % layer, "hid", 3, 0o644, 0, 0, []])
                acts.append(["file", below, d + "/keep%d" % below, "kp", 2, 0o644, 0, 0, []])
    return acts


def gen_target(rng, fl, at, known):
    """A symlink target: relative inside the tree (never more than MAX_DOTDOT
    '..'), dangling, absolute (below NOWHERE), or long."""
    r = rng.random()
    depth = at.count("/")
    if r < 0.55 and known:
        dest = rng.choice(sorted(known))
        rel = os.path.relpath(dest, os.path.dirname(at) or ".")
        if rel.split("/").count("..") <= MAX_DOTDOT:
            return rel
    if r < 0.75:
        return rng.choice(fl.short) + ("/" + rng.choice(fl.short) if rng.random() < 0.3 else "")
    if r < 0.88:
        return NOWHERE + "/" + rand_word(rng)
    if r < 0.95:
        return "/".join([".."] * min(depth, MAX_DOTDOT, 2) + [rand_word(rng)])
    return "/".join(rand_word(rng, 8) for _ in range(rng.randint(30, 200)))[:4000]


# ------------------------------------------------------------------ operation generator

XATTR_FLAGS = [0, 0, 0, 1, 2]
OLD_TIMES = [1_234_567_890_123_456_789, 1_300_000_000_000_000_000, 999_999_999_000_000_001,
             1_500_000_000_000_000_000, 0]


class OpGen:
    """Chooses the next operation from the current tree (the kernel's)."""
    WEIGHTS = [("read", 6), ("write", 7), ("append", 4), ("truncate", 4), ("open", 9),
               ("mkdir", 6), ("unlink", 6), ("rmdir", 4), ("rename", 16), ("link", 4),
               ("symlink", 4), ("mkfifo", 1), ("chmod", 3), ("chown", 3), ("utime", 3),
               ("setxattr", 5), ("removexattr", 3), ("getxattr", 1), ("listxattr", 1),
               ("listdir", 3), ("readlink", 1), ("lstat", 1), ("fallocate", 3), ("mmap", 3),
               ("rmtree", 1), ("fdopen", 6), ("fdread", 3), ("fdwrite", 3), ("fdappend", 1),
               ("fdstat", 3), ("fdtrunc", 1), ("fdsync", 1), ("fdlist", 1), ("fdxattr", 1),
               ("fdclose", 1)]

    def __init__(self, rng, fl):
        self.rng, self.fl = rng, fl
        self.recent = []
        self.slots = {}
        self.names = [n for n, _ in self.WEIGHTS]
        self.weights = [w for _, w in self.WEIGHTS]

    # -- path choice
    def _ok(self, rel):
        return not rel.split("/")[0].startswith("aufs")   # the AUFS dirs are read-only to us

    def existing(self, tree, types=None, root=False):
        cands = [r for r, t in tree.items() if (types is None or t in types) and
                 (root or r != "") and t != "?" and self._ok(r)]
        if not cands:
            return None
        rec = [r for r in self.recent if r in cands]
        if rec and self.rng.random() < 0.4:
            return self.rng.choice(rec)
        return self.rng.choice(sorted(cands))

    def new_path(self, tree):
        parent = self.existing(tree, ("dir",), root=True)
        if parent is None:
            parent = ""
        r = self.rng.random()
        if r < 0.04:
            name = "N" * 256                                  # ENAMETOOLONG
        elif r < 0.07:
            name = ".wh." + self.rng.choice(self.fl.short)    # AUFS-looking, in the upper
        else:
            name = pick_name(self.rng, self.fl, True)
        rel = parent + "/" + name if parent else name
        if len(rel) > 3800:
            rel = name
        return rel

    def bad_path(self, tree):
        f = self.existing(tree, ("reg", "fifo", "lnk"))
        if f and self.rng.random() < 0.5:
            return f + "/" + self.rng.choice(self.fl.short)   # ENOTDIR (or through a link)
        return "nope-" + rand_word(self.rng, 3) + "/" + self.rng.choice(self.fl.short)

    def any_path(self, tree, types=None, p_new=0.1, p_bad=0.05, root=False):
        r = self.rng.random()
        if r < p_bad:
            return self.bad_path(tree)
        if r < p_bad + p_new:
            return self.new_path(tree)
        p = self.existing(tree, types, root)
        return p if p is not None else self.new_path(tree)

    def data(self):
        r = self.rng
        n = r.choices([0, r.randint(1, 64), r.randint(65, 4096), r.randint(4097, 70000),
                       r.randint(70001, 300000)], [3, 50, 25, 15, 5])[0]
        return rand_word(r), n

    def offset(self):
        r = self.rng
        return r.choice([0, 0, 0, r.randint(1, 100), 4096, 4095, 65536, 1 << 20,
                         (3 << 20) + 7])

    # -- the next op
    def next(self, tree):
        r = self.rng
        name = r.choices(self.names, self.weights)[0]
        files = ("reg",)
        op = None
        if name == "read":
            op = ["read", self.any_path(tree, ("reg", "lnk"))]
        elif name == "write":
            w, n = self.data()
            op = ["write", self.any_path(tree, files), self.offset(), w, n]
        elif name == "append":
            w, n = self.data()
            op = ["append", self.any_path(tree, files), w, n]
        elif name == "truncate":
            op = ["truncate", self.any_path(tree, files),
                  r.choice([0, 0, r.randint(1, 100), 4096, 100000, 2 << 20])]
        elif name == "open":
            fl = r.choice([["O_WRONLY", "O_CREAT", "O_TRUNC"], ["O_WRONLY", "O_CREAT", "O_EXCL"],
                           ["O_RDWR", "O_CREAT"], ["O_RDONLY", "O_CREAT"], ["O_WRONLY", "O_TRUNC"],
                           ["O_RDONLY", "O_DIRECTORY"], ["O_WRONLY", "O_APPEND", "O_CREAT"],
                           ["O_RDONLY", "O_NOFOLLOW"], ["O_RDWR", "O_CREAT", "O_EXCL"]])
            p = self.new_path(tree) if r.random() < 0.6 else self.any_path(tree)
            w, n = self.data() if "O_RDONLY" not in fl else ("", 0)
            op = ["open", p, fl, r.choice([0o644, 0o600, 0o755, 0o4755, 0o000]), w, n]
        elif name == "mkdir":
            op = ["mkdir", self.new_path(tree) if r.random() < 0.85 else self.any_path(tree),
                  r.choice(MODES_D)]
        elif name == "unlink":
            op = ["unlink", self.any_path(tree, ("reg", "lnk", "fifo") if r.random() < 0.9
                                          else ("dir",))]
        elif name == "rmdir":
            empties = [d for d, t in tree.items() if t == "dir" and d and self._ok(d) and
                       not any(x.startswith(d + "/") for x in tree)]
            if empties and r.random() < 0.5:
                op = ["rmdir", r.choice(sorted(empties))]
            else:
                op = ["rmdir", self.any_path(tree, ("dir",) if r.random() < 0.85 else None)]
        elif name == "rmtree":
            op = ["rmtree", self.any_path(tree, ("dir",), p_new=0.02)]
        elif name == "rename":
            op = self.gen_rename(tree)
        elif name == "link":
            src = self.any_path(tree, ("reg", "lnk", "fifo") if r.random() < 0.9 else ("dir",))
            dst = self.new_path(tree) if r.random() < 0.85 else self.any_path(tree)
            op = ["link", src, dst]
        elif name == "symlink":
            dst = self.new_path(tree) if r.random() < 0.9 else self.any_path(tree)
            known = {k: v for k, v in tree.items() if k and v != "?" and self._ok(k)}
            op = ["symlink", gen_target(r, self.fl, dst, known), dst]
        elif name == "mkfifo":
            op = ["mkfifo", self.new_path(tree), r.choice([0o644, 0o600])]
        elif name == "chmod":
            op = ["chmod", self.any_path(tree, ("reg", "dir", "fifo"), root=True),
                  r.choice(MODES_F + MODES_D)]
        elif name == "chown":
            follow = r.random() < 0.5
            op = ["chown", self.any_path(tree, None if not follow else ("reg", "dir", "fifo"),
                                         root=True), r.choice(IDS), r.choice(IDS), follow]
        elif name == "utime":
            follow = r.random() < 0.5
            at = r.choice(OLD_TIMES + ["now", "omit"])
            mt = r.choice(OLD_TIMES + ["now", "omit"])
            op = ["utime", self.any_path(tree, None if not follow else ("reg", "dir", "fifo"),
                                         root=True), at, mt, follow]
        elif name == "setxattr":
            op = ["setxattr", self.any_path(tree, root=True), self.xname(), rand_word(r),
                  r.choice([0, 1, 7, 64, 200]), r.choice(XATTR_FLAGS)]
        elif name == "removexattr":
            op = ["removexattr", self.any_path(tree, root=True), self.xname()]
        elif name == "getxattr":
            op = ["getxattr", self.any_path(tree, root=True), self.xname()]
        elif name == "listxattr":
            op = ["listxattr", self.any_path(tree, root=True)]
        elif name == "listdir":
            op = ["listdir", self.any_path(tree, ("dir",), root=True)]
        elif name == "readlink":
            op = ["readlink", self.any_path(tree, ("lnk",))]
        elif name == "lstat":
            op = ["lstat", self.any_path(tree)]
        elif name == "fallocate":
            mode = r.choice([0, 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                             FALLOC_FL_ZERO_RANGE])
            op = ["fallocate", self.any_path(tree, files), mode,
                  r.choice([0, 100, 4096, 1 << 20]), r.choice([1, 4096, 65536, (1 << 20) + 3])]
        elif name == "mmap":
            w, n = self.data()
            op = ["mmap", self.any_path(tree, files), r.choice([0, 0, 5, 4096]), w, min(n, 9000)]
        elif name == "fdopen":
            slot = r.randrange(4)
            if r.random() < 0.8:
                p = self.any_path(tree, files, p_new=0.02)
                fl = r.choice([["O_RDONLY"], ["O_RDONLY"], ["O_RDWR"], ["O_WRONLY", "O_APPEND"],
                               ["O_RDWR", "O_CREAT"]])
            else:
                p = self.any_path(tree, ("dir",), p_new=0.02, root=True)
                fl = ["O_RDONLY", "O_DIRECTORY"]
            self.slots[slot] = p
            op = ["fdopen", slot, p, fl]
        else:
            if not self.slots:
                return self.next(tree)
            slot = r.choice(sorted(self.slots))
            if name == "fdread":
                op = ["fdread", slot, r.choice([0, 0, 3, 4096]), r.choice([100, 65536])]
            elif name == "fdwrite":
                w, n = self.data()
                op = ["fdwrite", slot, self.offset(), w, n]
            elif name == "fdappend":
                w, n = self.data()
                op = ["fdappend", slot, w, n]
            elif name == "fdstat":
                op = ["fdstat", slot]
            elif name == "fdtrunc":
                op = ["fdtrunc", slot, r.choice([0, 10, 5000])]
            elif name == "fdsync":
                op = ["fdsync", slot]
            elif name == "fdlist":
                op = ["fdlist", slot]
            elif name == "fdxattr":
                op = ["fdxattr", slot, self.xname(plain=True), rand_word(r), r.choice([1, 20])]
            elif name == "fdclose":
                op = ["fdclose", slot]
                self.slots.pop(slot, None)
        for i in PATH_ARGS.get(op[0], []):
            p = op[1 + i]
            if p in self.recent:
                self.recent.remove(p)
            self.recent.append(p)
        # held fds: lean on their paths for a while
        if self.slots and r.random() < 0.08:
            p = r.choice(sorted(self.slots.values()))
            if p in tree:
                self.recent.append(p)
        del self.recent[:-12]
        return op

    def xname(self, plain=False):
        r = self.rng.random()
        if plain or r < 0.55:
            return self.rng.choice(["user.a", "user.b", "user.c"])
        if r < 0.8:
            return self.rng.choice(["trusted.t", "trusted.u"])
        if r < 0.86:
            return "user." + "n" * self.rng.choice([40, 240])
        if r < 0.92:
            return self.rng.choice(["user.overlay.x1", "user.fuseoverlayfs.x2"])
        if r < 0.96:
            return "trusted.overlay.foo"
        return "security.difftest"

    def gen_rename(self, tree):
        r = self.rng
        kind = r.choices(["file", "dir", "any"], [45, 35, 20])[0]
        types = {"file": ("reg", "lnk", "fifo"), "dir": ("dir",), "any": None}[kind]
        src = self.any_path(tree, types, p_new=0.03, p_bad=0.03)
        flags = r.choices([0, RENAME_NOREPLACE, RENAME_EXCHANGE], [70, 12, 18])[0]
        x = r.random()
        if flags == RENAME_EXCHANGE and x < 0.6:
            dst = self.existing(tree, types if r.random() < 0.6 else None) or self.new_path(tree)
        elif x < 0.25:
            par = os.path.dirname(src)
            name = pick_name(r, self.fl, True)
            dst = par + "/" + name if par else name
        elif x < 0.55:
            dst = self.new_path(tree)
        elif x < 0.75:
            dst = self.existing(tree, types) or self.new_path(tree)
        elif x < 0.87:
            dst = self.existing(tree) or self.new_path(tree)
        elif x < 0.92 and tree.get(src) == "dir":
            dst = src + "/" + r.choice(self.fl.short)       # into itself: EINVAL
        elif x < 0.95:
            dst = src
        else:
            dst = self.bad_path(tree)
        return ["rename", src, dst, flags]


# ------------------------------------------------------------------ comparison and known differences

def _xattr_names(item):
    """The xattr names an item is about: its field, a listxattr result's
    differing names, or the name an xattr operation used."""
    f = item.get("field") or ""
    if f.startswith("x:"):
        return [f[2:]]
    k, l = item.get("k"), item.get("l")
    if f == "result.xattrs" and isinstance(k, list) and isinstance(l, list):
        return sorted(set(k) ^ set(l))
    op = item.get("op")
    if op and f == "result" and op[0] in ("setxattr", "removexattr", "getxattr", "fdxattr"):
        return [op[2]]
    return []


def k_user_private(item):
    """user.overlay.* and user.fuseoverlayfs.*: private in every mode (set
    through the mount, user.overlay.X is stored escaped as
    user.overlay.overlay.X, where the kernel in trusted mode stores it as is)."""
    names = _xattr_names(item)
    return bool(names) and all(n.startswith(("user.overlay.", "user.fuseoverlayfs."))
                               for n in names)


def k_no_uuid(item):
    """trusted.overlay.uuid on the upper root: the kernel writes it, layerfs not."""
    return item.get("where") == "upper" and item.get("path") == "." and \
        item.get("field") == "x:trusted.overlay.uuid" and item.get("l") is None


def _aufs_path(p):
    return p is not None and (p.split("/")[0].startswith("aufs") or
                              any(c.startswith(".wh.") for c in p.split("/")))


def k_aufs(item):
    """Paths in the AUFS-marker directories (aufsN/), and names '.wh.*'
    (only in seeds that put AUFS markers in their lowers)."""
    if not item.get("flavour_aufs"):
        return False
    paths = [item.get("path")] + [p for p in item.get("op_paths", [])]
    if any(_aufs_path(p) for p in paths if p is not None):
        return True
    if item.get("field") in ("names", "phantoms", "result.names", "result.phantoms"):
        diff = set(item.get("k") or []) ^ set(item.get("l") or []) \
            if isinstance(item.get("k"), list) and isinstance(item.get("l"), list) else None
        return bool(diff) and all(n.startswith(("aufs", ".wh.")) for n in diff)
    return False


def k_listed_whiteout(item):
    """The kernel lists whiteouts it cannot look up; layerfs hides them."""
    if not item.get("readers_differ"):
        return False
    f = item.get("field")
    if f in ("phantoms", "result.phantoms"):
        return bool(item.get("k")) and not item.get("l")
    if f == "present":
        return item.get("k") == {"err": "ENOENT"} and item.get("l") is None
    return False


# The deliberate differences (README.md, "Differences from kernel overlay",
# and tests/diff/README.md).  A difference one of these explains is printed
# as "known difference: ID" and does not fail.
KNOWN = [
    ("user-overlay-xattrs",
     "user.overlay.* and user.fuseoverlayfs.* are private in every mode: layerfs hides those "
     "in the layers and does not copy them up, stores user.overlay.X set through the mount "
     "escaped (user.overlay.overlay.X) and refuses user.fuseoverlayfs.*; the kernel in "
     "trusted mode treats them as ordinary xattrs", k_user_private),
    ("aufs-markers",
     "AUFS/OCI '.wh.NAME' and '.wh..wh..opq' in lower layers are read (NAME hidden, the "
     "directory opaque) and never shown; the kernel shows them as plain files", k_aufs),
    ("listed-whiteouts",
     "whiteouts the kernel lists but cannot stat (in a directory with no lower copy, or an "
     "xattr whiteout whose parent is not marked opaque=x) are hidden", k_listed_whiteout),
    ("no-uuid",
     "trusted.overlay.uuid is not written on the upper root (origins carry a null uuid)",
     k_no_uuid),
]


def classify(item):
    for kid, _, fn in KNOWN:
        try:
            if fn(item):
                return kid
        except Exception:
            pass
    return None


def cmp_rec(where, path, k, l, out, extra):
    """Field-by-field differences of two records (k: kernel, l: layerfs)."""
    if k is None or l is None or "err" in (k or {}) or "err" in (l or {}):
        if k != l:
            out.append(dict(extra, where=where, path=path, field="present", k=k, l=l))
        return
    for f in sorted(set(k) | set(l)):
        if k.get(f) != l.get(f):
            out.append(dict(extra, where=where, path=path, field=f, k=k.get(f), l=l.get(f)))


def cmp_result(where, k, l, out, extra):
    if k == l:
        return
    if isinstance(k, dict) and isinstance(l, dict):
        for f in sorted(set(k) | set(l)):
            if k.get(f) != l.get(f):
                out.append(dict(extra, where=where, path=None, field="result." + f,
                                k=k.get(f), l=l.get(f)))
        return
    out.append(dict(extra, where=where, path=None, field="result", k=k, l=l))


def ino_partition(inos):
    by = {}
    for rel, ino in inos.items():
        by.setdefault(ino, []).append(rel)
    return sorted(sorted(v) for v in by.values() if len(v) > 1)


def cmp_snap(where, ks, ls, out, extra):
    kr, lr = ks["recs"], ls["recs"]
    for p in sorted(set(kr) | set(lr)):
        cmp_rec(where, p, kr.get(p), lr.get(p), out, extra)
    kp, lp = ino_partition(ks["ino"]), ino_partition(ls["ino"])
    if kp != lp:
        kset, lset = {tuple(g) for g in kp}, {tuple(g) for g in lp}
        out.append(dict(extra, where=where, path=None, field="same-inode",
                        k=sorted(list(g) for g in kset - lset),
                        l=sorted(list(g) for g in lset - kset)))


SPECIAL_RESULTS = ("ok", "no-fd", "empty", "beyond", "unsafe-path")


def vclass(v):
    """A coarse class of a value, for signatures: errno names and types
    stay, data becomes 'val'."""
    if v is None:
        return "none"
    if isinstance(v, str) and (v.startswith("E:") or v in SPECIAL_RESULTS):
        return v
    if isinstance(v, dict):
        if "err" in v:
            return "E:" + v["err"]
        if "type" in v:
            return v["type"]
    return "val"


def signature(item):
    """What kind of difference this is: where (step + op, or phase), field,
    and for results/presence/types the classes of both values."""
    where = item["where"]
    w = where.split(":")[0] if where.startswith(("step", "tree", "upper")) else where
    f = item["field"]
    if f.startswith("x:"):
        n = f[2:]
        f = "x:" + (n if n.startswith(("trusted.overlay.", "user.overlay.")) else
                    n.split(".")[0] + ".*")
    elif f in ("result", "present", "type", "daemon-gone"):
        f += ":%s!=%s" % (vclass(item["k"]), vclass(item["l"]))
    op = item.get("op")
    if w == "step":
        name = op[0] if op else "?"
        if name == "rename" and op[3]:
            name += {1: "-NOREPLACE", 2: "-EXCHANGE"}.get(op[3], "")
        return "step/%s/%s" % (name, f)
    return "%s/%s" % (w, f)


# ------------------------------------------------------------------ one execution

class Outcome:
    def __init__(self):
        self.items = []          # unexplained differences, in order
        self.known = []          # (known id, item)
        self.ops = []            # the concrete operations run
        self.steps = []          # (op, kernel result, layerfs result)
        self.error = None        # a tester problem (not a mismatch)

    def add(self, items):
        for it in items:
            kid = classify(it)
            if kid:
                self.known.append((kid, it))
            else:
                self.items.append(it)

    def sigs(self):
        seen = []
        for it in self.items:
            s = signature(it)
            if s not in seen:
                seen.append(s)
        return seen


PHASES = ("steps", "tree", "upper", "cross")


class Side:
    def __init__(self, base, tag, nlowers):
        self.base = os.path.join(base, tag)
        self.lowers = [os.path.join(self.base, "l%d" % i) for i in range(nlowers)]
        self.upper = os.path.join(self.base, "u")
        pad = os.path.join(self.base, *(["p"] * PAD_DEPTH))
        self.pad = pad
        self.work = os.path.join(self.base, "w")
        self.merged = os.path.join(pad, "m")


def execute(tmp, build, nlowers, flavour_aufs, ops=None, gen=None, nops=0, upto="cross",
            want_sig=None, trace=None):
    """Runs one case from scratch in a fresh dir below TMP.  OPS: a list to
    replay, or GEN (an OpGen) to generate NOPS operations from the kernel's
    tree.  UPTO: the last phase to run.  WANT_SIG: stop as soon as a
    difference with this signature shows (shrinking)."""
    out = Outcome()
    run_dir = tempfile.mkdtemp(prefix="run.", dir=tmp)
    os.chmod(run_dir, 0o755)
    sides = {"kernel": Side(run_dir, "k", nlowers), "layerfs": Side(run_dir, "f", nlowers)}
    pristine = os.path.join(run_dir, "pristine")
    os.makedirs(pristine)
    build_layers(build, nlowers, pristine)
    for s in sides.values():
        os.makedirs(s.base)
        for i, l in enumerate(s.lowers):
            p = run(["cp", "-a", os.path.join(pristine, "l%d" % i), l], timeout=120)
            if p.returncode != 0:
                raise RuntimeError("cp -a failed: %s" % p.stdout.decode(errors="replace"))
        os.makedirs(s.upper)
        os.makedirs(s.pad)
    shutil.rmtree(pristine)
    mounts, workers = {}, {}
    extra = {"flavour_aufs": flavour_aufs}

    def found():
        return want_sig is not None and any(signature(i) == want_sig for i in out.items)

    def abort_all():
        # SIGKILL the workers first, then kill the daemons (a worker blocked
        # on a request the daemon already read only returns once the
        # connection is gone), then reap the workers
        for w in workers.values():
            w.signal_kill()
        for m in mounts.values():
            m.abort()
        mounts.clear()
        for w in workers.values():
            w.kill()
        workers.clear()

    try:
        for kind, s in sides.items():
            try:
                mounts[kind] = Mount(kind, s.lowers, s.upper, s.work, s.merged).mount()
            except RuntimeError as e:
                if kind == "kernel":
                    out.error = str(e)
                else:
                    out.add([dict(extra, where="mount", path=None, field="mount", k="mounted",
                                  l=str(e))])
                return out
            workers[kind] = Worker(s.merged, run_dir, kind)
        K, L = workers["kernel"], workers["layerfs"]
        tree = K.call({"c": "tree"}) if gen is not None else {}
        slots = {}
        n = nops if gen is not None else len(ops)
        for i in range(n):
            op = gen.next(tree) if gen is not None else ops[i]
            out.ops.append(op)
            if op[0] == "fdopen":
                slots[op[1]] = op[2]
            touched = touched_paths(op, slots)
            if STOP_DAEMON_AT == i:      # test hook: a daemon that stops answering
                for pid in mounts["layerfs"].pids:
                    os.kill(pid, STOP_DAEMON_SIG)
            want_tree = gen is not None and op[0] in STRUCTURAL
            ex = dict(extra, op=op, step=i, readers_differ=True, view=True,
                      op_paths=[op[1 + j] for j in PATH_ARGS.get(op[0], [])] +
                      ([slots[op[1]]] if op[0].startswith("fd") and op[1] in slots else []))
            try:
                K.send({"c": "op", "op": op, "state": touched, "tree": want_tree})
                L.send({"c": "op", "op": op, "state": touched})
                rk = K.recv()
            except (Hang, WorkerDied) as e:
                out.error = "kernel side: %s during step %d %s" % (type(e).__name__, i,
                                                                  op_label(op))
                abort_all()
                return out
            try:
                rl = L.recv()
            except (Hang, WorkerDied) as e:
                out.add([dict(ex, where="step:%d" % i, path=None,
                              field="hang" if isinstance(e, Hang) else "worker-died",
                              k=rk["r"], l="no answer in %ds" % OP_TIMEOUT)])
                abort_all()
                return out
            if trace:
                trace(i, op, rk, rl)
            out.steps.append((op, rk["r"], rl["r"]))
            items = []
            if rl["r"] in ("E:ENOTCONN", "E:ECONNABORTED") and rk["r"] != rl["r"]:
                items.append(dict(ex, where="step:%d" % i, path=None, field="daemon-gone",
                                  k=rk["r"], l=rl["r"]))
                out.add(items)
                abort_all()
                return out
            cmp_result("step:%d" % i, rk["r"], rl["r"], items, ex)
            for p in touched:
                cmp_rec("step:%d" % i, p, rk["state"].get(p), rl["state"].get(p), items, ex)
            out.add(items)
            if "tree" in rk:
                tree = rk["tree"]
            if found():
                abort_all()
                return out
        if upto == "steps":
            abort_all()
            return out

        # the whole merged tree (not needed to shrink an upper or remount
        # difference)
        skip_tree = want_sig is not None and not want_sig.startswith("tree")
        snaps = {} if not skip_tree else None
        for kind, w in (workers.items() if not skip_tree else []):
            try:
                snaps[kind] = w.call({"c": "snap"}, timeout=OP_TIMEOUT * 4)
            except (Hang, WorkerDied) as e:
                if kind == "kernel":
                    out.error = "kernel side: %s in the final snapshot" % type(e).__name__
                else:
                    out.add([dict(extra, where="tree", path=None, field="hang",
                                  k="snapshot", l=type(e).__name__)])
                abort_all()
                return out
        if not skip_tree:
            items = []
            cmp_snap("tree", snaps["kernel"], snaps["layerfs"], items,
                     dict(extra, readers_differ=True, view=True))
            out.add(items)
        if upto == "tree" or found():
            abort_all()
            return out

        # the uppers
        for kind in ("kernel", "layerfs"):
            workers.pop(kind).stop()
            if not mounts.pop(kind).umount():
                if kind == "layerfs":
                    out.add([dict(extra, where="umount", path=None, field="unclean",
                                  k="clean", l="unclean unmount")])
                else:
                    out.error = "kernel overlay did not unmount cleanly"
        ups = {k: snapshot(s.upper, upper=True) for k, s in sides.items()}
        items = []
        cmp_snap("upper", ups["kernel"], ups["layerfs"], items,
                 dict(extra, readers_differ=False, view=False))
        out.add(items)
        if upto == "upper" or found():
            return out

        # remount: each upper under both implementations, fresh workdirs,
        # against the kernel reading the kernel's upper
        views = {}
        for tag, upper_of, reader in (("KK", "kernel", "kernel"), ("KL", "layerfs", "kernel"),
                                      ("LK", "kernel", "layerfs"), ("LL", "layerfs", "layerfs")):
            s = sides[upper_of]
            merged = os.path.join(s.pad, "m-" + tag)
            try:
                m = Mount(reader, s.lowers, s.upper, os.path.join(s.base, "w-" + tag),
                          merged).mount()
            except RuntimeError as e:
                if tag == "KK":
                    out.error = "remount KK: %s" % e
                    return out
                out.add([dict(extra, where="cross:%s" % tag, path=None, field="mount",
                              k="mounts", l=str(e))])
                continue
            mounts[tag] = m
            w = Worker(merged, run_dir, tag)
            workers[tag] = w
            try:
                views[tag] = w.call({"c": "snap"}, timeout=OP_TIMEOUT * 4)
            except (Hang, WorkerDied) as e:
                out.add([dict(extra, where="cross:%s" % tag, path=None, field="hang",
                              k="snapshot", l=type(e).__name__)])
                abort_all()
                return out
            workers.pop(tag).stop()
            if not mounts.pop(tag).umount() and reader == "layerfs":
                out.add([dict(extra, where="cross:%s" % tag, path=None, field="unclean",
                              k="clean", l="unclean unmount")])
        if "KK" in views:
            for tag in ("KL", "LK", "LL"):
                if tag in views:
                    items = []
                    cmp_snap("cross:%s" % tag, views["KK"], views[tag], items,
                             dict(extra, readers_differ=tag[0] == "L", view=True))
                    out.add(items)
        return out
    finally:
        abort_all()
        shutil.rmtree(run_dir, ignore_errors=True)


# ------------------------------------------------------------------ shrinking

class Shrinker:
    def __init__(self, tmp, nlowers, aufs, sig, phase, budget_s, log):
        self.tmp, self.nlowers, self.aufs, self.sig = tmp, nlowers, aufs, sig
        self.phase = phase
        self.deadline = time.monotonic() + budget_s
        self.trials = 0
        self.log = log
        self.cache = {}

    def out_of_time(self):
        return time.monotonic() > self.deadline

    def shows(self, build, ops):
        key = json.dumps([build, ops])
        if key in self.cache:
            return self.cache[key]
        if self.out_of_time():
            return False
        self.trials += 1
        try:
            o = execute(self.tmp, build, self.nlowers, self.aufs, ops=ops, upto=self.phase,
                        want_sig=self.sig)
            ok = any(signature(i) == self.sig for i in o.items)
        except Exception as e:
            self.log("   (shrink trial failed: %s)" % e)
            ok = False
        self.cache[key] = ok
        return ok

    def ddmin(self, items, test):
        """Zeller's ddmin: a 1-minimal subset of ITEMS (a list) for which
        test(subset) holds (test(items) must hold)."""
        n = 2
        while len(items) >= 2 and not self.out_of_time():
            chunk = max(1, len(items) // n)
            subsets = [items[i:i + chunk] for i in range(0, len(items), chunk)]
            reduced = False
            for i in range(len(subsets)):
                comp = [x for j, s in enumerate(subsets) if j != i for x in s]
                if test(comp):
                    items = comp
                    n = max(n - 1, 2)
                    reduced = True
                    break
            if not reduced:
                for s in subsets:
                    if len(s) < len(items) and test(s):
                        items = s
                        n = 2
                        reduced = True
                        break
            if not reduced:
                if n >= len(items):
                    break
                n = min(len(items), n * 2)
        return items


def shrink(tmp, build, nlowers, aufs, ops, sig, step, budget_s, log):
    """Minimal ops (then minimal lower entries) that still show SIG."""
    phase = sig.split("/")[0]
    phase = {"step": "steps", "tree": "tree", "upper": "upper", "umount": "upper",
             "cross": "cross"}.get(phase, "cross")
    sh = Shrinker(tmp, nlowers, aufs, sig, phase, budget_s, log)
    if step is not None:
        ops = ops[:step + 1]
    if not sh.shows(build, ops):
        return build, ops, sh.trials, False
    if step is None and len(ops) > 8:
        # an end-phase difference: first the shortest prefix that shows it
        # (bisection; the answer is a prefix that shows it either way)
        lo, hi = 0, len(ops)
        while lo < hi and not sh.out_of_time():
            mid = (lo + hi) // 2
            if sh.shows(build, ops[:mid]):
                hi = mid
            else:
                lo = mid + 1
        ops = ops[:hi]
    def near_lowers(build, ops):
        """Only the lower entries on, above or below the ops' paths."""
        paths, above = set(), set()
        for op in ops:
            for j in PATH_ARGS.get(op[0], []):
                parts = op[1 + j].split("/")
                paths.add(op[1 + j])
                for k in range(1, len(parts)):
                    above.add("/".join(parts[:k]))
        def touches(act):
            rel = act[2]
            return rel in paths or rel in above or any(rel.startswith(p + "/") for p in paths)
        near = [a for a in build if touches(a)]
        if len(near) < len(build) and sh.shows(near, ops):
            return near
        return build
    build = near_lowers(build, ops)       # smaller lowers: faster trials
    idx = list(range(len(ops)))
    idx = sh.ddmin(idx, lambda sub: sh.shows(build, [ops[i] for i in sub]))
    ops = [ops[i] for i in idx]
    # then the lowers: first keep only the entries on the ops' paths
    build = near_lowers(build, ops)
    bidx = list(range(len(build)))
    if len(build) > 1:
        bidx = sh.ddmin(bidx, lambda sub: sh.shows([build[i] for i in sub], ops))
        build = [build[i] for i in bidx]
    return build, ops, sh.trials, True


# ------------------------------------------------------------------ reporting

def py_bytes(word, n):
    if n == 0:
        return 'b""'
    if n <= len(word):
        return repr(pat(word, n))
    return "(%r * %d)[:%d]" % (word.encode(), n // len(word) + 1, n)


SCENARIO_HELPERS = '''\
# helpers for the ops scenario.py has no maker for (paste once into the cases file)
import ctypes, mmap
_libc = ctypes.CDLL(None, use_errno=True)
def _chk(r):
    if r != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
def _fallocate(c, rel, mode, off, n):
    fd = os.open(c.p(rel), os.O_RDWR)
    try: _chk(_libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(n)))
    finally: os.close(fd)
def _mmap_write(c, rel, off, data):
    fd = os.open(c.p(rel), os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size == 0: return "empty"
        if off >= size: return "beyond"
        data = data[:size - off]
        mm = mmap.mmap(fd, size); mm[off:off + len(data)] = data; mm.flush(); mm.close()
        return len(data)
    finally: os.close(fd)
def _fdopen(c, slot, rel, flags):
    old = c.vars.pop(slot, None)
    if old is not None: os.close(old)
    c.vars[slot] = os.open(c.p(rel), flags | os.O_NONBLOCK)
def _fdstat(c, slot):
    st = os.fstat(c.vars[slot])
    return (stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_size, st.st_nlink)
def _fdclose(c, slot):
    os.close(c.vars.pop(slot))
def _rm_rf(path):   # rm -rf: an entry gone when unlinked (ENOENT) is no error
    if stat.S_ISDIR(os.lstat(path).st_mode):
        for n in sorted(os.listdir(path)):
            try: _rm_rf(os.path.join(path, n))
            except FileNotFoundError: pass
        os.rmdir(path)
    else:
        os.unlink(path)
'''


def py_flags(names):
    return " | ".join("os." + n for n in names)


def scenario_op(op):
    n, a = op[0], op[1:]
    if n == "read":
        return "O.read(%r)" % a[0]
    if n == "write":
        return "O.write(%r, %s, off=%d)" % (a[0], py_bytes(a[2], a[3]), a[1])
    if n == "append":
        return "O.write(%r, %s)" % (a[0], py_bytes(a[1], a[2]))
    if n == "truncate":
        return "O.truncate(%r, %d)" % (a[0], a[1])
    if n == "open":
        return "O.open(%r, %s, 0o%o%s)" % (a[0], py_flags(a[1]), a[2],
                                           ", " + py_bytes(a[3], a[4]) if a[4] else "")
    if n == "mkdir":
        return "O.mkdir(%r, 0o%o)" % (a[0], a[1])
    if n == "rmtree":
        return "O.call(%r, lambda c: _rm_rf(c.p(%r)))" % (op_label(op), a[0])
    if n in ("unlink", "rmdir", "readlink"):
        return "O.%s(%r)" % (n, a[0])
    if n == "listdir":
        return "O.listdir(%r)" % a[0]
    if n == "lstat":
        return "O.stat(%r)" % a[0]
    if n == "rename":
        if a[2]:
            return "O.renameat2(%r, %r, %d)" % (a[0], a[1], a[2])
        return "O.rename(%r, %r)" % (a[0], a[1])
    if n == "link":
        return "O.link(%r, %r)" % (a[0], a[1])
    if n == "symlink":
        return "O.symlink(%r, %r)" % (a[0], a[1])
    if n == "mkfifo":
        return "O.mknod_fifo(%r, 0o%o)" % (a[0], a[1])
    if n == "chmod":
        return "O.chmod(%r, 0o%o)" % (a[0], a[1])
    if n == "chown":
        return "O.chown(%r, %d, %d, follow=%r)" % tuple(a)
    if n == "utime":
        return "O.utime(%r, %r, %r, follow=%r)" % tuple(a)
    if n == "setxattr":
        return "O.setxattr(%r, %r, %s, %d, follow=False)" % (a[0], a[1], py_bytes(a[2], a[3]),
                                                             a[4])
    if n == "removexattr":
        return "O.removexattr(%r, %r, follow=False)" % (a[0], a[1])
    if n == "getxattr":
        return "O.getxattr(%r, %r, follow=False)" % (a[0], a[1])
    if n == "listxattr":
        return "O.listxattr(%r, follow=False)" % a[0]
    lab = op_label(op)
    if n == "fallocate":
        if a[1] == 0:
            return "O.fallocate(%r, %d, %d)" % (a[0], a[2], a[3])
        return "O.call(%r, lambda c: _fallocate(c, %r, %d, %d, %d))" % (lab, a[0], a[1], a[2],
                                                                        a[3])
    if n == "mmap":
        return "O.call(%r, lambda c: _mmap_write(c, %r, %d, %s))" % (lab, a[0], a[1],
                                                                     py_bytes(a[2], a[3]))
    if n == "fdopen":
        return "O.call(%r, lambda c: _fdopen(c, %d, %r, %s))" % (lab, a[0], a[1], py_flags(a[2]))
    fd = "c.vars[%d]" % a[0]
    body = {
        "fdread": lambda: "os.pread(%s, %d, %d)" % (fd, a[2], a[1]),
        "fdwrite": lambda: "os.pwrite(%s, %s, %d)" % (fd, py_bytes(a[2], a[3]), a[1]),
        "fdappend": lambda: "os.write(%s, %s)" % (fd, py_bytes(a[1], a[2])),
        "fdstat": lambda: "_fdstat(c, %d)" % a[0],
        "fdtrunc": lambda: "os.ftruncate(%s, %d)" % (fd, a[1]),
        "fdsync": lambda: "os.fsync(%s)" % fd,
        "fdlist": lambda: "sorted(os.listdir(%s))" % fd,
        "fdxattr": lambda: "os.setxattr(%s, %r, %s)" % (fd, a[1], py_bytes(a[2], a[3])),
        "fdclose": lambda: "_fdclose(c, %d)" % a[0],
    }[n]()
    return "O.call(%r, lambda c: %s)" % (lab, body)


def scenario_build(act):
    k, layer, rel = act[0], act[1], act[2]
    if k == "dir":
        _, _, _, mode, uid, gid, xs = act
        x = ", xattrs={%s}" % ", ".join("%r: bytes.fromhex(%r)" % (n, v) for n, v in xs) \
            if xs else ""
        return "B.dir(%d, %r, mode=0o%o, uid=%d, gid=%d%s)" % (layer, rel, mode, uid, gid, x)
    if k == "file":
        _, _, _, word, n, mode, uid, gid, xs = act
        x = ", xattrs={%s}" % ", ".join("%r: bytes.fromhex(%r)" % (a, v) for a, v in xs) \
            if xs else ""
        return "B.file(%d, %r, %s, mode=0o%o, uid=%d, gid=%d%s)" % (layer, rel, py_bytes(word, n),
                                                                    mode, uid, gid, x)
    if k == "sparse":
        return "B.sparse(%d, %r, %d, chunks=(%s))" % (
            layer, rel, act[3], "".join("(%d, %s), " % (o, py_bytes(w, n)) for o, w, n in act[4]))
    if k == "symlink":
        return "B.symlink(%d, %r, %r, uid=%d, gid=%d)" % (layer, rel, act[3], act[4], act[5])
    if k == "hardlink":
        return "B.hardlink(%d, %r, %r)" % (layer, rel, act[3])
    if k == "whiteout":
        return "B.whiteout(%d, %r)" % (layer, rel)
    if k == "fifo":
        return "B.fifo(%d, %r, mode=0o%o)" % (layer, rel, act[3])
    if k == "setx":
        if act[3] == "trusted.overlay.opaque" and act[4] == b"y".hex():
            return "B.opaque(%d, %r)" % (layer, rel)
        return "os.setxattr(B.p(%d, %r), %r, bytes.fromhex(%r), follow_symlinks=False)" % (
            layer, rel, act[3], act[4])
    return repr(act)


def format_scenario(name, build, nlowers, ops, desc, check_paths=()):
    lines = ["def build_%s(B):" % name.replace("-", "_")]
    for a in build:
        lines.append("    " + scenario_build(a))
    if not build:
        lines.append("    pass")
    lines.append("")
    lines.append("Scenario(%r, build_%s, [" % (name, name.replace("-", "_")))
    for op in ops:
        lines.append("    %s," % scenario_op(op))
    for p in check_paths:     # where the state differed
        lines.append("    O.stat(%r)," % p)
    lines.append("], nlowers=%d, desc=%r)," % (nlowers, desc))
    return "\n".join(lines)


def describe_items(items, limit=12):
    out = []
    for it in items[:limit]:
        where = it["where"]
        path = it.get("path")
        op = it.get("op")
        head = where
        if op is not None and where.startswith("step"):
            head += " (%s)" % op_label(op)
        if path is not None:
            head += " path %s" % qpath(path)
        out.append("%s field %s" % (head, it["field"]))
        out.append("    kernel:  %s" % show(it["k"], 400))
        out.append("    layerfs: %s" % show(it["l"], 400))
    if len(items) > limit:
        out.append("(%d more differences)" % (len(items) - limit))
    return out


# ------------------------------------------------------------------ driver

class Driver:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="layerfs-diff.", dir=args.tmp)
        os.chmod(self.tmp, 0o755)
        self.cases_dir = args.cases or os.path.join(self.tmp, "cases")
        self.mismatches = 0
        self.total_ops = 0
        self.seeds = 0
        self.seen = {}            # signature -> first report id
        self.reports = []
        self.known_seen = {}
        self.tester_errors = 0
        self.dups = []
        self.stats = {}
        self.deadline = None       # soak: shrinking stops near the end too
        self.shrink_left = args.shrink_total

    def log(self, *a):
        print(*a, flush=True)

    def run_seed(self, seed, nops):
        rng = random.Random(seed)
        fl = Flavour(rng)
        build = gen_lowers(rng, fl)
        gen = OpGen(rng, fl)
        t0 = time.monotonic()
        trace = None
        if self.args.verbose:
            def trace(i, op, rk, rl):
                self.log("  %3d %-70s k=%s l=%s" % (i, op_label(op)[:70], show(rk["r"], 60),
                                                    show(rl["r"], 60)))
        try:
            out = execute(self.tmp, build, fl.nlowers, fl.aufs, gen=gen, nops=nops, trace=trace)
        except Exception:
            self.seeds += 1
            self.tester_errors += 1
            self.log("seed %d: TESTER ERROR:\n%s" % (seed, traceback.format_exc()))
            return
        self.seeds += 1
        self.total_ops += len(out.ops)
        for op, k, l in out.steps:
            name = op[0] + ({1: "-NOREPLACE", 2: "-EXCHANGE"}.get(op[3], "") if op[0] == "rename"
                            else "")
            st = self.stats.setdefault(name, {})
            key = k if isinstance(k, str) and (k.startswith("E:") or k in SPECIAL_RESULTS) \
                else "ok"
            st[key] = st.get(key, 0) + 1
        kinds = {}
        for kid, it in out.known:
            kinds.setdefault(kid, []).append(it)
        for kid, its in sorted(kinds.items()):
            it = its[0]
            self.log("  known difference: %s (%d items, e.g. %s%s %s: kernel %s, layerfs %s)" % (
                kid, len(its), it["where"],
                " " + qpath(it["path"]) if it.get("path") is not None else "",
                it["field"], show(it["k"], 60), show(it["l"], 60)))
            self.known_seen[kid] = self.known_seen.get(kid, 0) + len(its)
        if out.error:
            self.tester_errors += 1
            self.log("  seed %d: TESTER ERROR (not counted as a mismatch): %s" % (seed, out.error))
        if not out.items:
            self.log("seed %d: %d lowers, %d lower entries, %d ops: ok (%.1fs)" % (
                seed, fl.nlowers, len(build), len(out.ops), time.monotonic() - t0))
            return
        self.mismatches += 1
        unit = out.items[0]["where"]
        primary = [i for i in out.items if i["where"] == unit]
        later = [i for i in out.items if i["where"] != unit]
        psigs = []
        for i in primary:
            if signature(i) not in psigs:
                psigs.append(signature(i))
        first = primary[0]
        at = unit + (" (%s)" % op_label(first["op"]) if unit.startswith("step") else "")
        self.log("seed %d: %d lowers, %d lower entries, %d ops: MISMATCH at %s (%.1fs)" % (
            seed, fl.nlowers, len(build), len(out.ops), at, time.monotonic() - t0))
        if later:
            lsigs = []
            for i in later:
                if signature(i) not in lsigs:
                    lsigs.append(signature(i))
            self.log("  (%d later differences, %d kinds, not reported: they may follow from "
                     "the first)" % (len(later), len(lsigs)))
        dup = [self.seen[x] for x in psigs if x in self.seen]
        if dup:
            self.log("  same kind as mismatch #%d (%s); not shrunk again:" % (dup[0], psigs[0]))
            for x in describe_items(primary, 3):
                self.log("    " + x)
            self.dups.append((seed, dup[0]))
        else:
            self.report(seed, fl, build, out, psigs, first)
        # Later differences of a new kind: shrink each from scratch; if the
        # minimal run shows it first, it is a bug of its own.
        tried = 0
        done = set(psigs)
        for it in later:
            sig = signature(it)
            if sig in done or sig in self.seen:
                continue
            done.add(sig)
            if tried >= self.args.max_later or self.shrink_left < 10 or \
                    (self.deadline is not None and time.monotonic() > self.deadline):
                break
            tried += 1
            t0 = time.monotonic()
            budget = self.shrink_budget()
            b2, ops2, trials, ok = shrink(self.tmp, build, fl.nlowers, fl.aufs, out.ops, sig,
                                          it.get("step") if it["where"].startswith("step")
                                          else None, budget, self.log)
            self.shrink_left -= time.monotonic() - t0
            if not ok:
                continue
            try:
                final = execute(self.tmp, b2, fl.nlowers, fl.aufs, ops=ops2)
            except Exception:
                continue
            if not final.items:
                continue
            unit = final.items[0]["where"]
            fsigs = [signature(i) for i in final.items if i["where"] == unit]
            if sig in fsigs and not any(x in self.seen for x in fsigs):
                self.mismatches += 1
                self.log("  a later difference shows first in its own minimal run:")
                self.report(seed, fl, b2, final, [sig] + [x for x in fsigs if x != sig],
                            [i for i in final.items if signature(i) == sig][0], shrunk=(
                                trials, time.monotonic() - t0, len(out.ops), len(build)))
            else:
                first_other = next((x for x in fsigs if x in self.seen), fsigs[0])
                self.seen.setdefault(sig, self.seen.get(first_other, 0))
                self.log("  later %s: its minimal run (%d ops) shows %s first; taken as a "
                         "consequence" % (sig, len(ops2), first_other))

    def shrink_budget(self):
        b = min(self.args.shrink_seconds, max(0, self.shrink_left))
        if self.deadline is not None:
            b = min(b, max(15, self.deadline - time.monotonic()))
        return b

    def report(self, seed, fl, build, out, psigs, it, shrunk=None):
        rid = len(self.reports) + 1
        sig = psigs[0]
        for x in psigs:
            self.seen[x] = rid
        step = it.get("step") if it["where"].startswith("step") else None
        t0 = time.monotonic()
        budget = self.shrink_budget()
        ok = False
        trials = 0
        if shrunk:
            trials, dt, n_ops0, n_build0 = shrunk
            t0 -= dt
            b2, ops2, ok = build, out.ops, True
        elif budget >= 5:
            self.log("  shrinking mismatch #%d %s (budget %ds)..." % (rid, sig, budget))
            b2, ops2, trials, ok = shrink(self.tmp, build, fl.nlowers, fl.aufs, out.ops, sig,
                                          step, budget, self.log)
            self.shrink_left -= time.monotonic() - t0
        if not ok:
            b2, ops2 = build, (out.ops if step is None else out.ops[:step + 1])
        try:
            final = execute(self.tmp, b2, fl.nlowers, fl.aufs, ops=ops2)
        except Exception as e:
            self.log("  (rerun of the minimal case failed: %s)" % e)
            final = Outcome()
        if final.items:     # the kinds the minimal run shows first are this mismatch
            u = final.items[0]["where"]
            for x in final.sigs():
                if any(signature(i) == x and i["where"] == u for i in final.items):
                    self.seen.setdefault(x, rid)
        items = [i for i in final.items if signature(i) == sig] or \
            [i for i in out.items if signature(i) == sig]
        name = "diff-s%d-%d" % (seed, rid)
        os.makedirs(self.cases_dir, exist_ok=True)
        case_file = os.path.join(self.cases_dir, name + ".json")
        with open(case_file, "w") as f:
            json.dump({"seed": seed, "signature": sig, "nlowers": fl.nlowers, "aufs": fl.aufs,
                       "build": b2, "ops": ops2}, f)
        L = self.log
        L("=" * 78)
        L("MISMATCH #%d  seed %d  %s" % (rid, seed, sig))
        if ok:
            n_ops0, n_build0 = (shrunk[2], shrunk[3]) if shrunk else (len(out.ops), len(build))
            L("  shrunk in %d trials, %.0fs: %d of %d ops, %d of %d lower entries" % (
                trials, time.monotonic() - t0, len(ops2), n_ops0, len(b2), n_build0))
        else:
            L("  NOT shrunk (%s): the run up to the first difference, %d ops, %d lower entries" % (
                "no reproduction from scratch" if budget >= 5 else "shrink time used up",
                len(ops2), len(b2)))
        L("  sequence:")
        kr = {i: (k, l) for i, (op, k, l) in enumerate(final.steps)}
        for i, op in enumerate(ops2):
            k, l = kr.get(i, ("?", "?"))
            res = "both %s" % show(k, 60) if k == l else "kernel %s | layerfs %s" % (
                show(k, 60), show(l, 60))
            L("   %2d. %s  -> %s" % (i + 1, op_label(op), res))
        L("  differences (kernel vs layerfs):")
        for x in describe_items(final.items or items, 10):
            L("    " + x)
        L("  replay: %s --layerfs %s --replay %s" % (sys.argv[0], LAYERFS, case_file))
        if ok or len(b2) <= 60:
            L("  scenario (tests/write/scenario.py):")
            checks = []
            for i in (final.items or items):
                if i["where"].startswith("step") and i.get("path") is not None and \
                        i["field"] in ("nlink", "size", "mode", "uid", "gid", "type") and \
                        i["path"] not in checks and len(checks) < 3:
                    checks.append(i["path"])
            sc = format_scenario(name, b2, fl.nlowers, ops2, "difftest seed %d: %s" % (seed, sig),
                                 checks)
            for line in sc.splitlines():
                L("    " + line)
            if any(op[0] in ("fallocate", "mmap", "rmtree") or op[0].startswith("fd")
               for op in ops2):
                L("    # needs these helpers:")
                for line in SCENARIO_HELPERS.splitlines():
                    L("    " + line)
        else:
            L("  (no scenario printed for an unshrunk case of %d lower entries: see the replay "
              "file)" % len(b2))
        L("=" * 78)
        self.reports.append((rid, seed, sig, ops2))

    def replay(self, path):
        with open(path) as f:
            case = json.load(f)
        out = execute(self.tmp, case["build"], case["nlowers"], case.get("aufs", False),
                      ops=case["ops"])
        self.seeds += 1
        self.total_ops += len(out.ops)
        for i, (op, k, l) in enumerate(out.steps):
            self.log("  %2d. %s -> kernel %s%s" % (i + 1, op_label(op), show(k, 80),
                                                   "" if k == l else " | layerfs " + show(l, 80)))
        for kid, it in out.known:
            self.log("  known difference: %s: %s %r %s" % (kid, it["where"], it.get("path"),
                                                          it["field"]))
        if out.items:
            self.mismatches += 1
            for x in describe_items(out.items, 30):
                self.log("  " + x)
        if out.error:
            self.log("  TESTER ERROR: %s" % out.error)


def preflight():
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    with open("/proc/filesystems") as f:
        fss = f.read()
    if "overlay" not in fss:
        run(["modprobe", "overlay"])
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                return "no kernel overlay"
    if not os.access(LAYERFS, os.X_OK):
        return "no layerfs binary at %s" % LAYERFS
    return None


def private_mount_namespace():
    """Mount everything in a mount namespace of our own.  A namespace that
    another program makes meanwhile (unshare -m, podman, a container)
    would otherwise get copies of our mounts, and a FUSE daemon lives as
    long as any copy does: its unmount would look unclean.  Our mounts
    also go when we do, however we end."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        print("diff: note: no private mount namespace (%s); mounts are shared"
              % os.strerror(ctypes.get_errno()))
        return
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)


def main():
    global LAYERFS, OP_TIMEOUT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layerfs", default=LAYERFS)
    ap.add_argument("--seeds", help="comma-separated seeds (suite mode)")
    ap.add_argument("--seconds", type=float, help="soak: fresh seeds for this long")
    ap.add_argument("--ops", type=int, default=200, help="operations per seed")
    ap.add_argument("--replay", help="rerun a saved case (JSON)")
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--cases", help="directory for the shrunk cases (JSON)")
    ap.add_argument("--shrink-seconds", type=int, default=None,
                    help="shrink budget per mismatch (default 40; soak 90)")
    ap.add_argument("--shrink-total", type=int, default=None,
                    help="shrink budget for the whole run (default 70; soak unlimited)")
    ap.add_argument("--max-later", type=int, default=None,
                    help="later differences of new kinds to shrink, per seed "
                         "(default 0; soak 2)")
    ap.add_argument("--op-timeout", type=float, default=OP_TIMEOUT)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--stats", action="store_true", help="print result counts per operation")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every step")
    args = ap.parse_args()
    LAYERFS = os.path.abspath(args.layerfs)
    if args.shrink_seconds is None:
        args.shrink_seconds = 90 if args.seconds else 40
    if args.max_later is None:
        args.max_later = 2 if args.seconds else 0
    if args.shrink_total is None:
        args.shrink_total = 10 ** 9 if args.seconds else 70
    OP_TIMEOUT = args.op_timeout
    why = preflight()
    if why:
        print("SKIP: %s" % why)
        print("diff: 0 seeds, 0 ops, 0 mismatches")
        return 77
    os.umask(0o022)
    private_mount_namespace()
    d = Driver(args)

    def on_signal(sig, frame):
        raise SystemExit(128 + sig)
    atexit.register(cleanup_all)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    t_start = time.monotonic()
    interrupted = None
    try:
        if args.replay:
            d.replay(args.replay)
        elif args.seconds:
            sysrand = random.SystemRandom()
            d.deadline = t_start + args.seconds
            while time.monotonic() - t_start < args.seconds:
                seed = sysrand.randrange(1, 1 << 31)
                d.log("seed %d: starting" % seed)
                d.run_seed(seed, args.ops)
        else:
            for s in (args.seeds or "1,2,3").split(","):
                d.run_seed(int(s), args.ops)
    except (SystemExit, KeyboardInterrupt) as e:
        interrupted = e
    finally:
        cleanup_all()
        if not args.keep:
            keep_cases = d.reports and not args.cases
            if keep_cases:
                for name in os.listdir(d.tmp):
                    if name != "cases":
                        shutil.rmtree(os.path.join(d.tmp, name), ignore_errors=True)
            else:
                shutil.rmtree(d.tmp, ignore_errors=True)
    if args.stats:
        d.log("kernel results per operation:")
        for name in sorted(d.stats):
            st = d.stats[name]
            d.log("  %-18s %s" % (name, ", ".join("%s %d" % kv for kv in sorted(
                st.items(), key=lambda kv: -kv[1]))))
    if d.known_seen:
        d.log("known differences seen: %s" % ", ".join(
            "%s (%d)" % kv for kv in sorted(d.known_seen.items())))
    if d.reports:
        d.log("distinct mismatches: %d (cases in %s)" % (len(d.reports), d.cases_dir))
        for rid, seed, sig, ops in d.reports:
            again = [str(s) for s, r in d.dups if r == rid]
            d.log("  #%d seed %d %s (%d ops)%s" % (rid, seed, sig, len(ops),
                                                  "; again in seeds " + ",".join(again)
                                                  if again else ""))
    if d.tester_errors:
        d.log("tester errors: %d" % d.tester_errors)
    if interrupted is not None:
        d.log("interrupted (%s); everything mounted was unmounted" % type(interrupted).__name__)
    d.log("diff: %d seeds, %d ops, %d mismatches" % (d.seeds, d.total_ops, d.mismatches))
    if interrupted is not None:
        return 130
    return 1 if d.mismatches or d.tester_errors else 0


if __name__ == "__main__":
    sys.exit(main())
