/* ids.c - the FUSE side of the id options: uidmapping=/gidmapping= and
 * squash_to_* (layers/idmap.c) where ids go out (stat) and come in (chown,
 * the creator of a new object), and xattr_permissions= (layers/xperm.c):
 * owner and mode read from and written to an override xattr instead of
 * the inode.  The op files call these hooks; with no id option given each
 * is a test of one flag.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../layers/xattr.h"
#include "../layers/xperm.h"

static enum xperm_mode *layer_xperm; /* per layer of lfs.stack */
static bool any_xperm;               /* some layer is in override mode */
static bool shifting;                /* lfs_idshift_active() */

static const struct lfs_idshift *shift(void)
{
	return &lfs.opts->ids;
}

static uint32_t read_overflow(const char *path)
{
	char buf[32];
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	return lfs_parse_overflow_id(n ? buf : NULL, 65534);
}

static enum xperm_mode upper_mode(void)
{
	return lfs.stack.has_upper && layer_xperm ? layer_xperm[0] : XPERM_NONE;
}

/* xattr_permissions=N: the upper root must carry the name N writes, so
 * that the next mount finds the upper in override mode; its value comes
 * from the first lower root that has one, else from the upper root's own
 * owner and mode (what fuse-overlayfs 1.10 records). */
static int setup_upper_root(enum xperm_mode m, char *err, size_t errlen)
{
	int ufd = lfs.stack.layers[0].root_fd;
	struct xperm_value v;
	struct stat st;
	if (fstat(ufd, &st) < 0)
		return lfs_errorf(err, errlen, "cannot stat upper '%s': %s", lfs.stack.layers[0].path,
				  strerror(errno));
	const struct xperm_value own = { st.st_uid, st.st_gid, st.st_mode & 07777 };
	int rc = xperm_read(ufd, m, &v);
	if (rc > 0)
		return 0;
	v = own;
	for (unsigned k = 1; rc == 0 && k < lfs.stack.nlayers; k++) {
		int lfd = lfs.stack.layers[k].root_fd;
		rc = xperm_read(lfd, m, &v);
		if (rc == 0 && m == XPERM_USER)
			rc = xperm_read(lfd, XPERM_CONTAINERS, &v);
	}
	if (rc <= 0)
		v = own;
	rc = xperm_write(ufd, m, &v);
	if (rc)
		return lfs_errorf(err, errlen, "cannot set %s on upper '%s': %s", xperm_name(m),
				  lfs.stack.layers[0].path, strerror(-rc));
	return 0;
}

int ids_init(char *err, size_t errlen)
{
	struct lfs_idshift *s = &lfs.opts->ids;
	s->overflow_uid = read_overflow("/proc/sys/kernel/overflowuid");
	s->overflow_gid = read_overflow("/proc/sys/kernel/overflowgid");
	shifting = lfs_idshift_active(s);

	layer_xperm = calloc(lfs.stack.nlayers, sizeof *layer_xperm);
	if (!layer_xperm)
		return lfs_errorf(err, errlen, "out of memory");
	for (unsigned k = 0; k < lfs.stack.nlayers; k++)
		layer_xperm[k] = xperm_layer_mode(lfs.stack.layers[k].root_fd);
	enum xperm_mode opt = xperm_mode_of_option(lfs.opts->xattr_permissions);
	if (opt != XPERM_NONE && lfs.stack.has_upper && !lfs.stack.read_only) {
		if (setup_upper_root(opt, err, errlen))
			return -1;
		layer_xperm[0] = opt;
	}
	for (unsigned k = 0; k < lfs.stack.nlayers; k++)
		any_xperm |= layer_xperm[k] != XPERM_NONE;
	return 0;
}

void ids_stat_out(const struct lfs_inode *i, struct stat *st)
{
	if (any_xperm && i->ncopies > 0 && i->copies[0].fd >= 0 &&
	    i->copies[0].layer < lfs.stack.nlayers) {
		struct xperm_value v;
		if (xperm_read(i->copies[0].fd, layer_xperm[i->copies[0].layer], &v) > 0) {
			st->st_uid = v.uid;
			st->st_gid = v.gid;
			st->st_mode = (st->st_mode & S_IFMT) | v.mode;
		}
	}
	if (shifting) {
		st->st_uid = lfs_shown_uid(shift(), st->st_uid);
		st->st_gid = lfs_shown_gid(shift(), st->st_gid);
	}
}

/* What the override xattr of an upper object says now, or its real
 * owner and mode when it has none yet. */
static int current_value(int fd, struct xperm_value *v)
{
	int rc = xperm_read(fd, upper_mode(), v);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*v = (struct xperm_value){ st.st_uid, st.st_gid, st.st_mode & 07777 };
	return 0;
}

int ids_chmod(int fd, mode_t mode)
{
	if (upper_mode() == XPERM_NONE)
		return 0;
	struct xperm_value v;
	int rc = current_value(fd, &v);
	if (rc)
		return rc;
	v.mode = mode & 07777;
	rc = xperm_write(fd, upper_mode(), &v);
	return rc ? rc : 1;
}

static bool squashing(void)
{
	const struct lfs_idshift *s = shift();
	return s->squash_root || s->squash_uid >= 0 || s->squash_gid >= 0;
}

int ids_chown(int fd, uid_t uid, gid_t gid)
{
	uint32_t su = uid, sg = gid;
	/* an id no range shows cannot be stored: the kernel's idmapped
	 * mounts refuse it the same way */
	if (uid != (uid_t)-1 && !lfs_stored_uid_strict(shift(), uid, &su))
		return -EOVERFLOW;
	if (gid != (gid_t)-1 && !lfs_stored_gid_strict(shift(), gid, &sg))
		return -EOVERFLOW;
	if (upper_mode() != XPERM_NONE) {
		struct xperm_value v;
		int rc = current_value(fd, &v);
		if (rc)
			return rc;
		if (uid != (uid_t)-1)
			v.uid = su;
		if (gid != (gid_t)-1)
			v.gid = sg;
		return xperm_write(fd, upper_mode(), &v);
	}
	if (fchownat(fd, "", uid == (uid_t)-1 ? (uid_t)-1 : su, gid == (gid_t)-1 ? (gid_t)-1 : sg,
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		/* squashed, what the file shows does not depend on its owner;
		 * fuse-overlayfs ignores the failure the same way */
		if (squashing() && (errno == EPERM || errno == EINVAL))
			return 0;
		return -errno;
	}
	return 0;
}

/* A caller no range holds (host root making a mountpoint in a shifted
 * container root, say): the kernel has checked its permission on the
 * merged ids already (default_permissions), so it creates as the daemon
 * and the object is then given the overflow ids, as fuse-overlayfs
 * stores it.  Without default_permissions it creates as the overflow ids. */
static bool caller_unmapped(const struct fuse_ctx *ctx)
{
	uint32_t x;
	return shifting && lfs.posix_acl &&
	       (!lfs_stored_uid_strict(shift(), ctx->uid, &x) || !lfs_stored_gid_strict(shift(), ctx->gid, &x));
}

int ids_caller(fuse_req_t req, uid_t *uid, gid_t *gid, gid_t *groups, int *ngroups)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	*uid = ctx->uid;
	*gid = ctx->gid;
	if (!shifting)
		return 0;
	if (caller_unmapped(ctx)) {
		*uid = geteuid();
		*gid = getegid();
		*ngroups = 0;
		return 0;
	}
	*uid = lfs_stored_uid(shift(), ctx->uid);
	*gid = lfs_stored_gid(shift(), ctx->gid);
	/* a group no range holds grants nothing in the layers */
	int kept = 0;
	for (int k = 0; k < *ngroups; k++) {
		uint32_t g;
		if (lfs_stored_gid_strict(shift(), groups[k], &g))
			groups[kept++] = g;
	}
	*ngroups = kept;
	return 0;
}

int ids_record_new(fuse_req_t req, int dirfd, const char *name, mode_t mode)
{
	enum xperm_mode m = upper_mode();
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	if (m == XPERM_NONE && caller_unmapped(ctx) && lfs.can_switch_creds) {
		if (fchownat(dirfd, name, lfs_stored_uid(shift(), ctx->uid), lfs_stored_gid(shift(), ctx->gid),
			     AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		return 0;
	}
	if (m == XPERM_NONE)
		return 0;
	struct xperm_value v = { lfs_stored_uid(shift(), ctx->uid), lfs_stored_gid(shift(), ctx->gid),
				 mode & 07777 };
	if (lfs.kernel_skips_umask)
		v.mode &= ~(mode_t)ctx->umask;
	/* a set-group-ID directory hands on its group (and, to directories,
	 * the bit), in the owner it records too */
	struct xperm_value pv;
	if (current_value(dirfd, &pv) == 0 && (pv.mode & S_ISGID)) {
		v.gid = pv.gid;
		if (S_ISDIR(mode))
			v.mode |= S_ISGID;
	}
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = xperm_write(fd, m, &v);
	/* user.* xattrs exist on files and directories only; a symlink or a
	 * device keeps its real owner, as with fuse-overlayfs */
	if (rc == -EPERM && !S_ISREG(mode) && !S_ISDIR(mode))
		rc = 0;
	close(fd);
	return rc;
}

static bool is_acl_name(const char *name)
{
	return !strcmp(name, "system.posix_acl_access") || !strcmp(name, "system.posix_acl_default");
}

void ids_acl_out(const char *name, void *buf, size_t len)
{
	if (shifting && is_acl_name(name))
		lfs_idmap_acl(shift(), buf, len, false);
}

int ids_acl_in(const char *name, const void *value, size_t len, void **out)
{
	*out = NULL;
	if (!shifting || !is_acl_name(name) || len == 0)
		return 0;
	void *copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, value, len);
	int rc = lfs_idmap_acl(shift(), copy, len, true);
	if (rc == -EINVAL) {
		free(copy); /* not an ACL: the filesystem says so itself */
		return 0;
	}
	if (rc) {
		free(copy);
		return rc;
	}
	*out = copy;
	return 0;
}

int ids_copy_up(unsigned src_layer, int src_fd, int dst_fd)
{
	enum xperm_mode m = upper_mode();
	if (!any_xperm || src_layer >= lfs.stack.nlayers)
		return 0;
	struct xperm_value v;
	int rc = xperm_read(src_fd, layer_xperm[src_layer], &v);
	if (rc <= 0)
		return rc; /* the real owner and mode came along */
	if (m != XPERM_NONE) {
		rc = xperm_write(dst_fd, m, &v);
		return rc == -EPERM ? 0 : rc;
	}
	/* an upper without overrides: the copy gets for real the owner and
	 * mode its lower showed, as fuse-overlayfs gives it, so copy-up
	 * changes nothing that stat shows (owner first: chown clears set-id) */
	char p[32];
	snprintf(p, sizeof p, "/proc/self/fd/%d", dst_fd);
	if (fchownat(dst_fd, "", v.uid, v.gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    chmod(p, v.mode) < 0)
		return -errno;
	return 0;
}
