#!/usr/bin/env python3
"""Concurrency on one mount: parallel appenders to one lower file (one
copy-up, all data there), 200 files copied up in parallel by 4 processes,
a 5 s rename storm by 4 processes (only ENOENT races allowed).  Each is run
on kernel overlay first (a check of the test itself), then on layerfs.
Afterwards the layerfs tree must agree with its upper: remount and compare,
and the kernel mounting that upper must show the same tree.

Usage: concurrency.py --tmp DIR
"""
import errno
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import (Builder, Mount, cleanup_mounts, in_child, snap_tree, renameat2,  # noqa
                      RENAME_NOREPLACE, log, udiff)

WRITERS, LINES = 8, 200
NFILES, COPIERS = 200, 4
STORMERS, STORM_SECS, NSTORM = 4, 5.0, 16


def build(B):
    B.file(0, "shared", "base\n", uid=77, gid=88, mode=0o664)
    for i in range(NFILES):
        B.file(i % 2, "many/d%02d/f%03d" % (i % 10, i), "orig %d\n" % i)
    for k in range(NSTORM):
        B.file(0, "storm/a%02d" % k, "file %d\n" % k)
        B.file(1, "storm/D%02d/child" % k, "child %d\n" % k)
    B.dir(0, "storm2")


def fork_all(n, fn):
    """Runs fn(i) in n forked processes; returns their exit codes' messages."""
    pids = []
    rfds = []
    for i in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            msg = ""
            try:
                msg = fn(i) or ""
            except BaseException as e:
                msg = "worker %d: %s: %s" % (i, type(e).__name__, e)
            os.write(w, msg.encode()[:4000])
            os._exit(0)
        os.close(w)
        pids.append(pid)
        rfds.append(r)
    msgs = []
    for pid, r in zip(pids, rfds):
        data = b""
        while True:
            b = os.read(r, 4096)
            if not b:
                break
            data += b
        os.close(r)
        os.waitpid(pid, 0)
        if data:
            msgs.append(data.decode())
    return msgs


def appenders(m):
    path = os.path.join(m, "shared")

    def work(i):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        inos = set()
        try:
            for j in range(LINES):
                os.write(fd, b"w%d %04d\n" % (i, j))
                if j % 50 == 0:
                    inos.add(os.fstat(fd).st_ino)
        finally:
            os.close(fd)
        if len(inos) != 1:
            return "writer %d saw st_ino change on its fd: %s" % (i, sorted(inos))
        return ""
    errs = fork_all(WRITERS, work)
    with open(path, "rb") as f:
        data = f.read()
    lines = data.decode(errors="replace").split("\n")
    if not data.endswith(b"\n"):
        errs.append("shared does not end with a newline (torn write?)")
    lines = lines[:-1]
    if not lines or lines[0] != "base":
        errs.append("shared: first line %r, not the lower's 'base'" % (lines[:1],))
    want = 1 + WRITERS * LINES
    if len(lines) != want:
        errs.append("shared: %d lines, want %d" % (len(lines), want))
    for i in range(WRITERS):
        mine = [ln for ln in lines if ln.startswith("w%d " % i)]
        if mine != ["w%d %04d" % (i, j) for j in range(LINES)]:
            errs.append("writer %d: %d of %d lines, in order: %s" % (
                i, len(mine), LINES, mine == sorted(mine)))
    st = os.stat(path)
    if (st.st_uid, st.st_gid, st.st_mode & 0o7777) != (77, 88, 0o664):
        errs.append("shared: owner/mode %d:%d %o after copy-up" % (st.st_uid, st.st_gid,
                                                                   st.st_mode & 0o7777))
    return errs


def copiers(m):
    def work(i):
        rnd = random.Random(i)
        order = list(range(NFILES))
        rnd.shuffle(order)
        for k in order:
            p = os.path.join(m, "many/d%02d/f%03d" % (k % 10, k))
            with open(p, "ab") as f:
                f.write(b"p%d\n" % i)
        return ""
    errs = fork_all(COPIERS, work)
    for k in range(NFILES):
        p = os.path.join(m, "many/d%02d/f%03d" % (k % 10, k))
        with open(p, "rb") as f:
            lines = f.read().decode().splitlines()
        if not lines or lines[0] != "orig %d" % k or sorted(lines[1:]) != \
                ["p%d" % i for i in range(COPIERS)]:
            errs.append("many/f%03d: %r" % (k, lines))
    names = sorted(os.listdir(os.path.join(m, "many")))
    if names != ["d%02d" % i for i in range(10)]:
        errs.append("many/: %s" % names)
    return errs


def storm(m):
    def reader():
        """Lists and reads both dirs meanwhile (ENOENT races only)."""
        deadline = time.monotonic() + STORM_SECS
        n = 0
        while time.monotonic() < deadline:
            for d in ("storm", "storm2"):
                for name in os.listdir(os.path.join(m, d)):
                    p = os.path.join(m, d, name)
                    try:
                        if name.startswith("D"):
                            os.listdir(p)
                        else:
                            with open(p) as f:
                                f.read()
                        n += 1
                    except OSError as e:
                        if e.errno != errno.ENOENT:
                            return "reader: %s/%s: %s" % (d, name,
                                                          errno.errorcode.get(e.errno, e.errno))
        return "" if n else "reader: read nothing"

    def work(i):
        if i == STORMERS:
            return reader()
        rnd = random.Random(100 + i)
        deadline = time.monotonic() + STORM_SECS
        n_ok = n_enoent = 0
        while time.monotonic() < deadline:
            k = rnd.randrange(NSTORM)
            name = ("a%02d" if rnd.random() < 0.6 else "D%02d") % k
            a, b = ("storm", "storm2") if rnd.random() < 0.5 else ("storm2", "storm")
            try:
                renameat2(os.path.join(m, a, name), os.path.join(m, b, name), RENAME_NOREPLACE)
                n_ok += 1
            except OSError as e:
                if e.errno == errno.ENOENT:
                    n_enoent += 1
                    continue
                return "stormer %d: rename %s/%s -> %s/%s: %s" % (
                    i, a, name, b, name, errno.errorcode.get(e.errno, e.errno))
        if n_ok == 0:
            return "stormer %d: no rename succeeded" % i
        return ""
    errs = fork_all(STORMERS + 1, work)
    for k in range(NSTORM):
        for name, check in (("a%02d" % k, "file %d\n" % k), ("D%02d/child" % k,
                                                             "child %d\n" % k)):
            where = [d for d in ("storm", "storm2")
                     if os.path.lexists(os.path.join(m, d, name))]
            if len(where) != 1:
                errs.append("%s present in %s" % (name, where or "neither dir"))
                continue
            with open(os.path.join(m, where[0], name)) as f:
                got = f.read()
            if got != check:
                errs.append("%s/%s: %r" % (where[0], name, got))
    return errs


def mask_dir_nlink(lines):
    out = []
    for ln in lines:
        if " type=dir " in ln:
            ln = " ".join(x for x in ln.split(" ") if not x.startswith("nlink=")
                          and not x.startswith("dirnlink="))
        out.append(ln)
    return out


def run_kind(tmp, kind):
    base = os.path.join(tmp, kind)
    lowers = [os.path.join(base, "l0"), os.path.join(base, "l1")]
    upper, work, merged = (os.path.join(base, x) for x in ("u", "w", "m"))
    for d in lowers + [upper, work, merged]:
        os.makedirs(d)
    B = Builder(lowers)
    build(B)
    B.finalize()
    problems = []
    mnt = Mount(kind, lowers, upper, work, merged).mount()
    for name, fn, limit in (("appenders", appenders, 60), ("copiers", copiers, 60),
                            ("rename storm", storm, 60)):
        t0 = time.monotonic()
        got, status = in_child(lambda emit: emit(fn(merged)), limit)
        if status != "ok":
            problems.append("%s: %s: %s" % (kind, name, status))
            mnt.abort()
            return problems
        errs = got[0] if got else ["no result"]
        log("   %s %-13s %s (%.1fs)" % (kind, name, "ok" if not errs else "FAILED",
                                       time.monotonic() - t0))
        problems += ["%s: %s: %s" % (kind, name, e) for e in errs[:20]]
    got, status = in_child(lambda emit: emit(snap_tree(merged)), 60)
    if status != "ok":
        problems.append("%s: snapshot %s" % (kind, status))
        mnt.abort()
        return problems
    live = got[0]["lines"]
    if not mnt.umount():
        problems.append("%s: clean unmount failed" % kind)
    leftovers = sorted(os.listdir(os.path.join(work, "work"))) \
        if os.path.isdir(os.path.join(work, "work")) else []
    if leftovers:
        problems.append("%s: workdir/work not empty after unmount: %s" % (kind, leftovers[:10]))
    up = snap_tree(upper, upper=True)["lines"]
    if any("#" in ln.split(" ")[0] for ln in up):
        problems.append("%s: staging names in the upper: %s" %
                        (kind, [ln for ln in up if "#" in ln.split(" ")[0]][:5]))
    if kind != "layerfs":
        return problems
    # Remount layerfs, and mount the kernel on the same upper.
    trees = {}
    for k2 in ("layerfs", "kernel"):
        w2 = os.path.join(base, "w-" + k2)
        m2 = os.path.join(base, "m-" + k2)
        try:
            m = Mount(k2, lowers, upper, w2, m2).mount()
        except Exception as e:
            problems.append("remount with %s: %s" % (k2, e))
            continue
        got, status = in_child(lambda emit: emit(snap_tree(m2)), 60)
        if status != "ok":
            problems.append("remount with %s: snapshot %s" % (k2, status))
            m.abort()
            continue
        trees[k2] = got[0]["lines"]
        m.umount()
    if "layerfs" in trees and mask_dir_nlink(live) != mask_dir_nlink(trees["layerfs"]):
        problems.append("layerfs tree before unmount != after remount:\n" +
                        udiff(mask_dir_nlink(live), mask_dir_nlink(trees["layerfs"]),
                              "live", "remounted"))
    if "layerfs" in trees and "kernel" in trees and trees["layerfs"] != trees["kernel"]:
        problems.append("layerfs remounted != kernel on the same upper:\n" +
                        udiff(trees["kernel"], trees["layerfs"], "kernel", "layerfs"))
    return problems


def main(argv):
    tmp = argv[argv.index("--tmp") + 1]
    problems = []
    try:
        kproblems = run_kind(tmp, "kernel")
        if kproblems:
            log("the test itself fails on the kernel:\n  " + "\n  ".join(kproblems))
            print("FAIL: test error: kernel overlay fails the invariants")
            return 1
        problems = run_kind(tmp, "layerfs")
    finally:
        cleanup_mounts()
    for p in problems:
        for ln in p.splitlines()[:80]:
            log("   * " + ln)
    if problems:
        print("FAIL: concurrency: %d problem(s)" % len(problems))
        return 1
    log("PASS: concurrency")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
