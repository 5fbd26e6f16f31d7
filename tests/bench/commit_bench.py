#!/usr/bin/env python3
"""Benchmark of `layer-tool commit` against `tar -c` (issue 7).

Times `layer-tool commit ROOTFS -o OUT.tar` (uncompressed) and
`tar -cf OUT.tar -C ROOTFS .` on the fixture rootfs, unpacked, runs
alternated, and prints the medians, their ratio (target: at most 1.3) and
layer-tool's peak RSS (from wait4's rusage).  To show that memory does not
grow with the tree, it also commits a tree holding the rootfs twice and
prints that peak RSS beside the first.  Optionally (--compress) times the
compressed forms too, for information.

    python3 tests/bench/commit_bench.py [--reps N] [--json FILE]
        [--layer-tool PATH] [--rootfs DIR] [--workdir DIR] [--compress]

The rootfs is ../shared/fixtures/debian-bookworm-minbase.tar.zst unpacked
(the tests' cache at /tmp/layerfs-fixture-rootfs is used when complete).
Run as root after `ninja -C build`; never run by `meson test`.
"""
import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
FIXTURE = "debian-bookworm-minbase.tar.zst"


def find_fixture():
    for c in (os.path.join(SRC, "..", "shared", "fixtures", FIXTURE),
              os.path.join(SRC, "shared", "fixtures", FIXTURE),
              os.path.join("/work/shared/fixtures", FIXTURE)):
        if os.path.isfile(c):
            return os.path.realpath(c)
    return None


def rootfs(args, work):
    if args.rootfs:
        return args.rootfs
    for done in glob.glob("/tmp/layerfs-fixture-rootfs/*/full.done"):
        return os.path.join(os.path.dirname(done), "full")
    fix = find_fixture()
    if not fix:
        sys.exit("commit_bench: fixture %s not found; give --rootfs DIR" % FIXTURE)
    d = os.path.join(work, "rootfs")
    if not os.path.exists(d + ".done"):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        subprocess.run(["tar", "--numeric-owner", "-xpf", fix, "-C", d], check=True)
        open(d + ".done", "w").close()
    return d


CPU = {}


def run(argv, out):
    """Runs argv; returns (seconds, peak RSS in KiB); CPU seconds go to CPU[argv[0]]."""
    if os.path.exists(out):
        os.unlink(out)
    subprocess.run(["sync"], check=False)
    t0 = time.monotonic()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status, ru = os.wait4(pid, 0)
    dt = time.monotonic() - t0
    CPU.setdefault(argv[0], []).append(ru.ru_utime + ru.ru_stime)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("commit_bench: %s failed (%s)" % (" ".join(argv), status))
    return dt, ru.ru_maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--layer-tool", default=os.path.join(SRC, "build", "tools", "layer-tool", "layer-tool"))
    ap.add_argument("--rootfs")
    ap.add_argument("--workdir", default="/tmp/layer-tool-bench")
    ap.add_argument("--compress", action="store_true", help="also time gzip and zstd commits")
    args = ap.parse_args()
    lt = os.path.realpath(args.layer_tool)
    if not os.access(lt, os.X_OK):
        sys.exit("commit_bench: %s not built" % lt)
    tar = shutil.which("tar")
    os.makedirs(args.workdir, exist_ok=True)
    work = tempfile.mkdtemp(dir=args.workdir)
    try:
        root = rootfs(args, args.workdir)
        out = os.path.join(work, "out.tar")
        samples = {"layer-tool": [], "tar": []}
        rss = []
        # one warm-up of each, so both read from the page cache
        run([lt, "commit", root, "-o", out, "-q"], out)
        run([tar, "-cf", out, "-C", root, "."], out)
        for i in range(args.reps):
            order = [("layer-tool", [lt, "commit", root, "-o", out, "-q"]),
                     ("tar", [tar, "-cf", out, "-C", root, "."])]
            if i % 2:
                order.reverse()
            for name, argv in order:
                dt, r = run(argv, out)
                samples[name].append(dt)
                if name == "layer-tool":
                    rss.append(r)
        size = os.path.getsize(out) if os.path.exists(out) else 0
        run([lt, "commit", root, "-o", out, "-q"], out)
        lt_size = os.path.getsize(out)
        # twice the tree: the peak RSS must stay about the same
        double = os.path.join(work, "double")
        os.makedirs(double)
        for k in ("a", "b"):
            subprocess.run(["cp", "-a", root, os.path.join(double, k)], check=True)
        _, rss2 = run([lt, "commit", double, "-o", out, "-q"], out)
        extra = {}
        if args.compress:
            for c in ("gzip", "zstd"):
                o = os.path.join(work, "out." + c)
                extra[c] = statistics.median(run([lt, "commit", root, "-o", o, "-q", "--compress", c], o)[0]
                                             for _ in range(max(1, min(args.reps, 3))))
        m_lt = statistics.median(samples["layer-tool"])
        m_tar = statistics.median(samples["tar"])
        ratio = m_lt / m_tar if m_tar else float("inf")
        print("commit of %s (%d MiB tar), %d reps, medians:" % (root, lt_size >> 20, args.reps))
        print("  layer-tool commit   %.3f s   peak RSS %d KiB" % (m_lt, max(rss)))
        print("  tar -c              %.3f s" % m_tar)
        print("  CPU (user+sys)      layer-tool %.3f s, tar %.3f s (medians, all runs; load %.1f)"
              % (statistics.median(CPU[lt]), statistics.median(CPU[tar]), os.getloadavg()[0]))
        print("  ratio               %.2fx (target <= 1.3x) %s" % (ratio, "OK" if ratio <= 1.3 else "OVER"))
        print("  twice the tree      peak RSS %d KiB (one tree: %d KiB)" % (rss2, max(rss)))
        for c, v in extra.items():
            print("  commit --compress %-4s %.3f s" % (c, v))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"rootfs": root, "tar_bytes": lt_size, "gnu_tar_bytes": size, "reps": args.reps,
                           "layer_tool_s": samples["layer-tool"], "tar_s": samples["tar"],
                           "median_layer_tool_s": m_lt, "median_tar_s": m_tar, "ratio": ratio,
                           "peak_rss_kib": max(rss), "cpu_s": {"layer-tool": CPU[lt], "tar": CPU[tar]},
                           "loadavg": os.getloadavg(), "peak_rss_double_tree_kib": rss2,
                           "compressed_s": extra, "machine": platform.platform(),
                           "cpus": os.cpu_count()}, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
