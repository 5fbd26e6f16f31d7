#!/usr/bin/env python3
"""pt_steps.py MERGED: file I/O steps whose results must be the same on
kernel overlay and on layerfs (passthrough.sh).  Prints one line per step."""
import mmap
import os
import sys

M = sys.argv[1]
p = lambda n: os.path.join(M, n)


def say(*a):
    print(*a, flush=True)


def st(path):
    s = os.stat(path)
    return f'size={s.st_size} mode={oct(s.st_mode)} nlink={s.st_nlink}'


# a read-only fd of a lower file sees the copy-up another fd makes
ro = os.open(p('lower'), os.O_RDONLY)
say('ro before', os.pread(ro, 100, 0))
rw = os.open(p('lower'), os.O_WRONLY | os.O_APPEND)
os.write(rw, b'appended\n')
say('ro after copy-up', os.pread(ro, 100, 0))
os.close(rw)
say('ro after close', os.pread(ro, 100, 0))
# a new writer while the old read-only fd is still open
rw = os.open(p('lower'), os.O_RDWR)
os.pwrite(rw, b'X', 0)
say('ro sees rw', os.pread(ro, 100, 0))
os.close(rw)
os.close(ro)
# the copied-up file opened fresh: reads and writes, two fds at once
a = os.open(p('lower'), os.O_RDWR)
b = os.open(p('lower'), os.O_RDONLY)
os.pwrite(a, b'second\n', 100)
say('two fds', os.pread(b, 200, 0), st(p('lower')))
os.close(a)
os.close(b)

# a new file: size and content through stat and other fds, O_APPEND, truncate
fd = os.open(p('new'), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b'a' * 10000)
say('new size while open', os.stat(p('new')).st_size, os.fstat(fd).st_size)
os.ftruncate(fd, 4096)
say('truncated', os.stat(p('new')).st_size)
os.close(fd)
fd = os.open(p('new'), os.O_WRONLY | os.O_APPEND)
os.write(fd, b'tail')
os.close(fd)
with open(p('new'), 'rb') as f:
    d = f.read()
say('append', len(d), d[-6:])

# mmap writes seen by read() of another fd, and the reverse
fd = os.open(p('new'), os.O_RDWR)
mm = mmap.mmap(fd, 4096)
mm[0:5] = b'MMAPW'
mm.flush()
other = os.open(p('new'), os.O_RDONLY)
say('mmap -> read', os.pread(other, 5, 0))
os.pwrite(fd, b'PWRIT', 0)
say('write -> mmap', bytes(mm[0:5]))
mm.close()
os.close(other)
os.close(fd)

# hard links in the upper: one object
os.link(p('new'), p('new-link'))
fd = os.open(p('new-link'), os.O_RDWR)
os.pwrite(fd, b'LINK!', 0)
with open(p('new'), 'rb') as f:
    say('link', f.read(5), st(p('new')), st(p('new-link')))
os.close(fd)

# an open unlinked file keeps working
fd = os.open(p('gone'), os.O_CREAT | os.O_RDWR, 0o600)
os.write(fd, b'still here')
os.unlink(p('gone'))
say('unlinked', os.pread(fd, 100, 0), os.fstat(fd).st_nlink, os.path.exists(p('gone')))
os.close(fd)

# read-only handle of a file another process replaces by rename
with open(p('repl.tmp'), 'wb') as f:
    f.write(b'new version')
keep = os.open(p('repl'), os.O_RDONLY)
os.rename(p('repl.tmp'), p('repl'))
say('renamed over', os.pread(keep, 100, 0), open(p('repl'), 'rb').read())
os.close(keep)
