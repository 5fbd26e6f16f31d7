/* upper.c - getting an object into the upper layer: copy-up of an inode
 * and, first, of every parent it needs (see cow/copyup.c for one object).
 *
 * Two writers of one lower file make one copy-up: the inode's write lock
 * serialises them and the second finds the work done.  Different files
 * copy up in parallel; a parent is locked only while it is copied itself.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cow/copyup.h"
#include "../layers/ino.h"
#include "../layers/xattr.h"

int upper_dir_fd(struct lfs_inode *dir)
{
	int fd = -EROFS;
	inode_rdlock(dir);
	if (inode_is_upper(dir))
		fd = dup(dir->copies[0].fd);
	lfs_rw_unlock(&dir->rw);
	if (fd == -1)
		return -errno;
	return fd;
}

/* The kernel marks an upper directory whose entries carry origins as
 * "impure" so that readdir knows to look them up; we keep it informed. */
void mark_impure(int dirfd)
{
	char v;
	if (ovl_getxattr(dirfd, "impure", &v, 1) == 1)
		return;
	char name[64];
	snprintf(name, sizeof name, "%simpure", stack_xattr_prefix(&lfs.stack));
	fd_setxattr(dirfd, name, "y", 1, 0);
}

int copy_up(struct lfs_inode *i, unsigned flags)
{
	if (!lfs.stack.has_upper || lfs.stack.read_only)
		return -EROFS;
	for (;;) {
		inode_rdlock(i);
		bool done = inode_is_upper(i);
		lfs_rw_unlock(&i->rw);
		if (done)
			return 0;

		char *name;
		struct lfs_inode *parent = inode_get_parent(i, &name);
		if (!parent) {
			free(name);
			return -ENOENT;
		}
		int rc = copy_up(parent, COPYUP_ORIGIN);
		int pfd = rc ? rc : upper_dir_fd(parent);
		if (pfd < 0) {
			inode_release(parent);
			free(name);
			return pfd;
		}

		bool attrs_changed = false;
		inode_wrlock(i);
		char *now_name;
		struct lfs_inode *now_parent = inode_get_parent(i, &now_name);
		bool moved = now_parent != parent || strcmp(now_name, name);
		if (now_parent)
			inode_release(now_parent);
		free(now_name);
		if (!moved && !inode_is_upper(i)) {
			struct stat st;
			rc = fstat(i->copies[0].fd, &st) < 0 ? -errno : 0;
			if (rc == 0) {
				unsigned f = flags;
				/* index=off: the kernel records no origin for a
				 * hard-linked lower file */
				if (!S_ISDIR(st.st_mode) && st.st_nlink > 1)
					f &= ~COPYUP_ORIGIN;
				if (S_ISDIR(st.st_mode))
					f &= ~COPYUP_DATA;
				int fd = copy_up_object(&lfs.stack, i->copies[0].fd, &st, pfd, name, f);
				if (fd >= 0)
					ids_copy_up(i->copies[0].layer, i->copies[0].fd, fd);
				if (fd >= 0) {
					inode_set_upper(i, fd);
					if (f & COPYUP_ORIGIN)
						mark_impure(pfd);
					/* index=off: a copied-up hard link is a new
					 * object; its other names keep the lower one */
					struct stat ust;
					if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && fstat(fd, &ust) == 0) {
						inode_rekey(i, map_ino(&lfs.stack, 0, ust.st_ino));
						attrs_changed = true;
					}
				} else {
					rc = fd;
				}
			}
		}
		if (rc == 0 && !moved && i->type == S_IFDIR && i->ncopies > 1)
			attrs_changed = true;
		lfs_rw_unlock(&i->rw);
		/* a directory that now merges shows nlink 1, a copied-up hard
		 * link its own number and count: the kernel's cached attributes
		 * must go (no page cache is touched, so this cannot wait on the
		 * request we are serving) */
		if (attrs_changed)
			inode_inval_attrs(i);
		close(pfd);
		inode_release(parent);
		free(name);
		if (rc || !moved)
			return rc;
		/* renamed while we waited: go again with the new parent */
	}
}

bool name_in_lower(struct lfs_inode *dir, const char *name)
{
	struct lookup_result r;
	bool found = false;

	inode_rdlock(dir);
	unsigned first = inode_is_upper(dir) ? 1 : 0;
	if (dir->ncopies > first &&
	    layers_lookup(&lfs.stack, dir->copies + first, dir->ncopies - first, name, &r) == 0) {
		found = true;
		lookup_result_free(&r);
	}
	lfs_rw_unlock(&dir->rw);
	return found;
}
