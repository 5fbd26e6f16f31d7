/* xperm.c - the override_stat xattr: names, value format, reading and
 * writing it on O_PATH fds (see xperm.h). */
#define _GNU_SOURCE
#include "xperm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "xattr.h"

const char *xperm_name(enum xperm_mode m)
{
	switch (m) {
	case XPERM_PRIVILEGED: return "security.fuseoverlayfs.override_stat";
	case XPERM_CONTAINERS: return "user.containers.override_stat";
	case XPERM_USER: return "user.fuseoverlayfs.override_stat";
	default: return NULL;
	}
}

bool xperm_is_name(const char *name)
{
	for (enum xperm_mode m = XPERM_PRIVILEGED; m <= XPERM_USER; m++)
		if (!strcmp(name, xperm_name(m)))
			return true;
	return false;
}

enum xperm_mode xperm_mode_of_option(int xattr_permissions)
{
	return xattr_permissions == 1 ? XPERM_PRIVILEGED :
	       xattr_permissions == 2 ? XPERM_USER : XPERM_NONE;
}

/* Digits in base (8 or 10) up to the next ':' or the end. */
static bool take_number(const char **p, const char *end, unsigned base, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;
	if (s == end || *s == ':')
		return false;
	for (; s < end && *s != ':'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (*s < '0' || d >= base)
			return false;
		v = v * base + d;
		if (v > max)
			return false;
	}
	*out = v;
	*p = s;
	return true;
}

int xperm_parse(const char *buf, size_t len, struct xperm_value *v)
{
	const char *p = buf, *end = buf + len;
	uint64_t uid, gid, mode;
	/* a trailing NUL, as some writers store one */
	if (len > 0 && buf[len - 1] == '\0')
		end--;
	if (!take_number(&p, end, 10, UINT32_MAX - 1, &uid) || p == end || *p++ != ':' ||
	    !take_number(&p, end, 10, UINT32_MAX - 1, &gid) || p == end || *p++ != ':' ||
	    !take_number(&p, end, 8, 0177777, &mode))
		return -EINVAL;
	if (p != end && *p != ':')
		return -EINVAL;
	v->uid = (uint32_t)uid;
	v->gid = (uint32_t)gid;
	v->mode = (mode_t)(mode & 07777);
	return 0;
}

int xperm_format(const struct xperm_value *v, char *buf, size_t len)
{
	return snprintf(buf, len, "%u:%u:0%o", v->uid, v->gid, (unsigned)(v->mode & 07777));
}

enum xperm_mode xperm_layer_mode(int root_fd)
{
	static const enum xperm_mode order[] = { XPERM_PRIVILEGED, XPERM_CONTAINERS, XPERM_USER };
	for (unsigned k = 0; k < 3; k++)
		if (fd_getxattr(root_fd, xperm_name(order[k]), NULL, 0) >= 0)
			return order[k];
	return XPERM_NONE;
}

int xperm_read(int fd, enum xperm_mode m, struct xperm_value *v)
{
	char buf[64];
	const char *name = xperm_name(m);
	if (!name)
		return 0;
	ssize_t n = fd_getxattr(fd, name, buf, sizeof buf);
	if (n < 0)
		return errno == ENODATA || errno == ENOTSUP || errno == EPERM ? 0 : -errno;
	return xperm_parse(buf, (size_t)n, v) == 0 ? 1 : 0;
}

int xperm_write(int fd, enum xperm_mode m, const struct xperm_value *v)
{
	char buf[64];
	const char *name = xperm_name(m);
	if (!name)
		return -EINVAL;
	int n = xperm_format(v, buf, sizeof buf);
	return fd_setxattr(fd, name, buf, (size_t)n, 0) < 0 ? -errno : 0;
}
