/* apply.c - `layer-tool apply`: an OCI layer unpacked into a directory
 * that layerfs (or the kernel) can use as a lower layer.
 *
 * Every archive is taken as hostile.  Names are checked before anything
 * is made (no absolute names, no "..", no over-long components); every
 * file is made through a directory fd of a staging directory, beside the
 * target, reached with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) or
 * one O_NOFOLLOW component at a time, so no symlink an earlier entry made
 * can lead out; a hard link must name an earlier entry; device nodes need
 * root.  Only when the whole archive is good is the staging directory
 * renamed onto DIR; on any error it is removed and DIR is as it was.
 *
 * OCI markers become the overlay's: ".wh.NAME" a 0/0 character device
 * (the kernel's xattr form where mknod is refused), ".wh..wh..opq" the
 * opaque xattr on its directory -- both through layers/whiteout.c.
 * Overlay-private xattrs in an archive are dropped: a layer must not
 * forge redirects or markers.
 */
#define _GNU_SOURCE
#include "lt.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cow/workdir.h"
#include "layers/whiteout.h"
#include "layers/xattr.h"

#define RDBUF (256 * 1024)

struct reader {
	int fd;
	EVP_MD_CTX *md;
	char *buf;
	uint64_t nread;
	int err;
};

struct dirmeta {
	char *rel;
	mode_t mode;
	struct timespec mtime;
};

struct actx {
	const struct apply_opts *o;
	struct archive *a;
	int stagefd;
	bool root;
	struct layer_stack wst; /* only what layers/whiteout.c asks: namespace, mknod */
	struct dirmeta *dirs;
	size_t ndirs;
	char *cur_parent; /* cache: the last parent opened */
	int cur_parentfd;
	bool warned_private;
	bool root_seen; /* the archive has an entry for its root */
	char *buf;
};

static la_ssize_t read_cb(struct archive *a, void *cd, const void **out)
{
	struct reader *r = cd;
	(void)a;
	for (;;) {
		ssize_t n = read(r->fd, r->buf, RDBUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r->err = errno;
			archive_set_error(a, errno, "read: %s", strerror(errno));
			return -1;
		}
		if (r->md && n > 0)
			EVP_DigestUpdate(r->md, r->buf, (size_t)n);
		r->nread += (uint64_t)n;
		*out = r->buf;
		return n;
	}
}

/* Checks a name from the archive and writes its normal form ("a/b/c",
 * "" for the root) into out.  Returns NULL or what is wrong with it. */
static const char *normalize(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	const char *p = in;
	if (!in || !*in)
		return "empty name";
	if (*p == '/')
		return "absolute name";
	size_t len;
	const char *cp;
	while ((cp = next_component(&p, &len))) {
		if (len == 1 && cp[0] == '.')
			continue;
		if (len == 2 && cp[0] == '.' && cp[1] == '.')
			return "'..' in name";
		if (len > NAME_MAX)
			return "name component too long";
		if (o + len + 2 > outsz)
			return "name too long";
		if (o)
			out[o++] = '/';
		memcpy(out + o, cp, len);
		o += len;
	}
	out[o] = '\0';
	return NULL;
}

/* Splits "a/b/c" into parent "a/b" (in place) and returns "c". */
static char *split_last(char *rel)
{
	char *s = strrchr(rel, '/');
	if (!s) {
		memmove(rel + 1, rel, strlen(rel) + 1);
		rel[0] = '\0';
		return rel + 1;
	}
	*s = '\0';
	return s + 1;
}

/* Opens (creating what is missing, mode 0755) directory rel of the stage,
 * one O_NOFOLLOW component at a time.  Returns an O_PATH fd or -errno;
 * -ELOOP / -ENOTDIR when a component is a symlink or no directory. */
static int open_parent(struct actx *c, const char *rel, bool create)
{
	if (c->cur_parent && !strcmp(c->cur_parent, rel)) {
		int d = fcntl(c->cur_parentfd, F_DUPFD_CLOEXEC, 0);
		return d < 0 ? -errno : d;
	}
	int fd = open_beneath(c->stagefd, rel, O_PATH | O_DIRECTORY, 0);
	if (fd == -ENOENT && create) {
		fd = fcntl(c->stagefd, F_DUPFD_CLOEXEC, 0);
		const char *p = rel;
		char comp[NAME_MAX + 1];
		while (fd >= 0 && *p) {
			const char *e = strchr(p, '/');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			memcpy(comp, p, len);
			comp[len] = '\0';
			p += len + (e ? 1 : 0);
			int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd < 0 && errno == ENOENT) {
				if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
					nfd = -errno;
					close(fd);
					return nfd;
				}
				nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			}
			int e2 = errno;
			close(fd);
			fd = nfd < 0 ? -e2 : nfd;
		}
	}
	if (fd == -ENOTDIR)
		fd = -ELOOP; /* O_NOFOLLOW|O_DIRECTORY on a symlink */
	if (fd >= 0) {
		free(c->cur_parent);
		if (c->cur_parentfd >= 0)
			close(c->cur_parentfd);
		c->cur_parent = lt_xstrdup(rel);
		c->cur_parentfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	}
	return fd;
}

static void forget_parent(struct actx *c)
{
	free(c->cur_parent);
	c->cur_parent = NULL;
	if (c->cur_parentfd >= 0)
		close(c->cur_parentfd);
	c->cur_parentfd = -1;
}

static int entry_err(struct actx *c, const char *name, const char *fmt, const char *detail)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, detail);
	return lt_err("%s: entry '%s': %s", c->o->what, name, msg);
}

static int set_xattrs(struct actx *c, struct archive_entry *e, int fd, bool opath, const char *name)
{
	const char *xn;
	const void *xv;
	size_t xl;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &xn, &xv, &xl) == ARCHIVE_OK) {
		if (xattr_is_private(xn)) {
			if (!c->warned_private)
				lt_warn("%s: overlay-private xattrs in the layer are dropped (first: '%s' on '%s')",
					c->o->what, xn, name);
			c->warned_private = true;
			continue;
		}
		int r = opath ? fd_setxattr(fd, xn, xv, xl, 0) : fsetxattr(fd, xn, xv, xl, 0);
		if (r < 0) {
			/* a user.* xattr on a symlink or a trusted.* one as a
			 * user cannot be kept: the kernel refuses, like tar */
			if ((errno == EPERM && (!c->root || !strncmp(xn, "user.", 5))) || errno == ENOTSUP)
				continue;
			char d[300];
			snprintf(d, sizeof d, "%s: %s", xn, strerror(errno));
			return entry_err(c, name, "setxattr %s", d);
		}
	}
	return 0;
}

static int set_owner(struct actx *c, struct archive_entry *e, int fd, const char *name)
{
	if (!c->root)
		return 0;
	if (fchownat(fd, "", (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), AT_EMPTY_PATH) < 0)
		return entry_err(c, name, "chown: %s", strerror(errno));
	return 0;
}

static int set_times(struct actx *c, struct archive_entry *e, int fd, const char *name)
{
	struct timespec ts[2];
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	ts[0] = ts[1];
	char p[40];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	/* through the fd's own object: a symlink's own times */
	if (utimensat(AT_FDCWD, p, ts, 0) < 0 && errno != ENOENT)
		return entry_err(c, name, "utimes: %s", strerror(errno));
	return 0;
}

static int write_data(struct actx *c, int fd, const char *name)
{
	for (;;) {
		la_ssize_t n = archive_read_data(c->a, c->buf, RDBUF);
		if (n == 0)
			return 0;
		if (n < 0)
			return entry_err(c, name, "%s", archive_error_string(c->a) ? archive_error_string(c->a) : "read error");
		int r = write_all(fd, c->buf, (size_t)n);
		if (r)
			return entry_err(c, name, "write: %s", strerror(-r));
	}
}

/* Owner, xattrs, mode (chmod: not for symlinks) and times of a symlink,
 * device or FIFO just made as name in pfd, through an O_PATH fd (*fd). */
static int finish_special(struct actx *c, struct archive_entry *e, int pfd, const char *name, const char *raw,
			  bool chmod, int *fd)
{
	*fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return entry_err(c, raw, "open: %s", strerror(errno));
	int rc = set_owner(c, e, *fd, raw);
	if (!rc)
		rc = set_xattrs(c, e, *fd, true, raw);
	if (!rc && chmod && fchmodat(pfd, name, archive_entry_perm(e) & 07777, 0) < 0)
		rc = entry_err(c, raw, "chmod: %s", strerror(errno));
	if (!rc)
		rc = set_times(c, e, *fd, raw);
	return rc;
}

static int apply_entry(struct actx *c, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	char rel[PATH_MAX + NAME_MAX + 2];
	const char *bad = normalize(raw, rel, sizeof rel - 1);
	if (bad)
		return entry_err(c, raw ? raw : "", "%s", bad);
	mode_t type = archive_entry_filetype(e);
	const char *hardlink = archive_entry_hardlink(e);
	mode_t perm = archive_entry_perm(e) & 07777;

	if (!*rel) {
		if (hardlink || type != AE_IFDIR)
			return entry_err(c, raw, "%s", "the root is not a directory");
		if (set_owner(c, e, c->stagefd, raw) || set_xattrs(c, e, c->stagefd, false, raw))
			return -1;
		c->root_seen = true;
		c->dirs = lt_xrealloc(c->dirs, (c->ndirs + 1) * sizeof *c->dirs);
		c->dirs[c->ndirs++] = (struct dirmeta){ lt_xstrdup(""), perm,
			{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) } };
		return 0;
	}
	char full[sizeof rel];
	strcpy(full, rel);
	char *name = split_last(rel);
	const char *parent = rel;
	int pfd = open_parent(c, parent, true);
	if (pfd == -ELOOP || pfd == -EXDEV)
		return entry_err(c, raw, "%s", "its parent is a symlink or not a directory");
	if (pfd < 0)
		return entry_err(c, raw, "parent: %s", strerror(-pfd));
	int rc = 0, fd = -1;

	if (!c->o->aufs && !strcmp(name, AUFS_OPQ_NAME)) {
		if (set_opaque(&c->wst, pfd))
			rc = entry_err(c, raw, "setting opaque xattr: %s", strerror(errno));
		goto out;
	}
	if (!c->o->aufs && is_aufs_marker_name(name)) {
		const char *hidden = name + AUFS_WH_PREFIX_LEN;
		struct stat st;
		if (!*hidden || !strcmp(hidden, ".") || !strcmp(hidden, ".."))
			rc = entry_err(c, raw, "%s", "whiteout of no name");
		else if (fstatat(pfd, hidden, &st, AT_SYMLINK_NOFOLLOW) == 0)
			; /* this layer has the name itself: it hides the lower one already */
		else if ((rc = make_whiteout(&c->wst, pfd, hidden)) != 0)
			rc = entry_err(c, raw, "making whiteout: %s", strerror(-rc));
		goto out;
	}

	struct stat old;
	bool exists = fstatat(pfd, name, &old, AT_SYMLINK_NOFOLLOW) == 0;
	if (exists && S_ISDIR(old.st_mode) && !(type == AE_IFDIR && !hardlink)) {
		rc = entry_err(c, raw, "%s", "would replace a directory");
		goto out;
	}
	if (exists && !S_ISDIR(old.st_mode) && unlinkat(pfd, name, 0) < 0) {
		rc = entry_err(c, raw, "unlink of the earlier entry: %s", strerror(errno));
		goto out;
	}

	if (hardlink) {
		char trel[sizeof rel];
		bad = normalize(hardlink, trel, sizeof trel - 1);
		if (bad) {
			rc = entry_err(c, raw, "hard link target: %s", bad);
			goto out;
		}
		char *tname = split_last(trel);
		int tpfd = *tname ? open_beneath(c->stagefd, trel, O_PATH | O_DIRECTORY, 0) : -ENOENT;
		struct stat tst;
		if (tpfd < 0 || fstatat(tpfd, tname, &tst, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = entry_err(c, raw, "hard link to '%s', which is no earlier entry", hardlink);
		} else if (S_ISDIR(tst.st_mode)) {
			rc = entry_err(c, raw, "hard link to the directory '%s'", hardlink);
		} else if (linkat(tpfd, tname, pfd, name, 0) < 0) {
			rc = entry_err(c, raw, "link: %s", strerror(errno));
		}
		if (tpfd >= 0)
			close(tpfd);
		goto out;
	}

	switch (type) {
	case AE_IFREG:
		fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = entry_err(c, raw, "create: %s", strerror(errno));
			break;
		}
		rc = write_data(c, fd, raw);
		if (!rc)
			rc = set_owner(c, e, fd, raw);
		if (!rc)
			rc = set_xattrs(c, e, fd, false, raw);
		if (!rc && fchmod(fd, perm) < 0)
			rc = entry_err(c, raw, "chmod: %s", strerror(errno));
		if (!rc)
			rc = set_times(c, e, fd, raw);
		break;
	case AE_IFDIR:
		if (!exists && mkdirat(pfd, name, 0700) < 0) {
			rc = entry_err(c, raw, "mkdir: %s", strerror(errno));
			break;
		}
		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = entry_err(c, raw, "open: %s", strerror(errno));
			break;
		}
		if (!exists)
			fchmod(fd, 0700);
		rc = set_owner(c, e, fd, raw);
		if (!rc)
			rc = set_xattrs(c, e, fd, false, raw);
		c->dirs = lt_xrealloc(c->dirs, (c->ndirs + 1) * sizeof *c->dirs);
		c->dirs[c->ndirs++] = (struct dirmeta){ lt_xstrdup(full), perm,
			{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) } };
		break;
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target) {
			rc = entry_err(c, raw, "%s", "symlink without a target");
			break;
		}
		if (symlinkat(target, pfd, name) < 0) {
			rc = entry_err(c, raw, "symlink: %s", strerror(errno));
			break;
		}
		rc = finish_special(c, e, pfd, name, raw, false, &fd);
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO: {
		if (type != AE_IFIFO && !c->root) {
			rc = entry_err(c, raw, "%s", "a device node, and only root may make one");
			break;
		}
		dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
		if (mknodat(pfd, name, type | 0600, dev) < 0) {
			rc = entry_err(c, raw, "mknod: %s", strerror(errno));
			break;
		}
		rc = finish_special(c, e, pfd, name, raw, true, &fd);
		break;
	}
	default:
		rc = lt_err("%s: entry '%s': unsupported entry type", c->o->what, raw);
		break;
	}
out:
	if (fd >= 0)
		close(fd);
	close(pfd);
	return rc;
}

/* Modes and times of directories go last (children change a directory's
 * mtime; a read-only mode would stop children being made), deepest first. */
static int finish_dirs(struct actx *c)
{
	for (size_t i = c->ndirs; i-- > 0;) {
		struct dirmeta *d = &c->dirs[i];
		int fd = *d->rel ? open_beneath(c->stagefd, d->rel, O_RDONLY | O_DIRECTORY, 0)
				 : fcntl(c->stagefd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return lt_err("%s: directory '%s': %s", c->o->what, d->rel, strerror(fd < 0 ? -fd : 0));
		struct timespec ts[2] = { d->mtime, d->mtime };
		int rc = 0;
		if (fchmod(fd, d->mode) < 0 || futimens(fd, ts) < 0)
			rc = lt_err("%s: directory '%s': %s", c->o->what, d->rel, strerror(errno));
		close(fd);
		if (rc)
			return rc;
	}
	return 0;
}

static int dir_state(const char *dir, bool *exists)
{
	struct stat st;
	*exists = false;
	if (lstat(dir, &st) < 0)
		return errno == ENOENT ? 0 : lt_err("%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return lt_err("%s: exists and is not a directory", dir);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return lt_err("%s: %s", dir, strerror(errno));
	char **names;
	long n = read_sorted_names(fd, &names);
	close(fd);
	if (n < 0)
		return lt_err("%s: %s", dir, strerror((int)-n));
	names_free(names, n);
	if (n > 0)
		return lt_err("%s: directory is not empty", dir);
	*exists = true;
	return 0;
}

int apply_layer_fd(int infd, const char *dir, const struct apply_opts *o)
{
	struct actx c;
	struct reader rd = { .fd = infd };
	char *dcopy = lt_xstrdup(dir), *bcopy = lt_xstrdup(dir);
	const char *pdir = dirname(dcopy), *base = basename(bcopy);
	char stage[NAME_MAX + 1];
	int parentfd = -1, rc = -1;
	bool exists = false, staged = false;

	memset(&c, 0, sizeof c);
	c.o = o;
	c.stagefd = -1;
	c.cur_parentfd = -1;
	c.root = geteuid() == 0;
	if (!strcmp(base, "/") || !strcmp(base, ".") || !strcmp(base, "..")) {
		lt_err("%s: give a directory by a name of its own", dir);
		goto out;
	}
	if (dir_state(dir, &exists))
		goto out;
	parentfd = open(pdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (parentfd < 0) {
		lt_err("%s: %s", pdir, strerror(errno));
		goto out;
	}
	for (int tries = 0;; tries++) {
		unsigned r = 0;
		if (getrandom(&r, sizeof r, 0) < 0)
			r = (unsigned)getpid() + (unsigned)tries;
		snprintf(stage, sizeof stage, ".%.200s.layer-tool-%08x", base, r);
		if (mkdirat(parentfd, stage, 0700) == 0)
			break;
		if (errno != EEXIST || tries > 100) {
			lt_err("%s/%s: mkdir: %s", pdir, stage, strerror(errno));
			goto out;
		}
	}
	staged = true;
	c.stagefd = openat(parentfd, stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c.stagefd < 0) {
		lt_err("%s/%s: %s", pdir, stage, strerror(errno));
		goto out;
	}
	/* the overlay namespace we may write: trusted as root, else user */
	c.wst.work_fd = -1;
	c.wst.can_mknod_whiteout = true;
	c.wst.userxattr = fd_setxattr(c.stagefd, "trusted.overlay.layer-tool-probe", "", 0, 0) < 0;
	if (!c.wst.userxattr)
		fd_removexattr(c.stagefd, "trusted.overlay.layer-tool-probe");

	rd.buf = lt_xmalloc(RDBUF);
	c.buf = lt_xmalloc(RDBUF);
	if (o->want_digest) {
		rd.md = EVP_MD_CTX_new();
		if (!rd.md || !EVP_DigestInit_ex(rd.md, EVP_sha256(), NULL)) {
			lt_err("sha256: cannot initialise OpenSSL digest");
			goto out;
		}
	}
	c.a = archive_read_new();
	archive_read_support_format_tar(c.a);
	archive_read_support_format_gnutar(c.a);
	archive_read_support_filter_all(c.a);
	if (archive_read_open(c.a, &rd, NULL, read_cb, NULL) != ARCHIVE_OK) {
		lt_err("%s: %s", o->what, archive_error_string(c.a));
		goto out;
	}
	progress_start("apply");
	uint64_t n = 0;
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(c.a, &e);
		if (r == ARCHIVE_EOF)
			break;
		/* a warning here is a malformed header libarchive skipped over */
		if (r != ARCHIVE_OK) {
			lt_err("%s: %s", o->what, archive_error_string(c.a) ? archive_error_string(c.a) : "bad archive");
			goto out;
		}
		if (apply_entry(&c, e))
			goto out;
		progress_tick(++n, rd.nread);
	}
	if (o->want_digest) {
		la_ssize_t k;
		const void *dummy;
		while ((k = read_cb(c.a, &rd, &dummy)) > 0)
			;
		if (k < 0) {
			lt_err("%s: read: %s", o->what, strerror(rd.err));
			goto out;
		}
		unsigned char d[EVP_MAX_MD_SIZE];
		unsigned dl = 0;
		char hex[72] = "sha256:";
		EVP_DigestFinal_ex(rd.md, d, &dl);
		for (unsigned i = 0; i < dl; i++)
			sprintf(hex + 7 + 2 * i, "%02x", d[i]);
		if (strcmp(hex, o->want_digest)) {
			lt_err("%s: digest mismatch: the content is %s", o->what, hex);
			goto out;
		}
	}
	if (finish_dirs(&c))
		goto out;
	if (!c.root_seen) {
		/* no entry for the root: a plain directory */
		if (fchmod(c.stagefd, 0755) < 0) {
			lt_err("%s/%s: chmod: %s", pdir, stage, strerror(errno));
			goto out;
		}
	}
	progress_end();
	if (exists) {
		if (renameat2(parentfd, stage, parentfd, base, RENAME_EXCHANGE) < 0) {
			lt_err("cannot move the unpacked layer onto '%s': %s", dir, strerror(errno));
			goto out;
		}
		/* the stage name now holds the empty directory DIR was */
		if (unlinkat(parentfd, stage, AT_REMOVEDIR) < 0)
			lt_warn("%s/%s: rmdir: %s", pdir, stage, strerror(errno));
	} else if (renameat(parentfd, stage, parentfd, base) < 0) {
		lt_err("cannot move the unpacked layer to '%s': %s", dir, strerror(errno));
		goto out;
	}
	staged = false;
	rc = 0;
out:
	progress_end();
	forget_parent(&c);
	if (c.a)
		archive_read_free(c.a);
	if (c.stagefd >= 0)
		close(c.stagefd);
	if (staged)
		remove_tree_at(parentfd, stage);
	if (parentfd >= 0)
		close(parentfd);
	for (size_t i = 0; i < c.ndirs; i++)
		free(c.dirs[i].rel);
	free(c.dirs);
	free(c.buf);
	free(rd.buf);
	EVP_MD_CTX_free(rd.md);
	free(dcopy);
	free(bcopy);
	return rc;
}
