/* workdir.c - prepare the workdir and name staged objects (see workdir.h). */
#define _GNU_SOURCE
#include "workdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WORK_SUBDIR "work"

static _Atomic unsigned long tmp_counter;

void workdir_tmpname(char *buf)
{
	snprintf(buf, 24, "#%lx", (unsigned long)atomic_fetch_add(&tmp_counter, 1));
}

int remove_tree_at(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;

	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[8192];
	int rc = 0;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (n <= 0) {
			if (n < 0)
				rc = -errno;
			break;
		}
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			int r = remove_tree_at(fd, d->d_name);
			if (r && !rc)
				rc = r;
		}
	}
	close(fd);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && !rc)
		rc = -errno;
	return rc;
}

int workdir_prepare(int workroot_fd, char *err, size_t errlen, const char *path)
{
	/* Start from a fresh name so that a crashed mount's leftovers are
	 * gone before the first copy-up (the kernel does the same). */
	struct stat st;
	if (fstatat(workroot_fd, WORK_SUBDIR, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		int rc = remove_tree_at(workroot_fd, WORK_SUBDIR);
		if (rc) {
			snprintf(err, errlen, "cannot clean workdir '%s/" WORK_SUBDIR "': %s", path,
				 strerror(-rc));
			return -1;
		}
	}
	if (mkdirat(workroot_fd, WORK_SUBDIR, 0700) < 0) {
		snprintf(err, errlen, "cannot create '%s/" WORK_SUBDIR "': %s", path, strerror(errno));
		return -1;
	}
	int fd = openat(workroot_fd, WORK_SUBDIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open '%s/" WORK_SUBDIR "': %s", path, strerror(errno));
		return -1;
	}
	return fd;
}
