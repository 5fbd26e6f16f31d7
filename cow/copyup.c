/* copyup.c - copy-up of one object through the workdir (see copyup.h). */
#define _GNU_SOURCE
#include "copyup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../layers/origin.h"
#include "../layers/xattr.h"
#include "workdir.h"

int reopen_fd(int opath_fd, int flags)
{
	char p[32];
	snprintf(p, sizeof p, "/proc/self/fd/%d", opath_fd);
	/* the fd names the object already; O_NOFOLLOW would refuse the
	 * magic link itself */
	flags = (flags & ~O_NOFOLLOW) | O_CLOEXEC;
	int fd = open(p, flags);
	if (fd < 0 && errno == EPERM && (flags & O_NOATIME))
		fd = open(p, flags & ~O_NOATIME); /* O_NOATIME needs ownership */
	return fd < 0 ? -errno : fd;
}

static int copy_range_plain(int in, int out, off_t off, off_t len)
{
	const size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	int rc = 0;
	if (!buf)
		return -ENOMEM;
	while (len > 0 && rc == 0) {
		ssize_t n = pread(in, buf, (size_t)len < bufsz ? (size_t)len : bufsz, off);
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t w = 0; w < n;) {
			ssize_t m = pwrite(out, buf + w, (size_t)(n - w), off + w);
			if (m < 0) {
				rc = -errno;
				break;
			}
			w += m;
		}
		off += n;
		len -= n;
	}
	free(buf);
	return rc;
}

static int copy_range(int in, int out, off_t off, off_t len)
{
	while (len > 0) {
		loff_t ioff = off, ooff = off;
		ssize_t n = copy_file_range(in, &ioff, out, &ooff, (size_t)len, 0);
		if (n < 0) {
			if (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
				return copy_range_plain(in, out, off, len);
			return -errno;
		}
		if (n == 0)
			break;
		off += n;
		len -= n;
	}
	return 0;
}

int copy_file_data(int in, int out, off_t size)
{
	if (size == 0)
		return 0;
	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	/* Walk the data segments; holes stay holes. */
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole is left */
			if (errno == EINVAL) /* no SEEK_DATA here: copy everything */
				return copy_range(in, out, 0, size);
			return -errno;
		}
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = size;
		int rc = copy_range(in, out, data, hole - data);
		if (rc)
			return rc;
		pos = hole;
	}
	return ftruncate(out, size) < 0 ? -errno : 0;
}

int copy_xattrs(int src_fd, int dst_fd)
{
	ssize_t len = fd_listxattr(src_fd, NULL, 0);
	if (len <= 0)
		return (len < 0 && errno != ENOTSUP) ? -errno : 0;
	char *list = malloc((size_t)len), *val = NULL;
	size_t valcap = 0;
	int rc = 0;
	if (!list)
		return -ENOMEM;
	len = fd_listxattr(src_fd, list, (size_t)len);
	for (ssize_t off = 0; len > 0 && off < len; off += (ssize_t)strlen(list + off) + 1) {
		const char *name = list + off;
		if (xattr_is_private(name) && !xattr_is_escaped(name))
			continue;
		ssize_t vl = fd_getxattr(src_fd, name, NULL, 0);
		if (vl < 0)
			continue;
		if ((size_t)vl > valcap) {
			free(val);
			valcap = (size_t)vl;
			val = malloc(valcap ? valcap : 1);
			if (!val) {
				rc = -ENOMEM;
				break;
			}
		}
		vl = fd_getxattr(src_fd, name, val, valcap);
		if (vl < 0)
			continue;
		if (fd_setxattr(dst_fd, name, val, (size_t)vl, 0) < 0) {
			/* an upper without that namespace (security.selinux on a
			 * filesystem without labels) loses only that attribute */
			if (errno != EOPNOTSUPP && errno != EPERM) {
				rc = -errno;
				break;
			}
		}
	}
	free(list);
	free(val);
	return rc;
}

static int stage_object(const struct layer_stack *s, int src_fd, const struct stat *st,
			const char *tmp, unsigned flags)
{
	int work = s->work_fd;

	switch (st->st_mode & S_IFMT) {
	case S_IFREG: {
		int out = openat(work, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (out < 0)
			return -errno;
		int rc = 0;
		if ((flags & COPYUP_DATA) && st->st_size > 0) {
			int in = reopen_fd(src_fd, O_RDONLY | O_NOATIME);
			rc = in < 0 ? in : copy_file_data(in, out, st->st_size);
			if (in >= 0)
				close(in);
		}
		if (rc == 0 && !s->volatile_ && fsync(out) < 0)
			rc = -errno;
		close(out);
		return rc;
	}
	case S_IFDIR:
		return mkdirat(work, tmp, 0700) < 0 ? -errno : 0;
	case S_IFLNK: {
		char target[PATH_MAX];
		ssize_t n = readlinkat(src_fd, "", target, sizeof target - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		return symlinkat(target, work, tmp) < 0 ? -errno : 0;
	}
	default:
		/* FIFOs, sockets, devices: made, never opened */
		return mknodat(work, tmp, st->st_mode & S_IFMT, st->st_rdev) < 0 ? -errno : 0;
	}
}

/* Owner, then mode (chown clears set-id bits), then xattrs (chown drops
 * security.capability), then times last. */
static int stage_metadata(const struct layer_stack *s, int src_fd, const struct stat *st,
			  const char *tmp, unsigned flags)
{
	int work = s->work_fd;
	if (fchownat(work, tmp, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st->st_mode) && fchmodat(work, tmp, st->st_mode & 07777, 0) < 0)
		return -errno;
	int fd = openat(work, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = copy_xattrs(src_fd, fd);
	if (rc == 0 && (flags & COPYUP_ORIGIN)) {
		int orc = origin_set(s, fd, src_fd);
		/* filesystems without handles just lose st_ino stability across remounts */
		/* user.* xattrs exist on files and directories only */
		bool no_user_xattr = s->userxattr && orc == -EPERM &&
				     !S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode);
		if (orc && orc != -EOPNOTSUPP && orc != -ENOTSUP && !no_user_xattr)
			rc = orc;
	}
	close(fd);
	if (rc)
		return rc;
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	if (utimensat(work, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int copy_up_object(const struct layer_stack *s, int src_fd, const struct stat *st, int updir_fd,
		   const char *name, unsigned flags)
{
	char tmp[24];
	struct stat parent_st;
	bool have_parent_times = fstat(updir_fd, &parent_st) == 0;

	workdir_tmpname(tmp);
	int rc = stage_object(s, src_fd, st, tmp, flags);
	if (rc == 0)
		rc = stage_metadata(s, src_fd, st, tmp, flags);
	/* hold the staged object itself: after the rename its name could
	 * already be another file's */
	int fd = -1;
	if (rc == 0 && (fd = openat(s->work_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		rc = -errno;
	if (rc == 0 && renameat2(s->work_fd, tmp, updir_fd, name, RENAME_NOREPLACE) < 0) {
		rc = -errno;
		/* the name is taken (a whiteout of a removed directory still
		 * open): the kernel's copy-up of a directory ends in a rename
		 * over it, which says ENOTDIR */
		struct stat dst;
		if (rc == -EEXIST && S_ISDIR(st->st_mode) &&
		    fstatat(updir_fd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(dst.st_mode))
			rc = -ENOTDIR;
	}
	if (rc) {
		if (fd >= 0)
			close(fd);
		remove_tree_at(s->work_fd, tmp);
		return rc;
	}
	if (have_parent_times) {
		/* the merged parent did not change: keep its times */
		struct timespec ts[2] = { parent_st.st_atim, parent_st.st_mtim };
		utimensat(updir_fd, "", ts, AT_EMPTY_PATH);
	}
	return fd;
}
