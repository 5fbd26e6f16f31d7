/* xattr_ops.c - getxattr, listxattr, setxattr, removexattr.
 *
 * The overlay's own attributes are hidden.  As kernel overlay does (6.7+),
 * a caller may still set "trusted.overlay.X" (or "user.overlay.X"): it is
 * stored escaped as "trusted.overlay.overlay.X", so nested overlays work.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/limits.h>
#include <sys/xattr.h>

#include "../cow/copyup.h"
#include "../layers/xattr.h"

static const char *const ovl_prefixes[] = { "trusted.overlay.", "user.overlay." };

/* Maps a caller's name to the stored one; NULL when it cannot be stored. */
static const char *stored_name(const char *name, char *buf, size_t len)
{
	for (unsigned k = 0; k < 2; k++) {
		size_t pl = strlen(ovl_prefixes[k]);
		if (!strncmp(name, ovl_prefixes[k], pl)) {
			if (snprintf(buf, len, "%soverlay.%s", ovl_prefixes[k], name + pl) >= (int)len)
				return NULL;
			return buf;
		}
	}
	if (xattr_is_private(name))
		return NULL; /* user.fuseoverlayfs.* */
	return name;
}

/* Maps a stored name to what the caller sees; NULL when hidden. */
static const char *shown_name(const char *stored, char *buf, size_t len)
{
	for (unsigned k = 0; k < 2; k++) {
		size_t pl = strlen(ovl_prefixes[k]);
		if (!strncmp(stored, ovl_prefixes[k], pl)) {
			if (strncmp(stored + pl, "overlay.", 8))
				return NULL;
			snprintf(buf, len, "%s%s", ovl_prefixes[k], stored + pl + 8);
			return buf;
		}
	}
	return xattr_is_private(stored) ? NULL : stored;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct lfs_inode *i = ino_to_inode(ino);
	char nb[XATTR_NAME_MAX + 16];
	const char *sname = stored_name(name, nb, sizeof nb);
	if (!sname) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	inode_rdlock(i);
	ssize_t n = fd_getxattr(i->copies[0].fd, sname, buf, size);
	int e = errno;
	lfs_rw_unlock(&i->rw);
	if (n > 0 && size)
		ids_acl_out(name, buf, (size_t)n); /* ACL ids, mapped as owners are */
	if (n < 0)
		fuse_reply_err(req, e);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct lfs_inode *i = ino_to_inode(ino);
	ssize_t n;
	char *raw = NULL;

	inode_rdlock(i);
	for (;;) {
		n = fd_listxattr(i->copies[0].fd, NULL, 0);
		if (n <= 0)
			break;
		raw = realloc(raw, (size_t)n);
		ssize_t m = fd_listxattr(i->copies[0].fd, raw, (size_t)n);
		if (m >= 0 || errno != ERANGE) {
			n = m;
			break;
		}
	}
	int e = errno;
	lfs_rw_unlock(&i->rw);
	if (n < 0) {
		free(raw);
		fuse_reply_err(req, e);
		return;
	}
	char *out = malloc((size_t)n + 1);
	size_t olen = 0;
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(raw + off) + 1) {
		char nb[XATTR_NAME_MAX + 16];
		const char *shown = shown_name(raw + off, nb, sizeof nb);
		if (!shown)
			continue;
		size_t l = strlen(shown) + 1;
		memcpy(out + olen, shown, l);
		olen += l;
	}
	if (size == 0)
		fuse_reply_xattr(req, olen);
	else if (olen > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, out, olen);
	free(out);
	free(raw);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct lfs_inode *i = ino_to_inode(ino);
	char nb[XATTR_NAME_MAX + 16];
	const char *sname = stored_name(name, nb, sizeof nb);
	void *mapped = NULL;
	int rc = ids_acl_in(name, value, size, &mapped);
	/* copied up first, as the kernel copies up before it asks the
	 * upper: only then is a private name refused */
	if (rc == 0)
		rc = copy_up(i, COPYUP_DATA | COPYUP_ORIGIN);
	if (rc == 0 && !sname)
		rc = -EPERM;
	if (rc == 0) {
		inode_rdlock(i);
		if (fd_setxattr(i->copies[0].fd, sname, mapped ? mapped : value, size, flags) < 0)
			rc = -errno;
		lfs_rw_unlock(&i->rw);
	}
	free(mapped);
	fuse_reply_err(req, -rc);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct lfs_inode *i = ino_to_inode(ino);
	char nb[XATTR_NAME_MAX + 16];
	const char *sname = stored_name(name, nb, sizeof nb);
	if (!sname) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	/* the kernel copies up only when there is something to remove */
	inode_rdlock(i);
	ssize_t has = fd_getxattr(i->copies[0].fd, sname, NULL, 0);
	int e = errno;
	lfs_rw_unlock(&i->rw);
	if (has < 0) {
		fuse_reply_err(req, e);
		return;
	}
	int rc = copy_up(i, COPYUP_DATA | COPYUP_ORIGIN);
	if (rc == 0) {
		inode_rdlock(i);
		if (fd_removexattr(i->copies[0].fd, sname) < 0)
			rc = -errno;
		lfs_rw_unlock(&i->rw);
	}
	fuse_reply_err(req, -rc);
}

void xattr_ops_register(struct fuse_lowlevel_ops *ops)
{
	ops->getxattr = op_getxattr;
	ops->listxattr = op_listxattr;
	ops->setxattr = op_setxattr;
	ops->removexattr = op_removexattr;
}
