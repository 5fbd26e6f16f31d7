/* rootfs.c - the container's file system tree, made by its init in the
 * nested mount namespace: fresh /proc, a minimal /dev, /sys read-only,
 * /tmp, the --bind and --tmpfs mounts, then pivot_root(".", ".") and the
 * old root detached.
 *
 * Every target inside the image is resolved with openat2(RESOLVE_IN_ROOT)
 * from the root's fd, so a symlink in the image (/tmp -> /etc, /dev ->
 * /host) resolves inside the image and never onto the host; missing
 * targets are made one component at a time the same way.  Mounts are
 * made detached (fsopen/fsmount, open_tree) and attached to the target's
 * fd with move_mount, so no path is looked up twice.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run.h"

static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* An O_PATH fd of PATH inside the root, made (a directory, or an empty
 * file when !dir) with its missing parents when it is not there. */
static int target_in_root(int rootfd, const char *path, bool dir)
{
	int fd = open_in_root(rootfd, path, O_PATH);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	char *copy = strdup(path), *slash = strrchr(copy, '/');
	const char *name = slash ? slash + 1 : copy;
	int pfd;
	if (slash && slash != copy) {
		*slash = '\0';
		pfd = target_in_root(rootfd, copy, true);
	} else {
		pfd = dup(rootfd);
	}
	if (pfd < 0) {
		free(copy);
		return -1;
	}
	/* the parent is a real directory fd now: make the last component
	 * under it (an O_PATH fd does for mkdirat and openat) */
	int rc;
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		rc = 0;
	} else if (dir) {
		rc = mkdirat(pfd, name, 0755);
	} else {
		rc = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (rc >= 0)
			rc = close(rc);
	}
	int e = errno;
	free(copy);
	close(pfd);
	if (rc != 0 && e != EEXIST) {
		errno = e;
		return -1;
	}
	return open_in_root(rootfd, path, O_PATH);
}

/* A detached new mount of TYPE; opts are "key=value" or "flag". */
static int new_fs(const char *type, const char *const *opts, unsigned attrs)
{
	int fs = fsopen(type, FSOPEN_CLOEXEC);
	if (fs < 0)
		return -1;
	for (; opts && *opts; opts++) {
		const char *eq = strchr(*opts, '=');
		int rc;
		if (eq) {
			char key[64];
			snprintf(key, sizeof key, "%.*s", (int)(eq - *opts), *opts);
			rc = fsconfig(fs, FSCONFIG_SET_STRING, key, eq + 1, 0);
		} else {
			rc = fsconfig(fs, FSCONFIG_SET_FLAG, *opts, NULL, 0);
		}
		if (rc != 0)
			goto fail;
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0)
		goto fail;
	int m = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
	int e = errno;
	close(fs);
	errno = e;
	return m;
fail:
	e = errno;
	close(fs);
	errno = e;
	return -1;
}

/* A detached copy of the tree at dirfd/path (recursive when rec),
 * made read-only when ro. */
static int clone_tree(int dirfd, const char *path, bool rec, bool ro)
{
	unsigned fl = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rec ? AT_RECURSIVE : 0) |
		      (path[0] ? 0 : AT_EMPTY_PATH);
	int t = open_tree(dirfd, path, fl);
	if (t < 0)
		return -1;
	if (ro) {
		struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
		if (mount_setattr(t, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0), &a, sizeof a) != 0) {
			int e = errno;
			close(t);
			errno = e;
			return -1;
		}
	}
	return t;
}

/* Attaches the detached mount m on the target fd (closes m). */
static int attach(int m, int target)
{
	int rc = move_mount(m, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	int e = errno;
	close(m);
	errno = e;
	return rc;
}

/* m on PATH inside the root; returns 0 or -1 after a message. */
static int attach_in_root(int rootfd, int m, const char *path, bool dir, const char *what)
{
	if (m < 0) {
		run_err("cannot make the %s for '%s': %s", what, path, strerror(errno));
		return -1;
	}
	int t = target_in_root(rootfd, path, dir);
	if (t < 0) {
		run_err("cannot make '%s' inside the container for the %s: %s", path, what, strerror(errno));
		close(m);
		return -1;
	}
	int rc = attach(m, t);
	int e = errno;
	close(t);
	if (rc) {
		run_err("cannot mount the %s on '%s': %s", what, path, strerror(e));
		return -1;
	}
	return 0;
}

/* Hides what a container's real root could misuse in /proc (no user
 * namespace: its uid 0 is the host's), as podman does. */
static int mask_proc(int rootfd)
{
	/* hidden under /dev/null, or made read-only */
	static const struct { const char *name; bool hide; } paths[] = {
		{ "kcore", true }, { "keys", true }, { "timer_list", true }, { "sched_debug", true },
		{ "sys", false }, { "sysrq-trigger", false }, { "irq", false }, { "bus", false }, { "fs", false },
	};
	int proc = open_in_root(rootfd, "/proc", O_PATH | O_DIRECTORY);
	if (proc < 0)
		return -1;
	for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
		int t = openat(proc, paths[k].name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (t < 0)
			continue; /* not in this kernel */
		int m = paths[k].hide ? clone_tree(AT_FDCWD, "/dev/null", false, false) : clone_tree(t, "", true, true);
		if (m < 0 || attach(m, t) != 0) {
			run_err("cannot %s /proc/%s: %s", paths[k].hide ? "hide" : "make read-only", paths[k].name,
				strerror(errno));
			close(t);
			close(proc);
			return -1;
		}
		close(t);
	}
	close(proc);
	return 0;
}

static int setup_dev(int rootfd)
{
	static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty", NULL };
	static const char *const links[][2] = {
		{ "ptmx", "pts/ptmx" }, { "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" }, { "core", "/proc/kcore" },
	};
	static const char *const dev_opts[] = { "mode=0755", "size=65536k", NULL };
	int dev = new_fs("tmpfs", dev_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
	if (dev < 0) {
		run_err("cannot make the tmpfs for /dev: %s", strerror(errno));
		return -1;
	}
	/* the fresh tmpfs is ours: names under it need no care */
	for (const char *const *n = nodes; *n; n++) {
		char host[32];
		snprintf(host, sizeof host, "/dev/%s", *n);
		int f = openat(dev, *n, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (f < 0) {
			run_err("cannot create /dev/%s: %s", *n, strerror(errno));
			goto fail;
		}
		close(f);
		int m = clone_tree(AT_FDCWD, host, false, false);
		int t = openat(dev, *n, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (m < 0 || t < 0 || attach(m, t) != 0) {
			run_err("cannot bind %s into the container: %s", host, strerror(errno));
			if (t >= 0)
				close(t);
			goto fail;
		}
		close(t);
	}
	for (size_t k = 0; k < sizeof links / sizeof links[0]; k++)
		if (symlinkat(links[k][1], dev, links[k][0]) != 0) {
			run_err("cannot create /dev/%s: %s", links[k][0], strerror(errno));
			goto fail;
		}
	if (mkdirat(dev, "pts", 0755) != 0 || mkdirat(dev, "shm", 01777) != 0 || fchmodat(dev, "shm", 01777, 0) != 0) {
		run_err("cannot create /dev/pts, /dev/shm: %s", strerror(errno));
		goto fail;
	}
	static const char *const pts_opts[] = { "newinstance", "ptmxmode=0666", "mode=0620", NULL };
	static const char *const shm_opts[] = { "mode=1777", "size=65536k", NULL };
	const struct { const char *name, *type; const char *const *opts; } subs[] = {
		{ "pts", "devpts", pts_opts }, { "shm", "tmpfs", shm_opts },
	};
	for (size_t k = 0; k < 2; k++) {
		int m = new_fs(subs[k].type, subs[k].opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
		int t = openat(dev, subs[k].name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (m < 0 || t < 0 || attach(m, t) != 0) {
			run_err("cannot mount /dev/%s: %s", subs[k].name, strerror(errno));
			if (t >= 0)
				close(t);
			goto fail;
		}
		close(t);
	}
	return attach_in_root(rootfd, dev, "/dev", true, "/dev tmpfs");
fail:
	close(dev);
	return -1;
}

static int setup_sys(const struct run_opts *o, int rootfd)
{
	const unsigned ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
	int m = new_fs("sysfs", NULL, ro);
	if (m < 0) {
		/* a user namespace without its own network namespace may not
		 * mount sysfs: the host's, read-only, then */
		m = clone_tree(AT_FDCWD, "/sys", true, true);
	}
	if (m < 0) {
		run_note(o, "no /sys: %s", strerror(errno));
		return 0;
	}
	return attach_in_root(rootfd, m, "/sys", true, "read-only /sys");
}

static int chroot_pivot(int rootfd)
{
	if (fchdir(rootfd) != 0 || syscall(SYS_pivot_root, ".", ".") != 0) {
		run_err("pivot_root into '%s': %s", "the stack", strerror(errno));
		return -1;
	}
	/* the old root is stacked on the new one: detach it */
	if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
		run_err("cannot detach the old root: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int rootfs_setup(struct run_opts *o)
{
	int rootfd = open(o->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		run_err("cannot open the stack's root '%s': %s", o->root, strerror(errno));
		return -1;
	}
	static const char *const tmp_opts[] = { "mode=1777", NULL };
	int rc = -1;
	if (attach_in_root(rootfd, new_fs("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC),
			   "/proc", true, "proc file system"))
		goto out;
	if (!o->userns && mask_proc(rootfd))
		goto out;
	if (setup_dev(rootfd) || setup_sys(o, rootfd))
		goto out;
	if (attach_in_root(rootfd, new_fs("tmpfs", tmp_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV), "/tmp", true,
			   "/tmp tmpfs"))
		goto out;
	for (size_t k = 0; k < o->nbinds; k++) {
		struct run_bind *b = &o->binds[k];
		if (b->tmpfs) {
			if (attach_in_root(rootfd, new_fs("tmpfs", tmp_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
					   b->dst, true, "tmpfs"))
				goto out;
			continue;
		}
		struct stat st;
		if (stat(b->src, &st) != 0) {
			run_err("--bind source '%s': %s", b->src, strerror(errno));
			goto out;
		}
		if (attach_in_root(rootfd, clone_tree(AT_FDCWD, b->src, true, b->ro), b->dst, S_ISDIR(st.st_mode),
				   "bind mount"))
			goto out;
	}
	rc = chroot_pivot(rootfd);
out:
	close(rootfd);
	return rc;
}
