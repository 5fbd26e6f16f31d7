#!/usr/bin/env python3
"""bench.py - layerfs against a plain directory, kernel overlay and
fuse-overlayfs (issue 5).

Every workload runs on fresh mounts over the same lower directories for
each target; repetitions alternate the targets (the order rotates each
repetition) and the table shows medians.  Run as root; see README.md.

    python3 tests/bench/bench.py [--quick] [--reps N] [--only W1,W2] [--json FILE]
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
FIXTURE = os.path.abspath(os.path.join(REPO, '..', 'shared', 'fixtures',
                                       'debian-bookworm-minbase.tar.zst'))
FIXTURE_CACHE = '/tmp/layerfs-fixture-rootfs'
TARGETS = ['plain', 'kernel', 'fuse-overlayfs', 'layerfs']
DAEMONS = {'fuse-overlayfs': 'fuse-overlayfs', 'layerfs': 'layerfs'}
MiB = 1 << 20


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def short(argv, n=200):
    s = ' '.join(shlex.quote(str(a)) for a in argv)
    return s if len(s) <= n else s[:n] + '...'


# ---------------------------------------------------------------- processes

def run(cmd, timeout, cwd=None, check=True, capture=False):
    """Runs a command (a list, or a string for bash with pipefail) in its own
    session; on timeout the whole process group is killed.  Output goes to
    temporary files, so a daemon keeping a descriptor cannot block us."""
    argv = ['bash', '-c', 'set -eo pipefail; ' + cmd] if isinstance(cmd, str) else [str(a) for a in cmd]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                             stdout=out if capture else subprocess.DEVNULL, stderr=err,
                             start_new_session=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            raise BenchError(f'timed out after {timeout:.0f}s: {short(argv)}')
        except BaseException:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            raise
        err.seek(0)
        errtext = err.read().decode(errors='replace').strip()
        if check and p.returncode != 0:
            lines = errtext.splitlines()
            more = f' (+{len(lines) - 1} more lines)' if len(lines) > 1 else ''
            first = lines[0][:300] if lines else ''
            raise BenchError(f'exit {p.returncode}: {short(argv)}: {first}{more}')
        if capture:
            out.seek(0)
            return out.read().decode(errors='replace')
        return errtext


def timed(cmd, timeout, cwd=None):
    # start clean: no writeback left over from the previous step or target
    os.sync()
    t0 = time.perf_counter()
    run(cmd, timeout, cwd=cwd)
    return time.perf_counter() - t0


def drop_caches():
    os.sync()
    with open('/proc/sys/vm/drop_caches', 'w') as f:
        f.write('3\n')


def proc_status_kb(pid, key):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return None


def find_daemon(comm, mnt):
    """The PID of the FUSE daemon serving mnt: a process of that name with
    the mountpoint among its arguments."""
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open(f'/proc/{d}/comm') as f:
                if f.read().strip() != comm:
                    continue
            with open(f'/proc/{d}/cmdline', 'rb') as f:
                args = [a.decode(errors='replace') for a in f.read().split(b'\0')]
        except OSError:
            continue
        if mnt in args or any(a.rstrip('/') == mnt for a in args):
            return int(d)
    return None


def pid_alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


# ---------------------------------------------------------------- mounts

class Mounted:
    """One target mounted (or, for 'plain', a directory) for one run.
    Unmounts and removes its scratch directory on exit, whatever happened."""

    def __init__(self, b, target, lowers, scratch, plain):
        self.b, self.target, self.lowers, self.scratch, self.plain = b, target, lowers, scratch, plain
        self.pid = None
        self.mnt = None
        self.mount_s = None
        self.hwm_kb = None

    def __enter__(self):
        b = self.b
        os.makedirs(self.scratch)
        b.active.append(self)
        try:
            self._mount()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _mount(self):
        b, t = self.b, self.target
        if t == 'plain':
            self.root = self.plain(self.scratch) if callable(self.plain) else self.plain
            return
        upper, work, mnt = (os.path.join(self.scratch, n) for n in ('upper', 'work', 'mnt'))
        for d in (upper, work, mnt):
            os.makedirs(d)
        self.mnt = self.root = mnt
        t0 = time.perf_counter()
        if t == 'kernel':
            # 500 absolute lower paths overflow mount(2)'s one-page option
            # string: name them relative to their common parent instead
            parents = {os.path.dirname(l) for l in self.lowers}
            cwd = None
            names = self.lowers
            if len(parents) == 1 and len(self.lowers) > 1:
                cwd = parents.pop()
                names = [os.path.basename(l) for l in self.lowers]
            opts = f'lowerdir={":".join(names)},upperdir={upper},workdir={work}'
            run(['mount', '-t', 'overlay', 'overlay', '-o', opts, mnt], b.timeout, cwd=cwd)
        elif t == 'fuse-overlayfs':
            opts = f'lowerdir={":".join(self.lowers)},upperdir={upper},workdir={work}'
            run([b.fuse_overlayfs, '-o', opts, mnt], b.timeout)
        elif t == 'layerfs':
            extra = ['-o', b.layerfs_opts] if b.layerfs_opts else []
            run([b.layerfs, 'mount', ':'.join(self.lowers), upper, mnt, '--workdir', work] + extra,
                b.timeout)
        self.mount_s = time.perf_counter() - t0
        if not os.path.ismount(mnt):
            raise BenchError(f'{t}: {mnt} is not a mountpoint after mounting')
        if t in DAEMONS:
            for _ in range(50):
                self.pid = find_daemon(DAEMONS[t], mnt)
                if self.pid:
                    break
                time.sleep(0.02)
            if not self.pid:
                log(f'  warning: no {DAEMONS[t]} process found for {mnt}')

    def hwm(self):
        return proc_status_kb(self.pid, 'VmHWM') if self.pid else None

    def rss(self):
        return proc_status_kb(self.pid, 'VmRSS') if self.pid else None

    def __exit__(self, *exc):
        self._cleanup()
        return False

    def _cleanup(self):
        b = self.b
        try:
            if self.pid:
                self.hwm_kb = self.hwm()
            if self.mnt and os.path.ismount(self.mnt):
                self._umount()
            if self.pid:
                deadline = time.time() + 30
                while pid_alive(self.pid) and time.time() < deadline:
                    time.sleep(0.05)
                if pid_alive(self.pid):
                    log(f'  warning: daemon {self.pid} still running after unmount: killing it')
                    os.kill(self.pid, signal.SIGKILL)
            if self.mnt and os.path.ismount(self.mnt):
                raise BenchError(f'could not unmount {self.mnt}; leaving {self.scratch} in place')
            run(['rm', '-rf', '--one-file-system', self.scratch], b.timeout)
        finally:
            if self in b.active:
                b.active.remove(self)

    def _umount(self):
        b = self.b
        cmd = [b.layerfs, 'umount', self.mnt] if self.target == 'layerfs' else ['umount', self.mnt]
        for attempt in range(5):
            try:
                run(cmd, 60)
                return
            except BenchError as e:
                last = e
                time.sleep(0.5)
        log(f'  warning: {last}; lazy unmount')
        run(['umount', '-l', self.mnt], 60, check=False)


# ---------------------------------------------------------------- data sets

def sh_q(p):
    return shlex.quote(str(p))


class Data:
    """Lower layers and inputs, built once under WORK/data and reused by
    later runs (each marked complete by a .done file)."""

    def __init__(self, b):
        self.b = b
        self.dir = os.path.join(b.work, 'data')
        os.makedirs(self.dir, exist_ok=True)

    def _build(self, name, fn):
        path = os.path.join(self.dir, name)
        done = path + '.done'
        if os.path.exists(done):
            return path
        if os.path.lexists(path):
            run(['rm', '-rf', '--one-file-system', path], self.b.timeout)
        log(f'[data] building {name}')
        t0 = time.time()
        fn(path)
        open(done, 'w').close()
        log(f'[data] {name} ready in {time.time() - t0:.1f}s')
        return path

    def rootfs(self):
        def build(path):
            os.makedirs(path)
            cached = self._cached_fixture()
            if cached:
                log(f'[data] copying the cached fixture {cached}')
                run(['cp', '-a', cached + '/.', path], self.b.timeout)
            else:
                run(['tar', '--numeric-owner', '-xpf', FIXTURE, '-C', path], self.b.timeout)
        return self._build('rootfs', build)

    @staticmethod
    def _cached_fixture():
        try:
            st = os.stat(FIXTURE)
        except OSError:
            return None
        d = os.path.join(FIXTURE_CACHE, f'{int(st.st_mtime)}-{st.st_size}')
        if os.path.exists(os.path.join(d, 'full.done')) and os.path.isdir(os.path.join(d, 'full')):
            return os.path.join(d, 'full')
        return None

    def rootfs_tar(self):
        def build(path):
            os.makedirs(path)
            run(f'zstd -dc {sh_q(FIXTURE)} > {sh_q(path)}/rootfs.tar', self.b.timeout)
        return os.path.join(self._build('rootfs-tar', build), 'rootfs.tar')

    def bigfile(self):
        size = self.b.big
        def build(path):
            os.makedirs(path)
            run(f'head -c {size} /dev/urandom > {sh_q(path)}/big.bin', self.b.timeout)
        return self._build(f'big-{size // MiB}M', build)

    def bigdir(self):
        n = self.b.bigdir_n
        def build(path):
            for sub in ('top', 'bottom', 'flat'):
                os.makedirs(os.path.join(path, sub, 'd'))
            for k in range(n):
                name = f'file-{k:06d}'
                layer = 'top' if k % 2 == 0 else 'bottom'
                for sub in (layer, 'flat'):
                    with open(os.path.join(path, sub, 'd', name), 'w') as f:
                        f.write('x')
        return self._build(f'bigdir-{n}', build)

    def stack(self, nlayers):
        """The rootfs spread over nlayers lowers: non-directories (and empty
        directories) round-robin, each layer holding the directories its
        entries need, so a merged directory spans many layers."""
        if nlayers == 1:
            return [self.rootfs()]
        root = self.rootfs()
        def build(path):
            entries = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                rel = os.path.relpath(dirpath, root)
                for fn in sorted(filenames):
                    entries.append(os.path.normpath(os.path.join(rel, fn)))
                for dn in dirnames:
                    full = os.path.join(dirpath, dn)
                    if not os.path.islink(full) and not os.listdir(full):
                        entries.append(os.path.normpath(os.path.join(rel, dn)))
                    elif os.path.islink(full):
                        entries.append(os.path.normpath(os.path.join(rel, dn)))
            per = [set() for _ in range(nlayers)]
            for k, e in enumerate(entries):
                s = per[k % nlayers]
                s.add(e)
                d = os.path.dirname(e)
                while d and d != '.':
                    s.add(d)
                    d = os.path.dirname(d)
            os.makedirs(path)
            for l in range(nlayers):
                ld = os.path.join(path, str(l))
                os.makedirs(ld)
                # the layer root takes the rootfs root's owner and mode
                st = os.stat(root)
                os.chown(ld, st.st_uid, st.st_gid)
                os.chmod(ld, st.st_mode & 0o7777)
                lst = os.path.join(path, f'{l}.list')
                with open(lst, 'wb') as f:
                    for e in sorted(per[l]):
                        f.write(b'./' + os.fsencode(e) + b'\0')
                run(f'tar -C {sh_q(root)} --no-recursion --null -T {sh_q(lst)} -cf - | '
                    f'tar -C {sh_q(ld)} --numeric-owner -xpf -', self.b.timeout)
                os.unlink(lst)
        d = self._build(f'stack-{nlayers}', build)
        return [os.path.join(d, str(l)) for l in range(nlayers)]

    def many(self):
        n = self.b.many_n
        def build(path):
            for k in range(n):
                d = os.path.join(path, f'dir-{k // 1000:04d}')
                if k % 1000 == 0:
                    os.makedirs(d)
                with open(os.path.join(d, f'f{k:06d}'), 'w') as f:
                    f.write('x')
        return self._build(f'many-{n}', build)


class XfsImage:
    """A reflink XFS filesystem on a sparse loop image, mounted for the run."""

    def __init__(self, b):
        self.b = b
        self.img = os.path.join(b.work, 'xfs.img')
        self.mnt = os.path.join(b.work, 'xfs')
        self.mounted = False

    def setup(self):
        if not shutil.which('mkfs.xfs'):
            raise BenchError('mkfs.xfs missing (apt-get install xfsprogs)')
        if not os.path.exists('/dev/loop-control'):
            raise BenchError('no loop devices here (/dev/loop-control missing)')
        os.makedirs(self.mnt, exist_ok=True)
        if os.path.ismount(self.mnt):
            run(['umount', self.mnt], 60)
        size = max(4 * self.b.big + 512 * MiB, 1024 * MiB)
        with open(self.img, 'wb') as f:
            f.truncate(size)
        run(['mkfs.xfs', '-q', '-f', '-m', 'reflink=1', self.img], self.b.timeout)
        try:
            run(['mount', '-o', 'loop', self.img, self.mnt], 120)
        except BenchError as e:
            raise BenchError(f'cannot mount the XFS loop image (loop devices unavailable?): {e}')
        self.mounted = True
        os.makedirs(os.path.join(self.mnt, 'lower'))
        os.makedirs(os.path.join(self.mnt, 'run'))
        run(['cp', os.path.join(self.b.data.bigfile(), 'big.bin'), os.path.join(self.mnt, 'lower')],
            self.b.timeout)
        os.sync()

    def teardown(self):
        if self.mounted and os.path.ismount(self.mnt):
            run(['umount', self.mnt], 120, check=False)
        self.mounted = False
        if os.path.exists(self.img):
            os.unlink(self.img)


# ---------------------------------------------------------------- workloads
#
# A workload is prepare(b) -> ctx, run once, then body(b, target, scratch,
# ctx) -> {metric: value} once per target and repetition.  The body mounts
# what it needs with b.mount(...); each mount is fresh.

def fio_cmd(b, filename, rw, size, io_size, readonly=False):
    return (f'fio --name={rw} --filename={sh_q(filename)} --rw={rw} --bs=4k --size={size} '
            f'--io_size={io_size} --ioengine=psync --randrepeat=1 --norandommap --fallocate=none '
            f'--output-format=terse' + (' --readonly' if readonly else ' --end_fsync=1'))


def py_randio(filename, size, io_size, write):
    """Fallback without fio: a python pread/pwrite loop."""
    return (f'python3 -c "import os,random\n'
            f'r=random.Random(1);fd=os.open({filename!r},{"os.O_RDWR" if write else "os.O_RDONLY"})\n'
            f'b=b\'y\'*4096\n'
            f'for _ in range({io_size // 4096}):\n'
            f' o=r.randrange({size // 4096})*4096\n'
            f' {"os.pwrite(fd,b,o)" if write else "os.pread(fd,4096,o)"}\n'
            f'{"os.fsync(fd)" if write else ""}"')


def randio(b, filename, write):
    size = b.big
    if b.have_fio:
        return fio_cmd(b, filename, 'randwrite' if write else 'randread', size, b.rand_io, not write)
    return py_randio(filename, size, b.rand_io, write)


def wl_stat(b, target, scratch, ctx):
    with b.mount(target, [ctx], scratch) as m:
        drop_caches()
        cold = timed(['du', '-s', m.root], b.timeout)
        warm = timed(['du', '-s', m.root], b.timeout)
    return {'stat_cold': cold, 'stat_warm': warm}


def wl_readall(b, target, scratch, ctx):
    with b.mount(target, [ctx], scratch) as m:
        drop_caches()
        t = timed('tar -cf - . | cat > /dev/null', b.timeout, cwd=m.root)
    return {'readall_cold': t}


def wl_seqread(b, target, scratch, ctx):
    with b.mount(target, [ctx], scratch) as m:
        f = os.path.join(m.root, 'big.bin')
        drop_caches()
        cold = timed(['dd', f'if={f}', 'of=/dev/null', 'bs=1M', 'status=none'], b.timeout)
        warm = timed(['dd', f'if={f}', 'of=/dev/null', 'bs=1M', 'status=none'], b.timeout)
        drop_caches()
        rnd = timed(randio(b, f, False), b.timeout)
    return {'seqread_cold': cold, 'seqread_warm': warm, 'randread_cold': rnd}


def plain_copy_of(src_dir, names):
    def make(scratch):
        root = os.path.join(scratch, 'plain')
        os.makedirs(root)
        for n in names:
            run(['cp', '-a', '--reflink=auto', os.path.join(src_dir, n), os.path.join(root, n)], 1800)
        return root
    return make


def plain_empty(scratch):
    root = os.path.join(scratch, 'plain')
    os.makedirs(root)
    return root


def wl_write(b, target, scratch, ctx):
    mb = b.big // MiB
    with b.mount(target, [ctx], scratch, plain=plain_copy_of(ctx, ['big.bin'])) as m:
        new = os.path.join(m.root, 'new.bin')
        w = timed(['dd', 'if=/dev/zero', f'of={new}', 'bs=1M', f'count={mb}', 'conv=fsync',
                   'status=none'], b.timeout)
        os.unlink(new)
        f = os.path.join(m.root, 'big.bin')
        # copy it up (untimed): an open for writing
        run(['dd', 'if=/dev/null', f'of={f}', 'conv=notrunc', 'status=none'], b.timeout)
        os.sync()
        rw = timed(randio(b, f, True), b.timeout)
    return {'write_big_fsync': w, 'randwrite_copied_up': rw}


APPEND_CMD = 'printf x | dd of={f} oflag=append conv=notrunc,fsync status=none'


def wl_copyup(b, target, scratch, ctx):
    with b.mount(target, [ctx], scratch, plain=plain_copy_of(ctx, ['big.bin'])) as m:
        f = os.path.join(m.root, 'big.bin')
        drop_caches()
        t = timed(APPEND_CMD.format(f=sh_q(f)), b.timeout)
        if os.path.getsize(f) != b.big + 1:
            raise BenchError(f'{target}: append left {os.path.getsize(f)} bytes')
    return {'copyup_ext4': t}


def prep_xfs(b):
    b.xfs = XfsImage(b)
    b.xfs.setup()
    return os.path.join(b.xfs.mnt, 'lower')


def wl_copyup_xfs(b, target, scratch, ctx):
    scratch = os.path.join(b.xfs.mnt, 'run', os.path.basename(scratch))
    with b.mount(target, [ctx], scratch, plain=plain_copy_of(ctx, ['big.bin'])) as m:
        f = os.path.join(m.root, 'big.bin')
        drop_caches()
        t = timed(APPEND_CMD.format(f=sh_q(f)), b.timeout)
        if os.path.getsize(f) != b.big + 1:
            raise BenchError(f'{target}: append left {os.path.getsize(f)} bytes')
    return {'copyup_xfs_reflink': t}


def done_xfs(b):
    if getattr(b, 'xfs', None):
        b.xfs.teardown()
        b.xfs = None


def untar_cmd(tarball, dest):
    return f'tar --numeric-owner -xpf {sh_q(tarball)} -C {sh_q(dest)}'


def wl_untar(b, target, scratch, ctx):
    lower, tarball = ctx
    with b.mount(target, [lower], scratch, plain=plain_empty) as m:
        dest = os.path.join(m.root, 'new')
        os.mkdir(dest)
        t = timed(untar_cmd(tarball, dest), b.timeout)
    return {'untar': t}


def wl_parallel_untar(b, target, scratch, ctx):
    lower, tarball = ctx
    with b.mount(target, [lower], scratch, plain=plain_empty) as m:
        a, c = os.path.join(m.root, 'a'), os.path.join(m.root, 'b')
        os.mkdir(a)
        os.mkdir(c)
        t = timed(f'{untar_cmd(tarball, a)} & p1=$!; {untar_cmd(tarball, c)} & p2=$!; '
                  f'wait $p1; wait $p2', b.timeout)
    return {'untar_parallel_x2': t}


def wl_rm_tree(b, target, scratch, ctx):
    def plain(s):
        root = os.path.join(s, 'plain')
        os.makedirs(os.path.join(root, 'usr'))
        run(['cp', '-a', os.path.join(ctx, 'usr', 'share'), os.path.join(root, 'usr', 'share')], b.timeout)
        return root
    with b.mount(target, [ctx], scratch, plain=plain) as m:
        t = timed(['rm', '-rf', os.path.join(m.root, 'usr', 'share')], b.timeout)
        if os.path.exists(os.path.join(m.root, 'usr', 'share')):
            raise BenchError(f'{target}: usr/share still there after rm -rf')
    return {'rm_rf_usr_share': t}


def prep_bigdir(b):
    d = b.data.bigdir()
    run(f'ls -l {sh_q(d)}/top/d {sh_q(d)}/bottom/d {sh_q(d)}/flat/d > /dev/null', b.timeout)
    return d


def wl_bigdir(b, target, scratch, d):
    lowers = [os.path.join(d, 'top'), os.path.join(d, 'bottom')]
    with b.mount(target, lowers, scratch, plain=os.path.join(d, 'flat')) as m:
        dd = os.path.join(m.root, 'd')
        tf = timed(f'ls -f {sh_q(dd)} > /dev/null', b.timeout)
        tl = timed(f'ls -l {sh_q(dd)} > /dev/null', b.timeout)
        n = int(run(f'ls -f {sh_q(dd)} | wc -l', b.timeout, capture=True))
        if n != b.bigdir_n + 2:
            raise BenchError(f'{target}: big directory lists {n - 2} entries, not {b.bigdir_n}')
    return {'bigdir_ls_f': tf, 'bigdir_ls_l': tl, 'bigdir_total': tf + tl}


def prep_walk(nlayers):
    def prep(b):
        lowers = b.data.stack(nlayers)
        # warm the lowers: the walk measures the stack, not the disk
        run(['du', '-s'] + lowers, b.timeout)
        return lowers
    return prep


def wl_walk(b, target, scratch, lowers):
    n = len(lowers)
    with b.mount(target, lowers, scratch, plain=b.data.rootfs()) as m:
        t = timed(['du', '-s', m.root], b.timeout)
    return {f'walk_{n}_layers': t}


def prep_mount(b):
    return {n: b.data.stack(n) for n in b.mount_layers}


def wl_mount(b, target, scratch, stacks):
    if target == 'plain':
        return {}
    out = {}
    for n, lowers in stacks.items():
        with b.mount(target, lowers, os.path.join(scratch, f'm{n}')) as m:
            out[f'mount_{n}_layers'] = m.mount_s
    return out


def prep_many(b):
    d = b.data.many()
    run(['du', '-s', d], b.timeout)
    return d


def wl_many(b, target, scratch, d):
    with b.mount(target, [d], scratch) as m:
        base = m.rss()
        t = timed(['du', '-s', m.root], b.timeout)
        hwm = m.hwm()
        rss = m.rss()
    out = {f'walk_{b.many_n // 1000}k_entries': t}
    if base is not None and hwm is not None:
        out['daemon_hwm_after_walk_MB'] = hwm / 1024
        out['daemon_rss_after_walk_MB'] = rss / 1024
        out['bytes_per_cached_entry'] = (hwm - base) * 1024 / b.many_n
    return out


def prep_rootfs(b):
    return b.data.rootfs()


def prep_big(b):
    return b.data.bigfile()


def prep_untar(b):
    return (b.data.rootfs(), b.data.rootfs_tar())


def workloads(b):
    small, large = b.walk_layers
    return [
        # name, prepare, body, finish
        ('stat', prep_rootfs, wl_stat, None),
        ('readall', prep_rootfs, wl_readall, None),
        ('seqread', prep_big, wl_seqread, None),
        ('write', prep_big, wl_write, None),
        ('copyup', prep_big, wl_copyup, None),
        ('copyup_xfs', prep_xfs, wl_copyup_xfs, done_xfs),
        ('untar', prep_untar, wl_untar, None),
        ('rm_tree', prep_rootfs, wl_rm_tree, None),
        ('bigdir', prep_bigdir, wl_bigdir, None),
        (f'walk{small}', prep_walk(small), wl_walk, None),
        (f'walk{large}', prep_walk(large), wl_walk, None),
        ('parallel_untar', prep_untar, wl_parallel_untar, None),
        ('mount', prep_mount, wl_mount, None),
        ('rss100k', prep_many, wl_many, None),
    ]


UNITS = {'daemon_hwm_after_walk_MB': 'MB', 'daemon_rss_after_walk_MB': 'MB',
         'bytes_per_cached_entry': 'B'}


def targets_for(b):
    """metric -> list of (label, check(medians, rss) -> bool|None) from the issue."""
    small, large = b.walk_layers
    def vs_kernel(metric, k):
        return (f'≤{k}×kernel', lambda r: ratio(r[metric], 'layerfs', 'kernel'), k)
    def vs_fovl(metric, k):
        return (f'≤{k}×fovl', lambda r: ratio(r[metric], 'layerfs', 'fuse-overlayfs'), k)
    spec = {}
    def add(metric, *checks):
        spec.setdefault(metric, []).extend(checks)
    for m in ('stat_cold', 'untar', 'rm_rf_usr_share', 'bigdir_total'):
        add(m, vs_fovl(m, 0.5))
    add('stat_cold', vs_kernel('stat_cold', 1.5))
    add('stat_warm', vs_kernel('stat_warm', 1.1))
    add('seqread_warm', vs_kernel('seqread_warm', 1.1))
    add('readall_cold', vs_kernel('readall_cold', 1.2))
    add('write_big_fsync', vs_kernel('write_big_fsync', 1.3))
    add('untar', vs_kernel('untar', 1.5))
    add('rm_rf_usr_share', vs_kernel('rm_rf_usr_share', 2.0))
    add('bigdir_total', vs_kernel('bigdir_total', 2.0))
    add(f'walk_{small}_layers', vs_kernel(f'walk_{small}_layers', 1.2))
    add(f'walk_{large}_layers',
        (f'≤1.5×walk_{small}', lambda r: _div(med(r, f'walk_{large}_layers', 'layerfs'),
                                              med(r, f'walk_{small}_layers', 'layerfs')), 1.5))
    add('copyup_ext4', vs_kernel('copyup_ext4', 1.0))
    add('copyup_xfs_reflink', ('<50ms', lambda r: med(r, 'copyup_xfs_reflink', 'layerfs'), 0.05))
    add('stat_warm', ('RSS≤5MB', lambda r: _rss_mb(r, 'stat_warm'), 5.0))
    add('bytes_per_cached_entry', ('≤200B', lambda r: med(r, 'bytes_per_cached_entry', 'layerfs'), 200))
    return spec


def _div(a, c):
    return a / c if a is not None and c else None


def _rss_mb(r, metric):
    v = r.get(metric, {}).get('layerfs', {}).get('rss_kb')
    return v / 1024 if v is not None else None


def med(results, metric, target):
    return results.get(metric, {}).get(target, {}).get('median')


def ratio(per_target, a, c):
    x = per_target.get(a, {}).get('median')
    y = per_target.get(c, {}).get('median')
    return _div(x, y)


# ---------------------------------------------------------------- the run

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.reps = args.reps
        self.timeout = args.timeout
        self.work = os.path.abspath(args.workdir)
        self.layerfs = os.path.abspath(args.layerfs)
        self.layerfs_opts = args.layerfs_opts
        self.fuse_overlayfs = shutil.which('fuse-overlayfs') or '/usr/bin/fuse-overlayfs'
        self.have_fio = shutil.which('fio') is not None
        if self.quick:
            self.big = 64 * MiB
            self.rand_io = 8 * MiB
            self.walk_layers = (10, 100)
            self.mount_layers = (1, 10, 100)
            self.many_n = 20000
            self.bigdir_n = 20000
        else:
            self.big = 1024 * MiB
            self.rand_io = 64 * MiB
            self.walk_layers = (40, 500)
            self.mount_layers = (1, 40, 500)
            self.many_n = 100000
            self.bigdir_n = 20000
        self.active = []
        self.xfs = None
        self.results = {}   # metric -> target -> {samples, rss_samples}
        self.errors = []
        self.skipped = {}
        self.data = None
        self.seq = 0

    def mount(self, target, lowers, scratch, plain=None):
        if plain is None:
            plain = lowers[0] if len(lowers) == 1 else None
        return Mounted(self, target, lowers, scratch, plain)

    def record(self, metric, target, value, rss_kb):
        e = self.results.setdefault(metric, {}).setdefault(target, {'samples': [], 'rss_kb_samples': []})
        e['samples'].append(value)
        if rss_kb is not None:
            e['rss_kb_samples'].append(rss_kb)

    def run_all(self):
        self.data = Data(self)
        os.makedirs(os.path.join(self.work, 'run'), exist_ok=True)
        wls = workloads(self)
        names = [w[0] for w in wls]
        only = None
        if self.args.only:
            only = [w.strip() for w in self.args.only.split(',') if w.strip()]
            unknown = [w for w in only if w not in names]
            if unknown:
                raise SystemExit(f'bench.py: unknown workload(s) {", ".join(unknown)}; '
                                 f'have {", ".join(names)}')
        for name, prep, body, finish in wls:
            if only and name not in only:
                continue
            log(f'[{name}] preparing')
            try:
                ctx = prep(self)
            except BenchError as e:
                log(f'[{name}] skipped: {e}')
                self.skipped[name] = str(e)
                if finish:
                    finish(self)
                continue
            try:
                for rep in range(self.reps):
                    order = TARGETS[rep % len(TARGETS):] + TARGETS[:rep % len(TARGETS)]
                    for target in order:
                        self.seq += 1
                        scratch = os.path.join(self.work, 'run', f'{self.seq:05d}-{name}-{target}')
                        self._one(name, body, target, scratch, ctx, rep)
            finally:
                if finish:
                    finish(self)

    def _one(self, name, body, target, scratch, ctx, rep):
        tracked = []
        orig = self.mount

        def mount(*a, **kw):
            m = orig(*a, **kw)
            tracked.append(m)
            return m
        self.mount = mount
        try:
            out = body(self, target, scratch, ctx)
        except BenchError as e:
            msg = f'{name}/{target} rep {rep + 1}: {e}'
            log(f'  ERROR {msg}')
            self.errors.append(msg)
            return
        finally:
            self.mount = orig
            if os.path.isdir(scratch) and not self.active:
                run(['rm', '-rf', '--one-file-system', scratch], self.timeout, check=False)
        hwms = [m.hwm_kb for m in tracked if m.hwm_kb is not None]
        rss = max(hwms) if hwms else None
        for metric, v in out.items():
            if v is None:
                continue
            metric = metric.lstrip('_')
            self.record(metric, target, v, rss)
        shown = ' '.join(f'{k.lstrip("_")}={fmt_val(v, UNITS.get(k, "s"))}' for k, v in out.items())
        rss_s = f' hwm={rss / 1024:.1f}MB' if rss is not None else ''
        log(f'  [{name}] rep {rep + 1}/{self.reps} {target:<14} {shown}{rss_s}')

    def cleanup(self):
        for m in list(reversed(self.active)):
            try:
                m._cleanup()
            except Exception as e:  # keep going: every mount gets its try
                log(f'cleanup: {e}')
        if self.xfs:
            try:
                self.xfs.teardown()
            except Exception as e:
                log(f'cleanup: {e}')

    def summary(self):
        for metric, per in self.results.items():
            for t, e in per.items():
                e['median'] = statistics.median(e['samples']) if e['samples'] else None
                e['rss_kb'] = statistics.median(e['rss_kb_samples']) if e['rss_kb_samples'] else None
        spec = targets_for(self)
        rows = []
        for metric, per in self.results.items():
            unit = UNITS.get(metric, 's')
            row = {'metric': metric, 'unit': unit}
            for t in TARGETS:
                row[t] = per.get(t, {}).get('median')
            row['layerfs/kernel'] = ratio(per, 'layerfs', 'kernel')
            row['layerfs/fuse-overlayfs'] = ratio(per, 'layerfs', 'fuse-overlayfs')
            for t in DAEMONS:
                v = per.get(t, {}).get('rss_kb')
                row[f'rss_MB_{t}'] = v / 1024 if v is not None else None
            checks = []
            if unit == 's' and row['layerfs/fuse-overlayfs'] is not None:
                checks.append(('≤fovl', row['layerfs/fuse-overlayfs'], 1.0))
            for label, fn, limit in spec.get(metric, []):
                checks.append((label, fn(self.results), limit))
            verdict = []
            for label, v, limit in checks:
                if v is None:
                    verdict.append(f'{label}:n/a')
                elif v > limit:
                    verdict.append(f'MISS {label}')
            row['targets'] = [c[0] for c in checks]
            row['verdict'] = 'ok' if checks and not verdict else ('; '.join(verdict) if verdict else '')
            rows.append(row)
        return rows


def fmt_val(v, unit='s'):
    if v is None:
        return '—'
    if unit == 's':
        return f'{v:.3f}' if v < 100 else f'{v:.1f}'
    return f'{v:.1f}' if v < 1000 else f'{v:.0f}'


def fmt_ratio(v):
    return '—' if v is None else f'{v:.2f}'


def print_table(rows, out=sys.stdout):
    head = ['workload', 'unit', 'plain', 'kernel', 'fuse-ovl', 'layerfs', 'lfs/kern', 'lfs/fovl',
            'RSS fovl MB', 'RSS lfs MB', 'issue targets']
    lines = [head]
    for r in rows:
        lines.append([r['metric'], r['unit'], fmt_val(r['plain'], r['unit']), fmt_val(r['kernel'], r['unit']),
                      fmt_val(r['fuse-overlayfs'], r['unit']), fmt_val(r['layerfs'], r['unit']),
                      fmt_ratio(r['layerfs/kernel']), fmt_ratio(r['layerfs/fuse-overlayfs']),
                      fmt_val(r['rss_MB_fuse-overlayfs'], 'MB'), fmt_val(r['rss_MB_layerfs'], 'MB'),
                      r['verdict']])
    widths = [max(len(l[k]) for l in lines) for k in range(len(head))]
    for n, l in enumerate(lines):
        print('| ' + ' | '.join(c.ljust(widths[k]) for k, c in enumerate(l)) + ' |', file=out)
        if n == 0:
            print('|' + '|'.join('-' * (w + 2) for w in widths) + '|', file=out)


def fovl_version(path):
    try:
        p = subprocess.run([path, '--version'], capture_output=True, text=True, timeout=20)
    except Exception:
        return None
    lines = [l for l in (p.stdout + p.stderr).splitlines() if 'fuse-overlayfs' in l]
    return lines[0].strip() if lines else None


def machine_info(b):
    def cmd_out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:
            return None
    cpu = None
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open('/proc/meminfo') as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError):
        mem = None
    return {
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'host': platform.node(), 'kernel': platform.release(), 'cpu': cpu, 'cpus': os.cpu_count(),
        'mem_MB': mem,
        'fs_of_workdir': (cmd_out(['df', '--output=fstype', b.work]) or '?').splitlines()[-1].strip(),
        'layerfs': cmd_out([b.layerfs, '--version']),
        'layerfs_git': cmd_out(['git', '-C', REPO, 'describe', '--always', '--dirty']),
        'layerfs_opts': b.layerfs_opts or '(defaults)',
        'fuse_overlayfs': fovl_version(b.fuse_overlayfs),
        'fio': cmd_out(['fio', '--version']) if b.have_fio else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reps', type=int, default=3, help='repetitions per target (median shown; default 3)')
    ap.add_argument('--quick', action='store_true',
                    help='small sizes: 64 MiB file, 10/100 layers, 20k entries')
    ap.add_argument('--only', help='comma-separated workloads to run (default: all)')
    ap.add_argument('--list', action='store_true', help='list the workloads and exit')
    ap.add_argument('--json', help='also write the results to this file')
    ap.add_argument('--workdir', default='/tmp/layerfs-bench',
                    help='where lowers (cached between runs) and mounts go (default /tmp/layerfs-bench)')
    ap.add_argument('--layerfs', default=os.path.join(REPO, 'build', 'tools', 'layerfs'))
    ap.add_argument('--layerfs-opts', default='',
                    help='extra -o options for layerfs, e.g. writeback (default: none)')
    ap.add_argument('--nofile', type=int, default=524288,
                    help='RLIMIT_NOFILE (soft and hard) for the run and the daemons it starts; '
                         'default 524288, systemd\'s default hard limit; 0 keeps the inherited one')
    ap.add_argument('--timeout', type=float, default=900, help='seconds allowed per step (default 900)')
    args = ap.parse_args()

    b = Bench(args)
    if args.list:
        for w in workloads(b):
            print(w[0])
        return 0
    if os.geteuid() != 0:
        raise SystemExit('bench.py: run as root (mounts, drop_caches)')
    for tool in ('fuse-overlayfs', 'zstd', 'du', 'tar', 'dd'):
        if not shutil.which(tool):
            raise SystemExit(f'bench.py: {tool} is missing')
    if not os.access(b.layerfs, os.X_OK):
        raise SystemExit(f'bench.py: no layerfs binary at {b.layerfs} (ninja -C build)')
    if not b.have_fio:
        log('bench.py: fio missing (apt-get install fio): random I/O uses a python loop')

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f'signal {signum}')
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    if args.nofile:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
        except (ValueError, OSError) as e:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log(f'bench.py: cannot raise RLIMIT_NOFILE to {args.nofile} ({e}): '
                f'running with the hard limit {hard}')
    os.makedirs(b.work, exist_ok=True)
    # test a private copy: a rebuild during the run must not change the binary
    os.makedirs(os.path.join(b.work, 'bin'), exist_ok=True)
    private = os.path.join(b.work, 'bin', 'layerfs')
    shutil.copy2(b.layerfs, private + '.new')
    os.replace(private + '.new', private)
    built = datetime.datetime.fromtimestamp(os.stat(b.layerfs).st_mtime).isoformat(timespec='seconds')
    b.layerfs = private
    info = machine_info(b)
    info['layerfs_binary_built'] = built
    info['rlimit_nofile'] = resource.getrlimit(resource.RLIMIT_NOFILE)
    t0 = time.time()
    interrupted = False
    try:
        b.run_all()
    except KeyboardInterrupt:
        interrupted = True
        log('bench.py: interrupted; unmounting and printing what was measured')
    finally:
        b.cleanup()
    rows = b.summary()
    mode = 'quick' if b.quick else 'full'
    print(f'# layerfs benchmark ({mode}, {b.reps} reps, medians; {info["date"]}, {info["kernel"]}, '
          f'{info["cpus"]} CPUs, {info["cpu"]})')
    print(f'# sizes: big file {b.big // MiB} MiB, random I/O {b.rand_io // MiB} MiB of 4 KiB, '
          f'walk {b.walk_layers[0]}/{b.walk_layers[1]} layers, big dir {b.bigdir_n}, '
          f'RSS walk {b.many_n} entries; RSS = daemon VmHWM (median)')
    print_table(rows)
    for name, why in b.skipped.items():
        print(f'skipped {name}: {why}')
    for e in b.errors:
        print(f'error: {e}')
    print(f'# total {time.time() - t0:.0f}s' + (' (interrupted)' if interrupted else ''))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'machine': info, 'mode': mode, 'reps': b.reps,
                       'sizes': {'big_file': b.big, 'rand_io': b.rand_io, 'walk_layers': b.walk_layers,
                                 'mount_layers': b.mount_layers, 'bigdir_entries': b.bigdir_n,
                                 'rss_walk_entries': b.many_n},
                       'rows': rows, 'samples': b.results, 'skipped': b.skipped, 'errors': b.errors,
                       'interrupted': interrupted}, f, indent=1)
    return 1 if interrupted else 0


if __name__ == '__main__':
    sys.exit(main())
