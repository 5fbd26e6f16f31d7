#!/usr/bin/env python3
"""Print a canonical, sorted listing of a directory tree.

One line per entry (the root is "."), tab separated:

    path  type  mode  uid  gid  [size]  [sha256]  [-> target]  [dev]  [x:xattrs]
          [nlink=N] [ino=N] [mtime=S.NS]

Used by the integration tests to diff two views of the same layers
(kernel overlay vs layerfs, source tree vs merged tree) with `diff -u`.

Options:
  --nlink        include st_nlink (for every entry)
  --ino          include st_ino
  --mtime        include st_mtime (seconds.nanoseconds)
  --no-hash      do not read file contents
  --no-owner     omit uid/gid
  --no-xattrs    omit xattrs
  --exclude-root omit the "." entry
  --prune PATH   do not list PATH (relative) nor anything under it (repeatable)
"""
import hashlib
import os
import stat
import sys


def fmt_xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return "x:<listxattr error %s>" % e.strerror
    out = []
    for n in sorted(names):
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
            out.append("%s=0x%s" % (n, v.hex()))
        except OSError as e:
            out.append("%s=<error %s>" % (n, os.strerror(e.errno)))
    return "x:" + ",".join(out)


def file_hash(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
    except OSError as e:
        return "<read error %s>" % os.strerror(e.errno)
    return h.hexdigest()


def main(argv):
    opts = {"nlink": False, "ino": False, "mtime": False, "hash": True,
            "owner": True, "xattrs": True, "root": True}
    prune = set()
    args = []
    it = iter(argv)
    for a in it:
        if a == "--nlink":
            opts["nlink"] = True
        elif a == "--ino":
            opts["ino"] = True
        elif a == "--mtime":
            opts["mtime"] = True
        elif a == "--no-hash":
            opts["hash"] = False
        elif a == "--no-owner":
            opts["owner"] = False
        elif a == "--no-xattrs":
            opts["xattrs"] = False
        elif a == "--exclude-root":
            opts["root"] = False
        elif a == "--prune":
            prune.add(next(it).strip("/"))
        else:
            args.append(a)
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    root = args[0]
    lines = []
    errors = 0

    def entry(rel, full):
        nonlocal errors
        try:
            st = os.lstat(full)
        except OSError as e:
            errors += 1
            return "%s\t<lstat error %s>" % (rel, os.strerror(e.errno)), None
        m = st.st_mode
        if stat.S_ISREG(m):
            t = "f"
        elif stat.S_ISDIR(m):
            t = "d"
        elif stat.S_ISLNK(m):
            t = "l"
        elif stat.S_ISCHR(m):
            t = "c"
        elif stat.S_ISBLK(m):
            t = "b"
        elif stat.S_ISFIFO(m):
            t = "p"
        elif stat.S_ISSOCK(m):
            t = "s"
        else:
            t = "?"
        f = [rel, t, "%04o" % stat.S_IMODE(m)]
        if opts["owner"]:
            f += [str(st.st_uid), str(st.st_gid)]
        if t == "f":
            f.append("size=%d" % st.st_size)
            if opts["hash"]:
                f.append(file_hash(full))
        elif t == "l":
            try:
                f.append("-> " + os.readlink(full))
            except OSError as e:
                f.append("-> <readlink error %s>" % os.strerror(e.errno))
        elif t in "cb":
            f.append("dev=%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
        if opts["xattrs"]:
            f.append(fmt_xattrs(full))
        if opts["nlink"]:
            f.append("nlink=%d" % st.st_nlink)
        if opts["ino"]:
            f.append("ino=%d" % st.st_ino)
        if opts["mtime"]:
            f.append("mtime=%d.%09d" % (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9))
        return "\t".join(f), t

    if opts["root"]:
        lines.append(entry(".", root)[0])
    def walk_error(e):
        nonlocal errors
        errors += 1
        rel = os.path.relpath(e.filename, root) if e.filename else "?"
        lines.append("%s\t<readdir error %s>" % (rel, e.strerror))

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error, followlinks=False):
        reldir = os.path.relpath(dirpath, root)
        keep = []
        for name in sorted(dirnames + filenames):
            rel = name if reldir == "." else reldir + "/" + name
            if rel in prune:
                continue
            line, t = entry(rel, os.path.join(dirpath, name))
            lines.append(line)
            if t == "d":
                keep.append(name)
        dirnames[:] = [d for d in dirnames if d in keep]
    lines.sort(key=lambda s: s.split("\t", 1)[0].encode("utf-8", "surrogateescape"))
    out = sys.stdout.buffer
    for l in lines:
        out.write(l.encode("utf-8", "surrogateescape") + b"\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
