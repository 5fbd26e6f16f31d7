/* inode_ops.c - lookup, forget, getattr, setattr, readlink, access, statfs. */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../cow/copyup.h"
#include "../layers/ino.h"

void merged_stat(const struct lfs_inode *i, struct stat *st)
{
	st->st_ino = i->st_ino;
	/* a merged directory shows 1, as the kernel's; a lower file keeps
	 * its lower link count even after one of its names went away, as
	 * the kernel's does */
	if (i->type == S_IFDIR && i->ncopies > 1)
		st->st_nlink = 1;
	ids_stat_out(i, st);
}

int stat_inode(struct lfs_inode *i, struct stat *st)
{
	if (i->copies[0].fd < 0)
		return -ESTALE; /* its name leads elsewhere now */
	if (fstat(i->copies[0].fd, st) < 0)
		return -errno;
	merged_stat(i, st);
	return 0;
}

void fill_entry_times(struct fuse_entry_param *e)
{
	e->attr_timeout = lfs.timeout;
	e->entry_timeout = lfs.timeout;
}

/* The entry for a lookup result (its fds are consumed). */
static int entry_from_result(struct lfs_inode *parent, const char *name, struct lookup_result *r,
			     uint64_t st_ino, struct fuse_entry_param *e)
{
	int rc = 0;
	struct stat top = r->st;
	bool fresh;
	struct lfs_inode *i = inode_from_lookup(parent, name, r, st_ino, &fresh);
	if (fresh) {
		/* the lookup stat'ed this very object a moment ago */
		e->attr = top;
		merged_stat(i, &e->attr);
	} else {
		inode_rdlock(i);
		rc = stat_inode(i, &e->attr);
		lfs_rw_unlock(&i->rw);
	}
	if (rc) {
		inode_forget(i, 1);
		return rc;
	}
	e->ino = inode_to_ino(i);
	return 0;
}

int do_lookup(struct lfs_inode *parent, const char *name, struct fuse_entry_param *e)
{
	return do_lookup_hinted(parent, name, NULL, e);
}

/* The index of a directory's lower copies, made at its first lookup
 * when there are two or more (below that a lookup costs a call or two
 * anyway).  Caller holds dir->rw. */
static struct name_index *lower_index_of(struct lfs_inode *dir)
{
	struct name_index *ix = atomic_load(&dir->lower_index);
	unsigned first = inode_is_upper(dir) ? 1 : 0;
	if (ix || dir->type != S_IFDIR || dir->ncopies < first + 2 || dir->copies[first].fd < 0)
		return ix;
	ix = name_index_build(&lfs.stack, dir->copies + first, dir->ncopies - first);
	struct name_index *none = NULL;
	if (ix && !atomic_compare_exchange_strong(&dir->lower_index, &none, ix)) {
		name_index_free(ix); /* another lookup made it first */
		ix = none;
	}
	return ix;
}

int do_lookup_hinted(struct lfs_inode *parent, const char *name, const struct name_hint *hint,
		     struct fuse_entry_param *e)
{
	struct lookup_result r;
	struct name_hint from_index;
	int rc;

	memset(e, 0, sizeof *e);
	fill_entry_times(e);
	if (strlen(name) > lfs.name_max)
		return -ENAMETOOLONG;
	inode_rdlock(parent);
	struct name_index *ix = hint ? NULL : lower_index_of(parent);
	if (ix) {
		/* not in the index: no lower layer can show it */
		if (!name_index_find(ix, name, &from_index))
			from_index = (struct name_hint){ UINT32_MAX, NULL, 0 };
		hint = &from_index;
	}
	rc = layers_lookup_hinted(&lfs.stack, parent->copies, parent->ncopies, name, hint, &r);
	lfs_rw_unlock(&parent->rw);
	if (rc)
		return rc;
	return entry_from_result(parent, name, &r, merged_ino(&lfs.stack, &r, false), e);
}

int new_upper_entry(struct lfs_inode *parent, const char *name, int path_fd, struct fuse_entry_param *e)
{
	struct lookup_result r = { .ncopies = 1 };

	memset(e, 0, sizeof *e);
	fill_entry_times(e);
	r.copies = malloc(sizeof *r.copies);
	if (!r.copies) {
		close(path_fd);
		return -ENOMEM;
	}
	r.copies[0] = (struct layer_copy){ 0, path_fd };
	if (fstat(path_fd, &r.st) < 0) {
		int rc = -errno;
		lookup_result_free(&r);
		return rc;
	}
	/* new: no lower copy, no origin, so its own number */
	return entry_from_result(parent, name, &r, map_ino(&lfs.stack, 0, r.st.st_ino), e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = do_lookup(ino_to_inode(parent), name, &e);
	if (rc == -ENOENT) {
		/* a negative entry: the kernel remembers the miss */
		e.ino = 0;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(ino_to_inode(ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t k = 0; k < count; k++)
		inode_forget(ino_to_inode(forgets[k].ino), forgets[k].nlookup);
	fuse_reply_none(req);
}

static void reply_attr_of(fuse_req_t req, struct lfs_inode *i)
{
	struct stat st;
	inode_rdlock(i);
	int rc = stat_inode(i, &st);
	lfs_rw_unlock(&i->rw);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, lfs.timeout);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	reply_attr_of(req, ino_to_inode(ino));
}

static int proc_path_of(int fd, char *buf, size_t len)
{
	return snprintf(buf, len, "/proc/self/fd/%d", fd) < (int)len ? 0 : -ENAMETOOLONG;
}

static int apply_setattr(struct lfs_inode *i, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	int fd = i->copies[0].fd;
	char p[32];
	proc_path_of(fd, p, sizeof p);

	if (to_set & FUSE_SET_ATTR_MODE) {
		if (i->type == S_IFLNK)
			return -EOPNOTSUPP;
		int r = ids_chmod(fd, attr->st_mode & 07777);
		if (r < 0)
			return r;
		if (r == 0 && chmod(p, attr->st_mode & 07777) < 0)
			return -errno;
	}
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		int r = ids_chown(fd, uid, gid); /* mapped to the stored ids */
		if (r)
			return r;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		int rc = 0;
		if (fi) {
			rc = ftruncate(fi_handle(fi)->fd, attr->st_size);
		} else {
			int wfd = reopen_fd(fd, O_WRONLY);
			if (wfd < 0)
				return wfd;
			rc = ftruncate(wfd, attr->st_size);
			close(wfd);
		}
		if (rc < 0)
			return -errno;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (utimensat(AT_FDCWD, p, ts, 0) < 0)
			return -errno;
	}
	return 0;
}

static bool is_times_flush(struct lfs_inode *i, const struct stat *attr, int to_set)
{
	struct stat st;
	if (to_set & ~(FUSE_SET_ATTR_CTIME | FUSE_SET_ATTR_MTIME))
		return false;
	inode_rdlock(i);
	int rc = stat_inode(i, &st);
	lfs_rw_unlock(&i->rw);
	return rc == 0 && st.st_mtim.tv_sec == attr->st_mtim.tv_sec &&
	       st.st_mtim.tv_nsec == attr->st_mtim.tv_nsec;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct lfs_inode *i = ino_to_inode(ino);
	struct stat st;
	/* With the writeback cache the kernel passes on the times it keeps
	 * itself (after an unlink, link or rename, at close): ctime cannot
	 * be set and an unchanged mtime changes nothing, so nothing is
	 * copied up for them. */
	if (!(to_set & ~FUSE_SET_ATTR_CTIME) || (lfs.writeback && is_times_flush(i, attr, to_set))) {
		reply_attr_of(req, i);
		return;
	}
	unsigned flags = COPYUP_DATA | COPYUP_ORIGIN;
	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size == 0)
		flags &= ~COPYUP_DATA;
	int rc = copy_up(i, flags);
	if (rc == 0) {
		inode_rdlock(i);
		rc = apply_setattr(i, attr, to_set, fi);
		if (rc == 0)
			rc = stat_inode(i, &st);
		lfs_rw_unlock(&i->rw);
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, lfs.timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct lfs_inode *i = ino_to_inode(ino);
	char buf[PATH_MAX + 1];
	inode_rdlock(i);
	ssize_t n = readlinkat(i->copies[0].fd, "", buf, sizeof buf - 1);
	int e = errno;
	lfs_rw_unlock(&i->rw);
	if (n < 0) {
		fuse_reply_err(req, e);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	(void)ino;
	char p[32];
	proc_path_of(lfs.stack.layers[0].root_fd, p, sizeof p);
	if (statvfs(p, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = lfs.name_max;
	fuse_reply_statfs(req, &sv);
}

/* Only reached without default_permissions: check against the merged
 * attributes, as the kernel's generic_permission would. */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct lfs_inode *i = ino_to_inode(ino);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat st;
	inode_rdlock(i);
	int rc = stat_inode(i, &st);
	lfs_rw_unlock(&i->rw);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if ((mask & W_OK) && lfs.stack.read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	mode_t bits;
	if (ctx->uid == 0) {
		bits = S_IRWXO;
		if ((mask & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111))
			bits &= ~(mode_t)S_IXOTH;
	} else if (ctx->uid == st.st_uid) {
		bits = (st.st_mode >> 6) & 7;
	} else if (ctx->gid == st.st_gid) {
		bits = (st.st_mode >> 3) & 7;
	} else {
		bits = st.st_mode & 7;
	}
	fuse_reply_err(req, ((mode_t)mask & 7 & ~bits) ? EACCES : 0);
}

void inode_ops_register(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = op_lookup;
	ops->forget = op_forget;
	ops->forget_multi = op_forget_multi;
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->readlink = op_readlink;
	ops->statfs = op_statfs;
	ops->access = op_access;
}
