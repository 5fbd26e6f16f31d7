/* dir_ops.c - changing the namespace: create, mknod, mkdir, symlink,
 * link, unlink, rmdir, rename.
 *
 * The parent is copied up first (as the daemon), then the object is made
 * in the upper as the caller.  Removing or moving away a name that a
 * lower layer also has leaves a whiteout (atomically, RENAME_WHITEOUT);
 * a name only the upper had leaves nothing.  Moving a directory that
 * has lower copies records a redirect (kernel redirect_dir=on), or
 * fails with EXDEV under redirect_dir=off, as the kernel's default does.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../cow/copyup.h"
#include "../cow/workdir.h"
#include "../layers/dirlist.h"
#include "../layers/ino.h"
#include "../layers/whiteout.h"
#include "../layers/xattr.h"

/* What a name in a directory is, in the merged view. */
struct name_state {
	bool exists;
	bool upper;              /* top copy in the upper */
	bool has_lower_copies;   /* a directory merging lower copies */
	mode_t type;
	uint64_t st_ino;
};

static int probe_name(struct lfs_inode *dir, const char *name, struct name_state *ns)
{
	struct lookup_result r;
	memset(ns, 0, sizeof *ns);
	inode_rdlock(dir);
	int rc = layers_lookup(&lfs.stack, dir->copies, dir->ncopies, name, &r);
	lfs_rw_unlock(&dir->rw);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	ns->exists = true;
	ns->upper = stack_is_upper(&lfs.stack, r.copies[0].layer);
	ns->type = r.st.st_mode & S_IFMT;
	ns->has_lower_copies = S_ISDIR(r.st.st_mode) && (!ns->upper || r.ncopies > 1);
	ns->st_ino = merged_ino(&lfs.stack, &r, false);
	lookup_result_free(&r);
	return 0;
}

static bool is_upper_whiteout(int pfd, const char *name)
{
	struct stat st;
	return fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && is_whiteout_entry(pfd, name, &st);
}

/* How a new name is made, in a directory, as the caller. */
struct new_node {
	mode_t mode;             /* S_IFDIR, S_IFLNK, S_IFREG (create), other (mknod) */
	dev_t rdev;
	const char *link_target; /* symlink */
	int open_flags;          /* create */
	const char *link_src;    /* link(): /proc/self/fd/N of the object */
};

/* What create_name hands back of the new object: an O_PATH fd, and for
 * a create the open fd; -1 where not asked for or not made. */
struct made {
	int path_fd;
	int io_fd;
};

/* Makes the object; a create leaves its fd open in *io_fd. */
static int make_in(int dirfd, const char *name, const struct new_node *n, int *io_fd)
{
	int rc;
	if (n->link_src)
		rc = linkat(AT_FDCWD, n->link_src, dirfd, name, AT_SYMLINK_FOLLOW);
	else if (n->link_target)
		rc = symlinkat(n->link_target, dirfd, name);
	else if (S_ISDIR(n->mode))
		rc = mkdirat(dirfd, name, n->mode & 07777);
	else if (S_ISREG(n->mode) && n->open_flags) {
		rc = openat(dirfd, name, (n->open_flags | O_CREAT | O_EXCL | O_CLOEXEC) & ~O_TRUNC,
			    n->mode & 07777);
		if (rc >= 0)
			*io_fd = rc;
	} else
		rc = mknodat(dirfd, name, n->mode, n->rdev);
	return rc < 0 ? -errno : 0;
}

/* A new directory in the workdir, named into tmp, with this owner and
 * mode: its O_PATH fd, or -errno with nothing left behind. */
static int make_work_dir(char *tmp, uid_t uid, gid_t gid, mode_t mode)
{
	char p[32];
	workdir_tmpname(tmp);
	if (mkdirat(lfs.stack.work_fd, tmp, 0700) < 0)
		return -errno;
	int fd = openat(lfs.stack.work_fd, tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc = fd < 0 ? -errno : 0;
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	if (rc == 0 && (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0 || chmod(p, mode) < 0))
		rc = -errno;
	if (rc) {
		if (fd >= 0)
			close(fd);
		remove_tree_at(lfs.stack.work_fd, tmp);
		return rc;
	}
	return fd;
}

/* A directory in the workdir that stands in for the upper directory pfd:
 * its group, set-group-ID bit and default ACL, open to the caller, so that
 * what the caller makes in it comes out as it would in pfd. */
static int stage_dir_like(int pfd, char *sname)
{
	struct stat pst;
	char acl[4096];
	if (fstat(pfd, &pst) < 0)
		return -errno;
	int sfd = make_work_dir(sname, (uid_t)-1, pst.st_gid, 0777 | (pst.st_mode & S_ISGID));
	if (sfd < 0)
		return sfd;
	ssize_t al = fd_getxattr(pfd, "system.posix_acl_default", acl, sizeof acl);
	if (al > 0 && fd_setxattr(sfd, "system.posix_acl_default", acl, (size_t)al, 0) < 0) {
		int rc = -errno;
		close(sfd);
		remove_tree_at(lfs.stack.work_fd, sname);
		return rc;
	}
	return sfd;
}

/* A new directory hides whatever lower layers have under its name, and,
 * like the kernel with redirect_dir=on, any new directory in a merged
 * parent is marked opaque. */
static bool is_merged(struct lfs_inode *dir)
{
	inode_rdlock(dir);
	bool merged = dir->ncopies > 1;
	lfs_rw_unlock(&dir->rw);
	return merged;
}

static bool new_dir_is_opaque(struct lfs_inode *parent, bool was_whiteout)
{
	return was_whiteout || is_merged(parent);
}

static int mark_new_dir_opaque(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 ? -errno : set_opaque(&lfs.stack, fd);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Makes NAME in parent: copies the parent up, then makes the object as
 * the caller.  Over a whiteout the object is made whole (opaque included)
 * in a stand-in directory of the workdir and exchanged with the whiteout
 * in one step, so no crash shows the lower name again. */
static int create_name(fuse_req_t req, struct lfs_inode *parent, const char *name,
		       const struct new_node *n, struct made *made)
{
	int io_fd = -1;
	if (lfs.stack.read_only)
		return -EROFS;
	if (strlen(name) > lfs.name_max)
		return -ENAMETOOLONG;
	int rc = copy_up(parent, COPYUP_ORIGIN);
	if (rc)
		return rc;
	int pfd = upper_dir_fd(parent);
	if (pfd < 0)
		return pfd;
	bool was_wh = is_upper_whiteout(pfd, name);
	bool opaque = S_ISDIR(n->mode) && !n->link_target && !n->link_src &&
		      new_dir_is_opaque(parent, was_wh);
	char sname[24];
	int dirfd = was_wh ? stage_dir_like(pfd, sname) : pfd;
	if (dirfd < 0) {
		close(pfd);
		return dirfd;
	}
	struct saved_creds sc;
	rc = creds_enter(req, &sc);
	if (rc == 0) {
		rc = make_in(dirfd, name, n, &io_fd);
		creds_leave(&sc);
	}
	if (rc == 0 && !n->link_src)
		rc = ids_record_new(req, dirfd, name, n->link_target ? S_IFLNK | 0777 : n->mode);
	if (rc == 0 && opaque && (rc = mark_new_dir_opaque(dirfd, name)) && !was_wh)
		unlinkat(pfd, name, AT_REMOVEDIR);
	/* taken before the exchange below moves the name */
	if (rc == 0 && made && (made->path_fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		rc = -errno;
	if (was_wh) {
		if (rc == 0 && renameat2(dirfd, name, pfd, name, RENAME_EXCHANGE) < 0)
			rc = -errno;
		close(dirfd);
		remove_tree_at(lfs.stack.work_fd, sname);
	}
	close(pfd);
	if (made && rc == 0)
		made->io_fd = io_fd;
	else if (io_fd >= 0)
		close(io_fd);
	if (made && rc && made->path_fd >= 0) {
		close(made->path_fd);
		made->path_fd = -1;
	}
	return rc;
}

/* Makes a non-regular object (or an empty file for mknod) and replies
 * with its entry. */
static void make_node(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode,
		      dev_t rdev, const char *link_target)
{
	struct lfs_inode *parent = ino_to_inode(parent_ino);
	struct new_node n = { .mode = mode, .rdev = rdev, .link_target = link_target };
	struct made made = { -1, -1 };
	struct fuse_entry_param e;
	int rc = create_name(req, parent, name, &n, &made);
	if (rc == 0)
		rc = new_upper_entry(parent, name, made.path_fd, &e);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make_node(req, parent, name, mode, rdev, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | mode, 0, NULL);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_node(req, parent, name, S_IFLNK, 0, link);
}

static void op_create(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct lfs_inode *parent = ino_to_inode(parent_ino);
	int flags = handle_flags(fi->flags);
	struct new_node n = { .mode = S_IFREG | (mode & 07777), .open_flags = flags | O_CREAT };
	struct made made = { -1, -1 };
	struct fuse_entry_param e;
	int rc = create_name(req, parent, name, &n, &made);
	if (rc == 0)
		rc = new_upper_entry(parent, name, made.path_fd, &e);
	if (rc == 0) {
		/* the fd the caller's create opened is the handle's */
		struct lfs_inode *i = ino_to_inode(e.ino);
		inode_rdlock(i);
		rc = handle_wrap(i, made.io_fd, flags, fi);
		lfs_rw_unlock(&i->rw);
		made.io_fd = -1;
		if (rc)
			inode_forget(i, 1);
	}
	if (made.io_fd >= 0)
		close(made.io_fd);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		passthrough_reply_create(req, &e, fi);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent_ino, const char *newname)
{
	struct lfs_inode *i = ino_to_inode(ino), *np = ino_to_inode(newparent_ino);
	int rc = lfs.stack.read_only ? -EROFS : copy_up(i, COPYUP_DATA | COPYUP_ORIGIN);
	if (rc == 0)
		rc = copy_up(np, COPYUP_ORIGIN); /* before i's lock is held */
	if (rc == 0) {
		char src[32];
		/* held across the link: the fd must stay this object's */
		inode_rdlock(i);
		snprintf(src, sizeof src, "/proc/self/fd/%d", i->copies[0].fd);
		struct new_node n = { .mode = i->type, .link_src = src };
		rc = create_name(req, np, newname, &n, NULL);
		lfs_rw_unlock(&i->rw);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* the new name is the same inode: hand the kernel that one */
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	fill_entry_times(&e);
	inode_add_lookup(i);
	inode_rdlock(i);
	rc = stat_inode(i, &e.attr);
	lfs_rw_unlock(&i->rw);
	e.ino = inode_to_ino(i);
	if (rc) {
		inode_forget(i, 1);
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_entry(req, &e);
	}
}

/* Moves NAME out of the upper dir: renamed into the workdir and removed
 * there, leaving a whiteout in the same step when lower layers need one. */
/* For unlink and rmdir, the kernel makes the whiteout in the workdir and
 * swaps it in (so it takes no group from a set-group-ID parent); a
 * rename leaves the upper filesystem's own (RENAME_WHITEOUT): swapped_in
 * says which. */
static int remove_upper_name(int pfd, const char *name, bool whiteout, bool is_dir, bool swapped_in)
{
	char tmp[24];
	if (!whiteout && !is_dir)
		return unlinkat(pfd, name, 0) < 0 ? -errno : 0;
	if (!whiteout && unlinkat(pfd, name, AT_REMOVEDIR) == 0)
		return 0;
	workdir_tmpname(tmp);
	if (whiteout && swapped_in && lfs.stack.can_mknod_whiteout &&
	    mknodat(lfs.stack.work_fd, tmp, S_IFCHR | 0, makedev(0, 0)) == 0) {
		if (renameat2(lfs.stack.work_fd, tmp, pfd, name, RENAME_EXCHANGE) == 0) {
			remove_tree_at(lfs.stack.work_fd, tmp); /* the removed object now */
			return 0;
		}
		int e = errno;
		unlinkat(lfs.stack.work_fd, tmp, 0);
		if (e != EINVAL)
			return -e;
		/* an upper without RENAME_EXCHANGE: the way below */
	}
	unsigned flags = whiteout ? RENAME_WHITEOUT : 0;
	if (renameat2(pfd, name, lfs.stack.work_fd, tmp, flags) < 0) {
		if (!whiteout || (errno != EINVAL && errno != EPERM))
			return -errno;
		/* no RENAME_WHITEOUT here: move away, then mark */
		if (renameat2(pfd, name, lfs.stack.work_fd, tmp, 0) < 0)
			return -errno;
		int rc = make_whiteout(&lfs.stack, pfd, name);
		if (rc) {
			renameat2(lfs.stack.work_fd, tmp, pfd, name, RENAME_NOREPLACE);
			return rc;
		}
	}
	remove_tree_at(lfs.stack.work_fd, tmp);
	return 0;
}

static int do_remove(struct lfs_inode *parent, const char *name, bool rmdir)
{
	struct name_state ns;
	if (lfs.stack.read_only)
		return -EROFS;
	int rc = probe_name(parent, name, &ns);
	if (rc)
		return rc;
	if (!ns.exists)
		return -ENOENT;
	if (rmdir && ns.type != S_IFDIR)
		return -ENOTDIR;
	if (!rmdir && ns.type == S_IFDIR)
		return -EISDIR;
	struct lfs_inode *child = inode_find_named(ns.st_ino, parent, name);
	if (rmdir) {
		struct lookup_result r;
		if (child) {
			inode_rdlock(child);
			rc = merged_dir_is_empty(&lfs.stack, child->copies, child->ncopies);
			lfs_rw_unlock(&child->rw);
		} else {
			inode_rdlock(parent);
			rc = layers_lookup(&lfs.stack, parent->copies, parent->ncopies, name, &r);
			lfs_rw_unlock(&parent->rw);
			if (rc == 0) {
				rc = merged_dir_is_empty(&lfs.stack, r.copies, r.ncopies);
				lookup_result_free(&r);
			}
		}
	}
	int pfd = -1;
	if (rc == 0)
		rc = copy_up(parent, COPYUP_ORIGIN);
	if (rc == 0 && (pfd = upper_dir_fd(parent)) < 0)
		rc = pfd;
	if (rc == 0) {
		/* a name whose top copy was lower needs one anyway; only an
		 * upper one needs the second look below it */
		bool need_whiteout = !ns.upper || name_in_lower(parent, name);
		/* the child's lock keeps a copy-up of it from racing the
		 * removal; whether it is upper is decided under that lock */
		if (child)
			inode_wrlock(child);
		bool upper = child ? inode_is_upper(child) : ns.upper;
		if (upper)
			rc = remove_upper_name(pfd, name, need_whiteout, rmdir, true);
		else
			rc = make_whiteout(&lfs.stack, pfd, name);
		/* an open file of that name lives on by its fds alone */
		if (child && rc == 0)
			child->pinned = true;
		if (child)
			lfs_rw_unlock(&child->rw);
	}
	if (pfd >= 0)
		close(pfd);
	if (child)
		inode_release(child);
	return rc;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -do_remove(ino_to_inode(parent), name, false));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -do_remove(ino_to_inode(parent), name, true));
}

/* ---- rename ---- */

/* The path of a directory's first lower copy inside its layer ("/a/b"),
 * which is what a redirect names. */
static int lower_path_of(struct lfs_inode *i, char *buf, size_t len)
{
	char p[32], full[PATH_MAX], root[PATH_MAX];
	inode_rdlock(i);
	unsigned k = inode_is_upper(i) ? 1 : 0;
	if (k >= i->ncopies) {
		lfs_rw_unlock(&i->rw);
		return -ENOENT;
	}
	snprintf(p, sizeof p, "/proc/self/fd/%d", i->copies[k].fd);
	ssize_t n = readlink(p, full, sizeof full - 1);
	snprintf(p, sizeof p, "/proc/self/fd/%d", lfs.stack.layers[i->copies[k].layer].root_fd);
	ssize_t m = readlink(p, root, sizeof root - 1);
	lfs_rw_unlock(&i->rw);
	if (n < 0 || m < 0)
		return -EXDEV;
	full[n] = root[m] = '\0';
	if (m == 1)
		m = 0; /* a layer at "/" */
	if (strncmp(full, root, (size_t)m) || full[m] != '/')
		return -EXDEV;
	if (snprintf(buf, len, "%s", full + m) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* The kernel's redirect_max: a longer redirect makes the rename EXDEV. */
#define REDIRECT_MAX 256

/* What a moved directory's redirect says: its lower path, or within the
 * same parent just the lower name (unless it already has an absolute
 * one).  0, or -EXDEV when the kernel would refuse it. */
static int redirect_target(struct lfs_inode *dir, bool samedir, char *target, size_t len)
{
	char path[PATH_MAX];
	int rc = lower_path_of(dir, path, sizeof path);
	if (rc)
		return rc;
	const char *t = path;
	if (samedir) {
		char cur[PATH_MAX];
		inode_rdlock(dir);
		int has = inode_is_upper(dir) ? read_redirect(dir->copies[0].fd, cur, sizeof cur) : 0;
		lfs_rw_unlock(&dir->rw);
		if (has <= 0 || cur[0] != '/') {
			const char *slash = strrchr(path, '/');
			t = slash ? slash + 1 : path;
		}
	}
	if (strlen(t) > REDIRECT_MAX)
		return -EXDEV;
	snprintf(target, len, "%s", t);
	return 0;
}

static int set_dir_redirect(struct lfs_inode *dir, const char *target)
{
	inode_rdlock(dir);
	int rc = set_redirect(&lfs.stack, dir->copies[0].fd, target);
	lfs_rw_unlock(&dir->rw);
	return rc;
}

/* Moves NAME of the upper dir pfd to NEWNAME of npfd, leaving a whiteout
 * at the old name when lower layers have it.  What the upper holds at the
 * destination, a whiteout or a directory with only whiteouts, is swapped
 * out in the same step (RENAME_EXCHANGE) and then removed from the old
 * name, so no crash shows the lower destination again.  A directory of
 * the upper alone (dst_pure_upper) is replaced by the rename itself, which
 * also checks that it is empty, as the kernel leaves it to the upper fs. */
static int rename_into_place(int pfd, const char *name, int npfd, const char *newname,
			     bool need_whiteout, bool dst_pure_upper)
{
	struct stat st;
	bool dst_in_upper = fstatat(npfd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0;
	bool dst_whiteout = dst_in_upper && is_whiteout_entry(npfd, newname, &st);

	if (dst_in_upper && (dst_whiteout || (S_ISDIR(st.st_mode) && !dst_pure_upper))) {
		if (renameat2(pfd, name, npfd, newname, RENAME_EXCHANGE) < 0)
			return -errno;
		if (dst_whiteout)
			return need_whiteout || unlinkat(pfd, name, 0) == 0 ? 0 : -errno;
		return remove_upper_name(pfd, name, need_whiteout, true, false);
	}
	unsigned rflags = need_whiteout && lfs.stack.can_mknod_whiteout ? RENAME_WHITEOUT : 0;
	if (renameat2(pfd, name, npfd, newname, rflags) < 0)
		return -errno;
	if (need_whiteout && !rflags) {
		int rc = make_whiteout(&lfs.stack, pfd, name);
		if (rc) {
			/* put it back rather than show the lower name again */
			renameat2(npfd, newname, pfd, name, RENAME_NOREPLACE);
			return rc;
		}
	}
	return 0;
}

static bool dir_has_entries(int dir_opath_fd)
{
	int fd = reopen_fd(dir_opath_fd, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return false;
	char buf[4096];
	bool any = false;
	for (long n; !any && (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0;)
		for (long off = 0; off < n && !any;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			any = strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
		}
	close(fd);
	return any;
}

/* An upper directory that is empty in the merged view but holds
 * whiteouts, about to be renamed over: as the kernel does first
 * (ovl_clear_empty), it is swapped for an empty opaque directory with
 * its mode, owner and xattrs, and the old one goes.  Done before the
 * redirects are set, so a rename that fails there leaves what the
 * kernel's leaves. */
static int clear_whiteouts_dir(int npfd, const char *newname)
{
	int dfd = openat(npfd, newname, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno; /* only lower copies */
	struct stat st;
	int rc = fstat(dfd, &st) < 0 ? -errno : 0;
	if (rc || !dir_has_entries(dfd)) {
		close(dfd);
		return rc;
	}
	char tmp[24];
	int nfd = make_work_dir(tmp, st.st_uid, st.st_gid, st.st_mode & 07777);
	if (nfd < 0) {
		close(dfd);
		return nfd;
	}
	rc = copy_xattrs(dfd, nfd);
	if (rc == 0)
		rc = set_opaque(&lfs.stack, nfd);
	if (rc == 0 && renameat2(lfs.stack.work_fd, tmp, npfd, newname, RENAME_EXCHANGE) < 0)
		rc = -errno;
	/* the old directory when exchanged, else the unused new one */
	remove_tree_at(lfs.stack.work_fd, tmp);
	close(nfd);
	close(dfd);
	return rc;
}

static int mark_opaque(struct lfs_inode *dir)
{
	inode_rdlock(dir);
	int rc = set_opaque(&lfs.stack, dir->copies[0].fd);
	lfs_rw_unlock(&dir->rw);
	return rc;
}

static bool has_origin(struct lfs_inode *i)
{
	char v;
	inode_rdlock(i);
	bool has = ovl_getxattr(i->copies[0].fd, "origin", &v, 0) >= 0;
	lfs_rw_unlock(&i->rw);
	return has;
}

static int do_rename(struct lfs_inode *p, const char *name, struct lfs_inode *np, const char *newname,
		     unsigned flags)
{
	struct name_state src, dst;
	if (lfs.stack.read_only)
		return -EROFS;
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (strlen(newname) > lfs.name_max)
		return -ENAMETOOLONG;
	int rc = probe_name(p, name, &src);
	if (rc == 0 && !src.exists)
		rc = -ENOENT;
	if (rc == 0)
		rc = probe_name(np, newname, &dst);
	if (rc)
		return rc;
	if ((flags & RENAME_NOREPLACE) && dst.exists)
		return -EEXIST;
	if ((flags & RENAME_EXCHANGE) && !dst.exists)
		return -ENOENT;
	/* two names of one object: rename(2) does nothing.  Two names of a
	 * lower hard link are two objects to the kernel (index=off): it
	 * copies them up and goes on, and so do we. */
	if (dst.exists && src.st_ino == dst.st_ino &&
	    ((p == np && !strcmp(name, newname)) || src.upper || src.type == S_IFDIR))
		return 0;
	if (dst.exists && !(flags & RENAME_EXCHANGE)) {
		if (src.type == S_IFDIR && dst.type != S_IFDIR)
			return -ENOTDIR;
		if (src.type != S_IFDIR && dst.type == S_IFDIR)
			return -EISDIR;
	}
	bool src_moves_lower_dir = src.type == S_IFDIR && src.has_lower_copies;
	bool dst_moves_lower_dir = (flags & RENAME_EXCHANGE) && dst.type == S_IFDIR && dst.has_lower_copies;
	if ((src_moves_lower_dir || dst_moves_lower_dir) && p != np && !lfs.stack.redirect_dir)
		return -EXDEV;
	if ((src_moves_lower_dir || dst_moves_lower_dir) && !lfs.stack.redirect_dir &&
	    strcmp(name, newname))
		return -EXDEV;

	struct lfs_inode *si = inode_find_named(src.st_ino, p, name);
	struct lfs_inode *di = dst.exists ? inode_find_named(dst.st_ino, np, newname) : NULL;
	int pfd = -1, npfd = -1;
	bool samedir = p == np;
	char src_redirect[REDIRECT_MAX + 1], dst_redirect[REDIRECT_MAX + 1];
	if (!si) {
		/* the kernel knows the source it renames; be safe anyway */
		rc = -ESTALE;
		goto out;
	}
	if (dst.exists && !di) {
		rc = -ESTALE;
		goto out;
	}
	/* a directory with no lower copy and no origin is what the kernel
	 * calls pure upper: its emptiness is the upper rename's to check,
	 * after the copy-ups and redirects below, as the kernel orders it */
	bool dst_pure_upper = dst.exists && dst.type == S_IFDIR && !dst.has_lower_copies &&
			      !has_origin(di);
	if (dst.exists && dst.type == S_IFDIR && !(flags & RENAME_EXCHANGE) && !dst_pure_upper) {
		inode_rdlock(di);
		rc = merged_dir_is_empty(&lfs.stack, di->copies, di->ncopies);
		lfs_rw_unlock(&di->rw);
		if (rc)
			goto out;
	}
	/* The redirects' paths are taken now; one too long fails the rename
	 * only when it is set, after the copy-ups and the source's redirect,
	 * as the kernel orders it (what it copied up stays copied up). */
	int src_redirect_rc = src_moves_lower_dir ?
		redirect_target(si, samedir, src_redirect, sizeof src_redirect) : 0;
	int dst_redirect_rc = dst_moves_lower_dir ?
		redirect_target(di, samedir, dst_redirect, sizeof dst_redirect) : 0;
	rc = copy_up(si, COPYUP_DATA | COPYUP_ORIGIN);
	if (rc == 0 && (flags & RENAME_EXCHANGE))
		rc = copy_up(di, COPYUP_DATA | COPYUP_ORIGIN);
	if (rc == 0)
		rc = copy_up(p, COPYUP_ORIGIN);
	if (rc == 0)
		rc = copy_up(np, COPYUP_ORIGIN);
	if (rc)
		goto out;
	pfd = upper_dir_fd(p);
	npfd = upper_dir_fd(np);
	if (pfd < 0 || npfd < 0) {
		rc = pfd < 0 ? pfd : npfd;
		goto out;
	}
	if (dst.exists && dst.type == S_IFDIR && !(flags & RENAME_EXCHANGE) && !dst_pure_upper &&
	    (rc = clear_whiteouts_dir(npfd, newname)))
		goto out;
	/* Each side in turn, source first, as the kernel: a directory with
	 * lower copies gets its redirect; one of the upper alone, moved into
	 * a merged parent, must not merge with what a lower has under its
	 * new name, so it is marked opaque (whether or not a lower has that
	 * name now). */
	if (src_moves_lower_dir) {
		if ((rc = src_redirect_rc) || (rc = set_dir_redirect(si, src_redirect)))
			goto out;
	} else if (src.type == S_IFDIR && is_merged(np) && (rc = mark_opaque(si))) {
		goto out;
	}
	if (dst_moves_lower_dir) {
		if ((rc = dst_redirect_rc) || (rc = set_dir_redirect(di, dst_redirect)))
			goto out;
	} else if ((flags & RENAME_EXCHANGE) && dst.type == S_IFDIR && is_merged(p) &&
		   (rc = mark_opaque(di))) {
		goto out;
	}

	if (flags & RENAME_EXCHANGE) {
		if (renameat2(pfd, name, npfd, newname, RENAME_EXCHANGE) < 0)
			rc = -errno;
	} else {
		rc = rename_into_place(pfd, name, npfd, newname, name_in_lower(p, name), dst_pure_upper);
	}
	if (rc == 0 && !samedir && (src.has_lower_copies || has_origin(si)))
		mark_impure(npfd);
	if (rc == 0 && di && !(flags & RENAME_EXCHANGE))
		inode_pin(di);
	if (rc == 0) {
		inode_set_name(si, np, newname);
		if ((flags & RENAME_EXCHANGE) && di)
			inode_set_name(di, p, name);
	}
out:
	/* a failed rename can still have touched the parents (ext4 sets the
	 * source dir's times when RENAME_WHITEOUT fails; a target of only
	 * whiteouts was swapped for an empty dir before a redirect failed);
	 * the kernel keeps their attributes after a failure, so they must go */
	if (rc) {
		inode_inval_attrs(p);
		if (np != p)
			inode_inval_attrs(np);
	}
	if (pfd >= 0)
		close(pfd);
	if (npfd >= 0)
		close(npfd);
	if (si)
		inode_release(si);
	if (di)
		inode_release(di);
	return rc;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fuse_reply_err(req, -do_rename(ino_to_inode(parent), name, ino_to_inode(newparent), newname, flags));
}

void dir_ops_register(struct fuse_lowlevel_ops *ops)
{
	ops->mknod = op_mknod;
	ops->mkdir = op_mkdir;
	ops->symlink = op_symlink;
	ops->create = op_create;
	ops->link = op_link;
	ops->unlink = op_unlink;
	ops->rmdir = op_rmdir;
	ops->rename = op_rename;
}
