/* xattr.c - xattr calls on O_PATH fds and the private-name rule (see xattr.h). */
#define _GNU_SOURCE
#include "xattr.h"
#include "xperm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#define PROC_FD_LEN 32

static void proc_path(char *p, int fd)
{
	snprintf(p, PROC_FD_LEN, "/proc/self/fd/%d", fd);
}

ssize_t fd_getxattr(int fd, const char *name, void *buf, size_t size)
{
	char p[PROC_FD_LEN];
	proc_path(p, fd);
	return getxattr(p, name, buf, size);
}

ssize_t fd_listxattr(int fd, char *buf, size_t size)
{
	char p[PROC_FD_LEN];
	proc_path(p, fd);
	return listxattr(p, buf, size);
}

int fd_setxattr(int fd, const char *name, const void *val, size_t size, int flags)
{
	char p[PROC_FD_LEN];
	proc_path(p, fd);
	return setxattr(p, name, val, size, flags);
}

int fd_removexattr(int fd, const char *name)
{
	char p[PROC_FD_LEN];
	proc_path(p, fd);
	return removexattr(p, name);
}

bool xattr_is_private(const char *name)
{
	return !strncmp(name, "trusted.overlay.", 16) || !strncmp(name, "user.overlay.", 13) ||
	       !strncmp(name, "user.fuseoverlayfs.", 19) || xperm_is_name(name);
}

bool xattr_is_escaped(const char *name)
{
	return !strncmp(name, "trusted.overlay.overlay.", 24) || !strncmp(name, "user.overlay.overlay.", 21);
}

ssize_t ovl_getxattr(int fd, const char *suffix, void *buf, size_t size)
{
	char name[96];
	ssize_t r;

	snprintf(name, sizeof name, "trusted.overlay.%s", suffix);
	r = fd_getxattr(fd, name, buf, size);
	if (r >= 0 || (errno != ENODATA && errno != EPERM && errno != EOPNOTSUPP))
		return r;
	snprintf(name, sizeof name, "user.overlay.%s", suffix);
	return fd_getxattr(fd, name, buf, size);
}
