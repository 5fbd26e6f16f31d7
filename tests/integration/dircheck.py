#!/usr/bin/env python3
"""Directory-listing invariants of a mounted tree.

Usage: dircheck.py [--seek DIR]... ROOT

For every directory under ROOT (not following symlinks):
  * readdir returns no name twice, and never "." / ".." as regular names;
  * the d_ino of every entry equals the entry's lstat st_ino;
  * every entry has the same st_dev as ROOT;
  * the d_type of every entry (when not DT_UNKNOWN) matches lstat.
With --seek DIR: telldir/seekdir on DIR are stable: seeking back to any
position returned by telldir yields the same entry again, rewinddir gives the
same sequence, and two streams opened one after the other list the same set.
Prints one line per problem; exit 1 if any, 0 otherwise.
"""
import ctypes
import ctypes.util
import os
import random
import stat
import sys

libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.restype = None
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.rewinddir.restype = None
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]

DT = {1: stat.S_IFIFO, 2: stat.S_IFCHR, 4: stat.S_IFDIR, 6: stat.S_IFBLK,
      8: stat.S_IFREG, 10: stat.S_IFLNK, 12: stat.S_IFSOCK}

problems = []


def problem(msg):
    problems.append(msg)
    if len(problems) <= 50:
        print(msg)


def opendir(path):
    d = libc.opendir(os.fsencode(path))
    if not d:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return d


def read_one(d):
    ctypes.set_errno(0)
    p = libc.readdir(d)
    if not p:
        e = ctypes.get_errno()
        if e:
            raise OSError(e, os.strerror(e))
        return None
    ent = p.contents
    return (ent.d_name, ent.d_ino, ent.d_type)


def read_all(path):
    d = opendir(path)
    try:
        out = []
        while True:
            r = read_one(d)
            if r is None:
                return out
            out.append(r)
    finally:
        libc.closedir(d)


def check_dir(path, rootdev):
    try:
        ents = read_all(path)
    except OSError as e:
        problem("%s: readdir failed: %s" % (path, e.strerror))
        return []
    names = [n for n, _, _ in ents]
    seen = set()
    for n in names:
        if n in seen:
            problem("%s: %r listed twice" % (path, n))
        seen.add(n)
    if b"." not in seen or b".." not in seen:
        problem("%s: '.' or '..' missing from readdir" % path)
    subdirs = []
    for n, ino, dtype in ents:
        if n == b"..":
            continue
        full = os.path.join(os.fsencode(path), n) if n != b"." else os.fsencode(path)
        try:
            st = os.lstat(full)
        except OSError as e:
            problem("%s: listed but lstat gives %s" % (os.fsdecode(full), e.strerror))
            continue
        if st.st_ino != ino:
            problem("%s: d_ino %d != st_ino %d" % (os.fsdecode(full), ino, st.st_ino))
        if st.st_dev != rootdev:
            problem("%s: st_dev %d != mount root's %d" % (os.fsdecode(full), st.st_dev, rootdev))
        if dtype != 0 and n != b".":
            if DT.get(dtype) != stat.S_IFMT(st.st_mode):
                problem("%s: d_type %d does not match st_mode %o" % (os.fsdecode(full), dtype, st.st_mode))
        if n != b"." and stat.S_ISDIR(st.st_mode):
            subdirs.append(full)
    return subdirs


def seek_check(path):
    d = opendir(path)
    try:
        seq = []
        while True:
            pos = libc.telldir(d)
            r = read_one(d)
            if r is None:
                break
            seq.append((pos, r[0]))
        if len(seq) < 3:
            problem("%s: too few entries for the seek check" % path)
            return
        rng = random.Random(4242)
        picks = list(range(len(seq)))
        rng.shuffle(picks)
        for i in picks[:200] + [0, len(seq) - 1]:
            pos, name = seq[i]
            libc.seekdir(d, pos)
            r = read_one(d)
            got = r[0] if r else None
            if got != name:
                problem("%s: seekdir(telldir before entry %d) gave %r, expected %r" % (path, i, got, name))
                break
        # seek to the end position: nothing more
        libc.rewinddir(d)
        again = []
        while True:
            r = read_one(d)
            if r is None:
                break
            again.append(r[0])
        if again != [n for _, n in seq]:
            problem("%s: rewinddir: the second pass differs (%d vs %d entries)" % (path, len(again), len(seq)))
    finally:
        libc.closedir(d)
    other = sorted(n for n, _, _ in read_all(path))
    if other != sorted(n for _, n in seq):
        problem("%s: a second opendir lists a different set" % path)


def main(argv):
    seeks = []
    args = []
    it = iter(argv)
    for a in it:
        if a == "--seek":
            seeks.append(next(it))
        else:
            args.append(a)
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    root = args[0]
    rootdev = os.lstat(root).st_dev
    todo = [os.fsencode(root)]
    ndirs = 0
    while todo:
        p = todo.pop()
        ndirs += 1
        todo.extend(check_dir(os.fsdecode(p), rootdev))
    for s in seeks:
        seek_check(s)
    print("dircheck: %d directories, %d problems" % (ndirs, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
