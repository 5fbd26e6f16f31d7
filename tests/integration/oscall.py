#!/usr/bin/env python3
"""Run one os call and print "OK[ result]" or the errno name (ENOENT, ...).

Usage: oscall.py OP PATH [ARG...]

OPs: stat lstat open read readlink listdir getxattr NAME lgetxattr NAME
     listxattr llistxattr access r|w|x|rw|rwx|f chdir mkdir creat unlink rmdir
     symlink TARGET rename NEW truncate
Exit status is 0 whatever the call gave; 2 on bad usage.
"""
import errno
import os
import sys


def run(op, path, args):
    if op == "stat":
        st = os.stat(path)
        return "ino=%d mode=%o" % (st.st_ino, st.st_mode)
    if op == "lstat":
        st = os.lstat(path)
        return "ino=%d mode=%o" % (st.st_ino, st.st_mode)
    if op == "open":
        os.close(os.open(path, os.O_RDONLY))
        return ""
    if op == "read":
        with open(path, "rb") as f:
            return "%d bytes" % len(f.read())
    if op == "readlink":
        return os.readlink(path)
    if op == "listdir":
        return " ".join(sorted(os.listdir(path)))
    if op == "getxattr":
        return os.getxattr(path, args[0]).hex()
    if op == "lgetxattr":
        return os.getxattr(path, args[0], follow_symlinks=False).hex()
    if op == "listxattr":
        return " ".join(sorted(os.listxattr(path)))
    if op == "llistxattr":
        return " ".join(sorted(os.listxattr(path, follow_symlinks=False)))
    if op == "access":
        m = 0
        for c in args[0]:
            m |= {"r": os.R_OK, "w": os.W_OK, "x": os.X_OK, "f": os.F_OK}[c]
        # os.access does not raise: use the raw call through ctypes for errno
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        r = libc.access(os.fsencode(path), m)
        if r != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return ""
    if op == "chdir":
        os.chdir(path)
        return ""
    if op == "mkdir":
        os.mkdir(path)
        return ""
    if op == "creat":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        return ""
    if op == "openw":
        os.close(os.open(path, os.O_WRONLY))
        return ""
    if op == "unlink":
        os.unlink(path)
        return ""
    if op == "rmdir":
        os.rmdir(path)
        return ""
    if op == "symlink":
        os.symlink(args[0], path)
        return ""
    if op == "rename":
        os.rename(path, args[0])
        return ""
    if op == "truncate":
        os.truncate(path, 0)
        return ""
    raise SystemExit("oscall.py: unknown op %r" % op)


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    op, path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        r = run(op, path, args)
    except OSError as e:
        print(errno.errorcode.get(e.errno, "E%d" % e.errno))
        return 0
    print(("OK " + r) if r else "OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
