#!/usr/bin/env python3
"""startup_bench.py - start-up time of `layerfs run` (issue 6).

Times `layerfs run LOWER -- /bin/true` (each backend) against
`bwrap --bind MERGED / /bin/true` over an already-mounted stack (and a bwrap
with the same namespaces and mounts as layerfs run, and one on a layerfs
mount made just before, whose caches are empty), `podman run --rm` when
podman is installed (private --root/--runroot in a temp dir, runc; nothing
under /etc/containers is read or touched), and the time of a 1-layer
`layerfs mount`.  Repetitions alternate the rows; the table shows medians.
Targets: layerfs run within 2x bwrap plus the mount time; the 1-layer mount
under 20 ms.  Run as root, after `ninja -C build`:

    python3 tests/bench/startup_bench.py [--reps N] [--json FILE] [--as-user USER]
"""
import argparse
import datetime
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
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
FIXTURE = os.path.abspath(os.path.join(REPO, '..', 'shared', 'fixtures',
                                       'debian-bookworm-minbase.tar.zst'))
FIXTURE_CACHE = '/tmp/layerfs-fixture-rootfs'
TIMEOUT = 60


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(argv, env=None, check=True):
    p = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env, timeout=TIMEOUT)
    if check and p.returncode != 0:
        raise BenchError('%s: exit status %d: %s' % (' '.join(map(str, argv)), p.returncode,
                                                     p.stderr.decode(errors='replace').strip()[:500]))
    return p.returncode


def timed(argv, env=None):
    t0 = time.perf_counter()
    run(argv, env=env)
    return (time.perf_counter() - t0) * 1e3


def fixture_lower(workdir):
    """The unpacked fixture: the tests' cache when complete, else unpacked here."""
    if os.path.isdir(FIXTURE_CACHE):
        for key in sorted(os.listdir(FIXTURE_CACHE)):
            d = os.path.join(FIXTURE_CACHE, key)
            if os.path.exists(os.path.join(d, 'full.done')):
                return os.path.join(d, 'full')
    dest = os.path.join(workdir, 'rootfs')
    if not os.path.exists(dest + '.done'):
        if not os.path.exists(FIXTURE):
            raise BenchError('fixture %s not found' % FIXTURE)
        log('unpacking %s' % FIXTURE)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        run(['tar', '--numeric-owner', '-xpf', FIXTURE, '-C', dest])
        open(dest + '.done', 'w').close()
    return dest


def mounts_under(path):
    out = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            m = line.split()[4].replace('\\040', ' ').replace('\\134', '\\')
            if m == path or m.startswith(path + '/'):
                out.append(m)
    return out


def umount_all_under(path):
    for m in reversed(mounts_under(path)):
        subprocess.run(['umount', '-l', m], stderr=subprocess.DEVNULL, timeout=TIMEOUT)


class Podman:
    """podman on a private store under tmp, the fixture imported once."""

    def __init__(self, tmp, lower):
        self.dir = os.path.join(tmp, 'podman')
        os.makedirs(self.dir)
        conf = os.path.join(self.dir, 'containers.conf')
        with open(conf, 'w') as f:
            # runc: crun refuses the cgroup layout of some machines; ulimits
            # that root may set without CAP_SYS_RESOURCE
            f.write('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                    'netns = "none"\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
                    'events_logger = "file"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf,
                        CONTAINERS_STORAGE_CONF=os.path.join(self.dir, 'storage.conf'))
        with open(self.env['CONTAINERS_STORAGE_CONF'], 'w') as f:
            f.write('[storage]\ndriver = "overlay"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n'
                    % (self.dir, self.dir))
        self.base = ['podman', '--root', self.dir + '/root', '--runroot', self.dir + '/run',
                     '--storage-driver', 'overlay']
        t0 = time.perf_counter()
        tar = subprocess.Popen(['tar', '-C', lower, '-c', '.'], stdout=subprocess.PIPE)
        imp = subprocess.run(self.base + ['import', '-', 'localhost/layerfs-bench:latest'],
                             stdin=tar.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=self.env, timeout=300)
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0:
            raise BenchError('podman import: %s' % imp.stderr.decode(errors='replace')[:500])
        log('podman: image imported in %.1f s' % (time.perf_counter() - t0))

    def argv(self):
        return self.base + ['run', '--rm', '--network', 'none', 'localhost/layerfs-bench', '/bin/true']

    def close(self):
        subprocess.run(self.base + ['rm', '-a', '-f'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=self.env, timeout=TIMEOUT)
        umount_all_under(self.dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--reps', type=int, default=20, help='repetitions per row (default 20)')
    ap.add_argument('--json', help='also write rows, samples and the machine here')
    ap.add_argument('--layerfs', default=os.path.join(REPO, 'build', 'tools', 'layerfs'))
    ap.add_argument('--workdir', default='/tmp/layerfs-bench', help='where the fixture is unpacked if '
                    'the tests have not cached it (default /tmp/layerfs-bench)')
    ap.add_argument('--as-user', help='also time `layerfs run` as this (unprivileged) user, through setpriv')
    ap.add_argument('--no-podman', action='store_true', help='skip podman even when installed')
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit('startup_bench.py: run as root')
    lf = os.path.abspath(args.layerfs)
    if not os.access(lf, os.X_OK):
        sys.exit('startup_bench.py: %s not built' % lf)
    bwrap = shutil.which('bwrap')
    if not bwrap:
        sys.exit('startup_bench.py: bwrap missing (apt-get install bubblewrap)')
    os.makedirs(args.workdir, exist_ok=True)
    lower = fixture_lower(args.workdir)
    tmp = tempfile.mkdtemp(prefix='layerfs-startup.')
    os.chmod(tmp, 0o755)
    podman = None
    samples = {}
    try:
        # the stacks bwrap runs over, mounted once
        for d in ('up', 'm', 'kup', 'kwork', 'km', 'rt'):
            os.makedirs(os.path.join(tmp, d))
        os.chmod(os.path.join(tmp, 'rt'), 0o1777)
        run([lf, 'mount', lower, tmp + '/up', tmp + '/m'])
        run(['mount', '-t', 'overlay', 'overlay', '-o',
             'lowerdir=%s,upperdir=%s/kup,workdir=%s/kwork' % (lower, tmp, tmp), tmp + '/km'])
        env = dict(os.environ, TMPDIR=tmp + '/rt')
        rows = {
            'layerfs run --backend fuse': lambda: timed([lf, 'run', '--backend', 'fuse', lower, '--', '/bin/true'], env),
            'layerfs run --backend kernel': lambda: timed([lf, 'run', '--backend', 'kernel', lower, '--', '/bin/true'], env),
            'bwrap --bind MERGED / (layerfs mounted)': lambda: timed([bwrap, '--bind', tmp + '/m', '/', '/bin/true']),
            'bwrap --bind MERGED / (kernel overlay)': lambda: timed([bwrap, '--bind', tmp + '/km', '/', '/bin/true']),
            'bwrap, the namespaces and mounts of layerfs run': lambda: timed(
                [bwrap, '--unshare-all', '--die-with-parent', '--bind', tmp + '/m', '/', '--proc', '/proc',
                 '--dev', '/dev', '--tmpfs', '/tmp', '--ro-bind', '/sys', '/sys', '--cap-drop', 'ALL',
                 '/bin/true']),
        }
        if args.as_user:
            su = ['setpriv', '--reuid', args.as_user, '--regid', args.as_user, '--init-groups', '--']
            rows['layerfs run --backend fuse, rootless'] = lambda: timed(
                su + [lf, 'run', '--backend', 'fuse', lower, '--', '/bin/true'], env)
            rows['layerfs run --backend kernel, rootless'] = lambda: timed(
                su + [lf, 'run', '--backend', 'kernel', lower, '--', '/bin/true'], env)
        n = [0]

        def mount_once():
            n[0] += 1
            d = '%s/mnt%d' % (tmp, n[0])
            for s in ('up', 'm'):
                os.makedirs('%s/%s' % (d, s))
            ms = timed([lf, 'mount', lower, d + '/up', d + '/m'])
            run(['umount', d + '/m'])
            return ms

        rows['layerfs mount, 1 layer'] = mount_once

        def cold_bwrap():
            """bwrap on a layerfs mount made just before (not timed): what a
            fresh FUSE mount's empty caches cost"""
            n[0] += 1
            d = '%s/mnt%d' % (tmp, n[0])
            for s in ('up', 'm'):
                os.makedirs('%s/%s' % (d, s))
            run([lf, 'mount', lower, d + '/up', d + '/m'])
            ms = timed([bwrap, '--bind', d + '/m', '/', '/bin/true'])
            run(['umount', d + '/m'])
            return ms

        rows['bwrap --bind MERGED / (fresh layerfs mount)'] = cold_bwrap
        if shutil.which('podman') and not args.no_podman:
            podman = Podman(tmp, lower)
            rows['podman run --rm (runc, kernel overlay)'] = lambda: timed(podman.argv(), podman.env)
        else:
            log('no podman row: %s' % ('--no-podman' if args.no_podman else 'podman is not installed'))
        names = list(rows)
        samples = {k: [] for k in names}
        for fn in rows.values():  # warm caches once, not counted
            fn()
        for r in range(args.reps):
            order = names[r % len(names):] + names[:r % len(names)]
            for k in order:
                samples[k].append(rows[k]())
        left = os.listdir(tmp + '/rt')
        if left:
            raise BenchError('layerfs run left temp dirs: %s' % left)
    finally:
        if podman:
            podman.close()
        umount_all_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in samples.items() if v}
    print('%-50s %9s %9s %9s' % ('start-up of /bin/true (ms)', 'median', 'min', 'max'))
    for k, v in samples.items():
        print('%-50s %9.2f %9.2f %9.2f' % (k, med[k], min(v), max(v)))
    mount = med['layerfs mount, 1 layer']
    bw = med['bwrap --bind MERGED / (layerfs mounted)']
    verdicts = []
    for k in ('layerfs run --backend fuse', 'layerfs run --backend kernel'):
        limit = 2 * bw + mount
        verdicts.append('%s: %.2f ms, target 2 x bwrap + mount = %.2f ms: %s'
                        % (k, med[k], limit, 'met' if med[k] <= limit else 'MISSED'))
    verdicts.append('1-layer layerfs mount: %.2f ms, target 20 ms: %s' % (mount, 'met' if mount < 20 else 'MISSED'))
    cold = med['bwrap --bind MERGED / (fresh layerfs mount)']
    verdicts.append('for comparison: 1-layer mount + bwrap on that fresh mount = %.2f ms; layerfs run --backend '
                    'fuse does both in %.2f ms' % (mount + cold, med['layerfs run --backend fuse']))
    print()
    for v in verdicts:
        print(v)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
                       'machine': {'kernel': platform.release(), 'cpus': os.cpu_count(),
                                   'python': platform.python_version()},
                       'reps': args.reps, 'medians_ms': med, 'samples_ms': samples,
                       'verdicts': verdicts}, f, indent=1)


if __name__ == '__main__':
    try:
        main()
    except (BenchError, subprocess.TimeoutExpired) as e:
        sys.exit('startup_bench.py: %s' % e)
