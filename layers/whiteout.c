/* whiteout.c - read and write whiteouts, opaque markers, redirects
 * (see whiteout.h for the forms). */
#define _GNU_SOURCE
#include "whiteout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../cow/workdir.h"
#include "xattr.h"

/* Looks for one of the names in a listxattr result. */
static bool list_has(const char *list, ssize_t len, const char *name)
{
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(list + off) + 1)
		if (!strcmp(list + off, name))
			return true;
	return false;
}

/* Is one of the overlay names for suffix in list (a listxattr result of
 * len bytes; len < 0: the list was too long to read, so ask each name)? */
static bool list_has_overlay_xattr(int fd, const char *list, ssize_t len, const char *suffix,
				   const char *want)
{
	char val[8];
	char tname[64], uname[64];

	if (len == 0)
		return false;
	snprintf(tname, sizeof tname, "trusted.overlay.%s", suffix);
	snprintf(uname, sizeof uname, "user.overlay.%s", suffix);
	const char *names[] = { tname, uname, "user.fuseoverlayfs.opaque" };
	unsigned nnames = strcmp(suffix, "opaque") ? 2 : 3;
	for (unsigned i = 0; i < nnames; i++) {
		if (len > 0 && !list_has(list, len, names[i]))
			continue;
		if (!want)
			return true;
		ssize_t v = fd_getxattr(fd, names[i], val, sizeof val);
		if (v == (ssize_t)strlen(want) && !memcmp(val, want, (size_t)v))
			return true;
	}
	return false;
}

/* listxattr for list_has_overlay_xattr: -1 when the list is too long
 * to read (then each name is asked), 0 when there is none to read. */
static ssize_t list_xattrs(int fd, char *list, size_t size)
{
	ssize_t len = fd_listxattr(fd, list, size);
	return len < 0 && errno != ERANGE ? 0 : len;
}

static bool has_overlay_xattr(int fd, const char *suffix, const char *want)
{
	char list[4096];
	return list_has_overlay_xattr(fd, list, list_xattrs(fd, list, sizeof list), suffix, want);
}

bool is_whiteout_entry(int dirfd, const char *name, const struct stat *st)
{
	if (S_ISCHR(st->st_mode))
		return st->st_rdev == makedev(0, 0);
	if (!S_ISREG(st->st_mode) || st->st_size != 0)
		return false;
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool wh = has_overlay_xattr(fd, "whiteout", NULL);
	close(fd);
	return wh;
}

bool has_aufs_whiteout(int dirfd, const char *name)
{
	char marker[NAME_MAX + 1];
	struct stat st;

	if (strlen(name) + AUFS_WH_PREFIX_LEN > NAME_MAX)
		return false;
	snprintf(marker, sizeof marker, AUFS_WH_PREFIX "%s", name);
	return fstatat(dirfd, marker, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

bool holds_xattr_whiteouts(int dirfd)
{
	return has_overlay_xattr(dirfd, "opaque", "x");
}

/* Opaque, from a listxattr result (see list_has_overlay_xattr) or the
 * OCI marker file. */
static bool opaque_in(int dirfd, const char *list, ssize_t len)
{
	struct stat st;
	return list_has_overlay_xattr(dirfd, list, len, "opaque", "y") ||
	       fstatat(dirfd, AUFS_OPQ_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

bool is_opaque_dir(int dirfd)
{
	char list[4096];
	return opaque_in(dirfd, list, list_xattrs(dirfd, list, sizeof list));
}

int read_dir_marks(int dirfd, bool *opaque, char *redirect, size_t size)
{
	char list[4096];
	ssize_t len = list_xattrs(dirfd, list, sizeof list);
	*opaque = opaque_in(dirfd, list, len);
	redirect[0] = '\0';
	if (*opaque || !list_has_overlay_xattr(dirfd, list, len, "redirect", NULL))
		return 0;
	return read_redirect(dirfd, redirect, size);
}

int read_redirect(int dirfd, char *buf, size_t size)
{
	ssize_t len = ovl_getxattr(dirfd, "redirect", buf, size - 1);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	if ((size_t)len != strlen(buf))
		return -EIO;
	/* A relative redirect is one name in the same directory, as the
	 * kernel requires; anything else could walk out of the layer.
	 * Absolute ones are opened with RESOLVE_BENEATH. */
	if (buf[0] != '/' && (strchr(buf, '/') || !strcmp(buf, ".") || !strcmp(buf, "..")))
		return -EIO;
	return (int)len;
}

static int set_ovl_xattr(const struct layer_stack *s, int fd, const char *suffix,
			 const void *val, size_t len)
{
	char name[64];
	snprintf(name, sizeof name, "%s%s", stack_xattr_prefix(s), suffix);
	return fd_setxattr(fd, name, val, len, 0) < 0 ? -errno : 0;
}

int make_whiteout(const struct layer_stack *s, int dirfd, const char *name)
{
	if (s->can_mknod_whiteout) {
		/* made in the workdir and moved in, as the kernel does: it
		 * takes nothing (group, default ACL) from the directory */
		char tmp[24];
		workdir_tmpname(tmp);
		if (s->work_fd < 0) {
			if (mknodat(dirfd, name, S_IFCHR | 0, makedev(0, 0)) == 0)
				return 0;
		} else if (mknodat(s->work_fd, tmp, S_IFCHR | 0, makedev(0, 0)) == 0) {
			if (renameat2(s->work_fd, tmp, dirfd, name, RENAME_NOREPLACE) == 0)
				return 0;
			int e = errno;
			unlinkat(s->work_fd, tmp, 0);
			return -e;
		}
		if (errno != EPERM)
			return -errno;
	}
	/* The kernel's xattr form: a zero-size file marked as whiteout, in a
	 * parent marked as holding such files. */
	int fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int rc = fd < 0 ? -errno : set_ovl_xattr(s, fd, "whiteout", "", 0);
	if (fd >= 0)
		close(fd);
	if (rc == 0 && !is_opaque_dir(dirfd))
		rc = set_ovl_xattr(s, dirfd, "opaque", "x", 1);
	if (rc)
		unlinkat(dirfd, name, 0);
	return rc;
}

int set_opaque(const struct layer_stack *s, int dirfd)
{
	return set_ovl_xattr(s, dirfd, "opaque", "y", 1);
}

int set_redirect(const struct layer_stack *s, int fd, const char *target)
{
	return set_ovl_xattr(s, fd, "redirect", target, strlen(target));
}
