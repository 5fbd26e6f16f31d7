#!/usr/bin/env python3
"""Crash during a copy-up: a 512 MiB lower file, one byte appended through
the mount, the daemon killed with SIGKILL while the copy-up runs (found
with pgrep -f MOUNTPOINT), a lazy unmount, a remount.  The file must be
either the lower version or the complete new one, the upper must hold no
partial copy, and WORKDIR/work must be empty after the remount.

Two rounds: kill as soon as the staged copy is partly written, and kill
once it reached full size (before it is renamed into place).

Usage: crash.py --tmp DIR
"""
import hashlib
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import Mount, cleanup_mounts, in_child, is_mounted, log, run  # noqa

SIZE = 512 << 20


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(8 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def daemon_pid(merged):
    p = subprocess.run(["pgrep", "-f", merged], stdout=subprocess.PIPE, timeout=10)
    pids = []
    for x in p.stdout.split():
        pid = int(x)
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip().startswith("layerfs"):
                    pids.append(pid)
        except OSError:
            pass
    return pids


def staged(work):
    """Allocated bytes of the files in WORK/work (the staging area)."""
    d = os.path.join(work, "work")
    out = []
    try:
        for n in os.listdir(d):
            try:
                st = os.lstat(os.path.join(d, n))
            except OSError:
                continue
            out.append(st.st_blocks * 512)   # allocated: the data really copied
    except OSError:
        pass
    return out


def one_round(base, lower, want_full, old_sha, new_sha):
    """Returns (problems, note)."""
    upper, work, merged = (os.path.join(base, x) for x in ("u", "w", "m"))
    for d in (upper, work, merged):
        os.makedirs(d)
    problems = []
    mnt = Mount("layerfs", [lower], upper, work, merged).mount()
    pids = daemon_pid(merged)
    if len(pids) != 1:
        mnt.abort()
        return ["pgrep -f %s found %s" % (merged, pids)], ""
    pid = pids[0]
    writer = subprocess.Popen(["timeout", "-k", "5", "120", "sh", "-c",
                               "printf X >> '%s'" % os.path.join(merged, "big")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    note = "not caught mid-way"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sizes = staged(work)
        if sizes:
            s = max(sizes)
            if (not want_full and 0 < s < SIZE) or (want_full and s >= SIZE):
                os.kill(pid, signal.SIGKILL)
                note = "killed with %d bytes of the staged copy written" % s
                break
        if writer.poll() is not None:
            os.kill(pid, signal.SIGKILL)
            note = "the append finished before the kill (rc %d)" % writer.returncode
            break
        time.sleep(0.0005)
    else:
        os.kill(pid, signal.SIGKILL)
        note = "no staged copy seen in 60 s"
    try:
        writer.wait(60)
    except subprocess.TimeoutExpired:
        writer.kill()
        problems.append("the writer hung after the daemon was killed")
    # lazy unmount of the dead mount
    run(["timeout", "10", "fusermount3", "-u", "-z", merged], check=False)
    if is_mounted(merged):
        run(["timeout", "10", "umount", "-l", merged], check=False)
    if mnt in Mount.live:
        Mount.live.remove(mnt)
    if is_mounted(merged):
        problems.append("still mounted after the lazy unmount")
        return problems, note
    before = staged(work)
    # remount
    try:
        mnt = Mount("layerfs", [lower], upper, work, merged).mount()
    except Exception as e:
        return problems + ["remount failed: %s" % e], note
    left = os.listdir(os.path.join(work, "work")) if os.path.isdir(os.path.join(work, "work")) \
        else ["<no work dir>"]
    if left:
        problems.append("WORKDIR/work not empty after the remount: %s" % left[:10])
    got, status = in_child(lambda emit: emit([os.stat(os.path.join(merged, "big")).st_size,
                                              sha_file(os.path.join(merged, "big"))]), 120)
    if status != "ok":
        problems.append("reading big after the remount: %s" % status)
        mnt.abort()
        return problems, note
    size, sha = got[0]
    which = {old_sha: "old (lower) version", new_sha: "complete new version"}.get(sha)
    if which is None:
        problems.append("big after the remount is neither version: size %d sha %s" % (size, sha))
    note += "; staged before remount: %s; after remount big is the %s" % (before, which)
    up = os.path.join(upper, "big")
    if os.path.lexists(up):
        st = os.lstat(up)
        usha = sha_file(up)
        if usha not in (old_sha, new_sha):
            problems.append("upper/big is a partial copy: size %d (lower %d)" % (st.st_size, SIZE))
    stray = [n for n in os.listdir(upper) if n != "big"]
    if stray:
        problems.append("stray names in the upper: %s" % stray)
    if not mnt.umount():
        problems.append("clean unmount after the remount failed")
    return problems, note


def main(argv):
    tmp = argv[argv.index("--tmp") + 1]
    lower = os.path.join(tmp, "lower")
    os.makedirs(lower)
    big = os.path.join(lower, "big")
    t0 = time.monotonic()
    run(["dd", "if=/dev/urandom", "of=" + big, "bs=1M", "count=%d" % (SIZE >> 20),
         "status=none"], timeout=120)
    old_sha = sha_file(big)
    h = hashlib.sha256()
    with open(big, "rb") as f:
        while True:
            b = f.read(8 << 20)
            if not b:
                break
            h.update(b)
    h.update(b"X")
    new_sha = h.hexdigest()
    log("   512 MiB lower ready (%.1fs)" % (time.monotonic() - t0))
    problems = []
    try:
        for i, want_full in enumerate((False, True)):
            base = os.path.join(tmp, "r%d" % i)
            p, note = one_round(base, lower, want_full, old_sha, new_sha)
            log("   round %d (%s): %s -- %s" % (i, "full staged copy" if want_full else
                                               "partial staged copy",
                                               "ok" if not p else "FAILED", note))
            problems += ["round %d: %s" % (i, x) for x in p]
            cleanup_mounts()
    finally:
        cleanup_mounts()
    for p in problems:
        log("   * " + p)
    if problems:
        print("FAIL: crash: %d problem(s)" % len(problems))
        return 1
    log("PASS: crash")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
