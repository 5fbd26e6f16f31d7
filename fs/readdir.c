/* readdir.c - opendir, readdir(plus), releasedir, fsyncdir.
 *
 * The merged listing is taken at the first readdir (and again on a rewind), so
 * offsets stay stable while the handle is open: offset N is entry N.
 * d_ino is the number stat shows; only entries whose number can differ
 * from their real one (upper directories over lower ones, copied-up
 * files in an impure directory) are looked up for it.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../layers/dirlist.h"
#include "../layers/ino.h"
#include "../layers/xattr.h"

struct dir_handle {
	struct dir_listing l;
	bool impure;  /* the upper copy says some entries carry origins */
	bool listed;  /* a listing was taken */
	pthread_mutex_t lock;
};

static int take_listing(struct lfs_inode *i, struct dir_handle *d)
{
	struct dir_listing l;
	inode_rdlock(i);
	int rc = list_merged_dir(&lfs.stack, i->copies, i->ncopies, &l);
	char v;
	bool impure = inode_is_upper(i) && ovl_getxattr(i->copies[0].fd, "impure", &v, 1) == 1;
	lfs_rw_unlock(&i->rw);
	if (rc)
		return rc;
	dir_listing_free(&d->l);
	d->l = l;
	d->impure = impure;
	return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d = calloc(1, sizeof *d);
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* the listing is taken at the first readdir: when the kernel serves
	 * the directory from its cache, none comes */
	(void)ino;
	pthread_mutex_init(&d->lock, NULL);
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static uint64_t entry_ino(struct lfs_inode *dir, struct dir_handle *d, const struct dir_entry *e)
{
	bool upper = stack_is_upper(&lfs.stack, e->layer);
	bool may_differ = upper && ((e->type == DT_DIR && e->in_lower_too) ||
				    (e->type != DT_DIR && d->impure));
	if (may_differ) {
		struct lookup_result r;
		inode_rdlock(dir);
		int rc = layers_lookup(&lfs.stack, dir->copies, dir->ncopies, e->name, &r);
		lfs_rw_unlock(&dir->rw);
		if (rc == 0) {
			uint64_t ino = merged_ino(&lfs.stack, &r, false);
			lookup_result_free(&r);
			return ino;
		}
	}
	return map_ino(&lfs.stack, e->layer, e->ino);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct lfs_inode *dir = ino_to_inode(ino);
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	int rc = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (off == 0 || !d->listed)
		rc = take_listing(dir, d); /* a rewind sees what changed */
	d->listed = true;
	/* position 0 is ".", 1 is "..", 2+k entry k; the offset handed
	 * out is the next position */
	for (off_t pos = off; rc == 0 && (size_t)pos < d->l.n + 2; pos++) {
		struct stat st = { 0 };
		const char *name;
		struct fuse_entry_param e;
		bool looked_up = false;

		if (pos < 2) {
			name = pos == 0 ? "." : "..";
			st.st_ino = dir->st_ino;
			if (pos == 1) {
				char *pname;
				struct lfs_inode *pi = inode_get_parent(dir, &pname);
				if (pi) {
					st.st_ino = pi->st_ino;
					inode_release(pi);
				}
				free(pname);
			}
			st.st_mode = S_IFDIR;
		} else {
			const struct dir_entry *de = &d->l.entries[pos - 2];
			name = de->name;
			st.st_mode = (mode_t)DTTOIF(de->type);
			if (plus) {
				struct name_hint h = { de->layer, de->also, de->nalso };
				int lr = do_lookup_hinted(dir, name, &h, &e);
				if (lr == 0) {
					looked_up = true;
					st = e.attr;
				}
			}
			if (!looked_up)
				st.st_ino = entry_ino(dir, d, de);
		}
		size_t want;
		if (plus) {
			if (!looked_up) {
				memset(&e, 0, sizeof e);
				e.attr = st;
			}
			want = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, pos + 1);
		} else {
			want = fuse_add_direntry(req, buf + used, size - used, name, &st, pos + 1);
		}
		if (want > size - used) {
			if (looked_up)
				inode_forget(ino_to_inode(e.ino), 1);
			break;
		}
		used += want;
	}
	pthread_mutex_unlock(&d->lock);
	if (rc && used == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	(void)ino;
	dir_listing_free(&d->l);
	pthread_mutex_destroy(&d->lock);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct lfs_inode *i = ino_to_inode(ino);
	(void)fi;
	if (lfs.stack.volatile_ || !inode_is_upper(i)) {
		fuse_reply_err(req, 0);
		return;
	}
	int fd = upper_dir_fd(i);
	int rc = 0;
	if (fd >= 0) {
		int rfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = rfd < 0 || (datasync ? fdatasync(rfd) : fsync(rfd)) < 0 ? errno : 0;
		if (rfd >= 0)
			close(rfd);
		close(fd);
	}
	fuse_reply_err(req, rc);
}

void readdir_ops_register(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = op_opendir;
	ops->readdir = op_readdir;
	ops->readdirplus = op_readdirplus;
	ops->releasedir = op_releasedir;
	ops->fsyncdir = op_fsyncdir;
}
