"""ovltest - what the write-path suite (tests/write/scenario.py) and the
differential tester (tests/diff/difftest.py) both need: the few syscalls
Python lacks (renameat2, fallocate, utimensat with UTIME_NOW/OMIT) and
the mount-table and daemon lookups used to clean up."""
import ctypes
import ctypes.util
import os

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _check(r, path=None):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def renameat2(a, b, flags):
    _check(libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), flags), a)


def fallocate(fd, mode, off, length):
    _check(libc.fallocate(fd, mode, off, length))


def utimensat(path, atime, mtime, follow=True):
    """atime/mtime: ns ints, or the strings 'now' / 'omit'."""
    def ts(v):
        if v == "now":
            return Timespec(0, UTIME_NOW)
        if v == "omit":
            return Timespec(0, UTIME_OMIT)
        return Timespec(v // 1_000_000_000, v % 1_000_000_000)
    arr = (Timespec * 2)(ts(atime), ts(mtime))
    _check(libc.utimensat(AT_FDCWD, os.fsencode(path), arr, 0 if follow else AT_SYMLINK_NOFOLLOW),
           path)


def mountpoints():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            m = line.split()[4]
            for esc, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
                m = m.replace(esc, ch)
            out.append(m)
    return out


def is_mounted(path):
    return os.path.realpath(path) in mountpoints()


def daemon_pids(merged):
    """layerfs processes whose argv holds MERGED (absolute)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]).startswith(b"layerfs") and \
                os.fsencode(merged) in argv[1:]:
            pids.append(int(p))
    return pids


def pid_alive(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line
    except OSError:
        return False
    return False
