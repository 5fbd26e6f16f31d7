/* commit.c - `layer-tool commit`: an upper directory as an OCI layer.
 *
 * The upper is walked through directory fds, names sorted.  In each
 * directory the whiteouts come first (as ".wh.NAME"), then the entries;
 * an opaque directory is its entry followed by "DIR/.wh..wh..opq" (its
 * whiteouts are then meaningless and left out).  A redirected directory
 * (a renamed lower directory) has nothing of its lower content in the
 * upper, so it is written in full from the merged view of the upper over
 * --lower (layers/ lookup and listing), marked opaque; the whiteout the
 * rename left at the old name comes out of the walk like any other.
 * Whiteouts are classified before hard links are looked for: the
 * kernel's whiteouts share one inode.
 */
#define _GNU_SOURCE
#include "lt.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layers/dirlist.h"
#include "layers/lookup.h"
#include "layers/whiteout.h"

#define IOBUF (1 << 20)

struct link_slot {
	dev_t dev;
	ino_t ino;
	char *path; /* NULL: free slot */
};

struct cctx {
	const struct commit_opts *o;
	struct tarw *w;
	struct layer_stack M; /* upper over the lowers, read-only */
	bool have_M;
	struct lt_buf path;   /* tar path of the current directory, "" at the root */
	struct link_slot *links;
	size_t nlinks, links_cap;
	uint64_t entries;
	char *iobuf;
	const char *upper;
	dev_t out_dev; /* the file being written, which may lie in the upper */
	ino_t out_ino;
};

/* ---------------------------------------------------------- hard links */

static size_t link_hash(dev_t d, ino_t i, size_t cap)
{
	uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ULL ^ (uint64_t)d * 0xC2B2AE3D27D4EB4FULL;
	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* Returns the first path seen for (dev, ino), or NULL after recording path. */
static const char *link_seen(struct cctx *c, dev_t d, ino_t i, const char *path)
{
	if ((c->nlinks + 1) * 2 > c->links_cap) {
		size_t ncap = c->links_cap ? c->links_cap * 2 : 256;
		struct link_slot *n = calloc(ncap, sizeof *n);
		if (!n) {
			lt_err("out of memory");
			exit(1);
		}
		for (size_t k = 0; k < c->links_cap; k++) {
			if (!c->links[k].path)
				continue;
			size_t h = link_hash(c->links[k].dev, c->links[k].ino, ncap);
			while (n[h].path)
				h = (h + 1) & (ncap - 1);
			n[h] = c->links[k];
		}
		free(c->links);
		c->links = n;
		c->links_cap = ncap;
	}
	size_t h = link_hash(d, i, c->links_cap);
	while (c->links[h].path) {
		if (c->links[h].dev == d && c->links[h].ino == i)
			return c->links[h].path;
		h = (h + 1) & (c->links_cap - 1);
	}
	c->links[h] = (struct link_slot){ d, i, lt_xstrdup(path) };
	c->nlinks++;
	return NULL;
}

/* ---------------------------------------------------------- entries */

static void set_common(struct cctx *c, struct archive_entry *e, const char *path, const struct stat *st)
{
	archive_entry_set_pathname(e, path);
	archive_entry_set_uid(e, st->st_uid);
	archive_entry_set_gid(e, st->st_gid);
	archive_entry_set_perm(e, st->st_mode & 07777);
	time_t m = st->st_mtim.tv_sec;
	if (c->o->have_mtime && m > c->o->mtime)
		m = c->o->mtime;
	/* whole seconds: no sub-second pax record, one header form */
	archive_entry_set_mtime(e, m, 0);
}

/* A marker file: ".wh.NAME" or ".wh..wh..opq" in the current directory. */
static int emit_marker(struct cctx *c, const char *name, const struct stat *dirst)
{
	struct archive_entry *e = archive_entry_new();
	size_t old = c->path.len;
	if (old)
		buf_append(&c->path, "/");
	buf_append(&c->path, name);
	struct stat st = { .st_mode = S_IFREG | 0644, .st_mtim = dirst->st_mtim };
	set_common(c, e, c->path.s, &st);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, 0);
	int rc = tarw_header(c->w, e);
	archive_entry_free(e);
	buf_set_len(&c->path, old);
	c->entries++;
	return rc;
}

static int copy_data(struct cctx *c, int fd, const struct stat *st, const char *path)
{
	off_t left = st->st_size;
	while (left > 0) {
		size_t want = left > IOBUF ? IOBUF : (size_t)left;
		ssize_t r = read(fd, c->iobuf, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return lt_err("%s/%s: read: %s", c->upper, path, strerror(errno));
		}
		if (r == 0)
			return lt_err("%s/%s: file shrank while being read", c->upper, path);
		if (tarw_data(c->w, c->iobuf, (size_t)r))
			return -1;
		left -= r;
		progress_tick(c->entries, tarw_tar_bytes(c->w));
	}
	return 0;
}

/* Writes the entry at c->path for the object fd (O_PATH when opath),
 * stat st.  For a directory, *dirfd_out gets an fd open for reading.
 * *priv (when asked) says whether it has overlay-private xattrs. */
static int emit_object(struct cctx *c, int fd, bool opath, const struct stat *st, int *dirfd_out, bool *priv)
{
	const char *path = c->path.s;
	struct archive_entry *e = archive_entry_new();
	int rc = 0, datafd = -1;
	struct xattr_set x = { 0 };

	if (dirfd_out)
		*dirfd_out = -1;
	if (S_ISSOCK(st->st_mode)) {
		lt_warn("%s/%s: a socket cannot go into a tar; left out", c->upper, path);
		archive_entry_free(e);
		return 0;
	}
	set_common(c, e, path, st);
	archive_entry_set_filetype(e, st->st_mode & S_IFMT);
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		const char *first = link_seen(c, st->st_dev, st->st_ino, path);
		if (first) {
			archive_entry_set_hardlink(e, first);
			archive_entry_set_size(e, 0);
			rc = tarw_header(c->w, e);
			archive_entry_free(e);
			c->entries++;
			return rc;
		}
	}
	if (S_ISREG(st->st_mode)) {
		if (opath) {
			datafd = reopen_fd(fd, O_RDONLY | O_NOATIME);
			if (datafd < 0 && errno == EPERM)
				datafd = reopen_fd(fd, O_RDONLY);
		} else {
			datafd = fd;
		}
		if (datafd < 0) {
			rc = lt_err("%s/%s: open: %s", c->upper, path, strerror(errno));
			goto out;
		}
		archive_entry_set_size(e, st->st_size);
	} else if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
		if (n < 0) {
			rc = lt_err("%s/%s: readlink: %s", c->upper, path, strerror(errno));
			goto out;
		}
		target[n] = '\0';
		archive_entry_set_symlink(e, target);
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		archive_entry_set_rdev(e, st->st_rdev);
	}
	int nx = xattrs_read(datafd >= 0 ? datafd : fd, datafd >= 0 ? false : opath, &x);
	if (nx < 0) {
		rc = lt_err("%s/%s: reading xattrs: %s", c->upper, path, strerror(-nx));
		goto out;
	}
	if (x.metacopy) {
		/* its data is in a lower layer (kernel metacopy=on), not here */
		rc = lt_err("%s/%s: a metadata-only copy-up (overlay metacopy) is not supported; "
			    "mount without metacopy=on", c->upper, path);
		goto out;
	}
	if (priv)
		*priv = x.has_private;
	for (size_t i = 0; i < x.n; i++)
		archive_entry_xattr_add_entry(e, x.names[i], x.vals[i], x.lens[i]);
	rc = tarw_header(c->w, e);
	c->entries++;
	if (rc == 0 && S_ISREG(st->st_mode))
		rc = copy_data(c, datafd, st, path);
	if (rc == 0 && S_ISDIR(st->st_mode) && dirfd_out) {
		*dirfd_out = opath ? openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dup(fd);
		if (*dirfd_out < 0)
			rc = lt_err("%s/%s: open: %s", c->upper, path, strerror(errno));
	}
	progress_tick(c->entries, tarw_tar_bytes(c->w));
out:
	if (datafd >= 0 && datafd != fd)
		close(datafd);
	xattrs_free(&x);
	archive_entry_free(e);
	return rc;
}

/* ---------------------------------------------------------- merged (redirects) */

/* The children of a merged directory of M, in full. */
static int emit_merged_children(struct cctx *c, const struct layer_copy *copies, unsigned ncopies)
{
	struct dir_listing l;
	int rc = list_sorted(&c->M, copies, ncopies, &l);
	if (rc < 0)
		return lt_err("%s/%s: listing: %s", c->upper, c->path.s, strerror(-rc));
	size_t base = c->path.len;
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		struct lookup_result r;
		int lr = layers_lookup(&c->M, copies, ncopies, l.entries[i].name, &r);
		if (lr == -ENOENT)
			continue;
		if (base)
			buf_append(&c->path, "/");
		buf_append(&c->path, l.entries[i].name);
		if (lr < 0) {
			rc = lt_err("%s/%s: lookup: %s", c->upper, c->path.s, strerror(-lr));
		} else {
			int dfd = -1;
			rc = emit_object(c, r.copies[0].fd, true, &r.st, &dfd, NULL);
			if (dfd >= 0)
				close(dfd);
			if (rc == 0 && S_ISDIR(r.st.st_mode))
				rc = emit_merged_children(c, r.copies, r.ncopies);
			lookup_result_free(&r);
		}
		buf_set_len(&c->path, base);
	}
	dir_listing_free(&l);
	return rc;
}

/* ---------------------------------------------------------- the upper walk */

struct uent {
	char *name;
	struct stat st;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_upper_dir(struct cctx *c, int dirfd, const struct stat *dirst, bool priv);

/* After a directory's own entry: its opaque marker and its content.
 * priv: it has overlay xattrs (without, only a ".wh..wh..opq" entry can
 * make it opaque, and it has no redirect: most directories of a layer). */
static int emit_dir_body(struct cctx *c, int dfd, const struct stat *st, bool priv)
{
	char redirect[PATH_MAX];
	int rl = priv ? read_redirect(dfd, redirect, sizeof redirect) : 0;
	if (rl < 0)
		return lt_err("%s/%s: malformed overlay redirect", c->upper, c->path.s);
	if (rl > 0 && c->path.len) {
		if (!c->have_M)
			return lt_err("%s/%s: a renamed lower directory (redirect to '%s'): "
				      "give its lower layers with --lower", c->upper, c->path.s, redirect);
		int rc = emit_marker(c, AUFS_OPQ_NAME, st);
		struct lookup_result r;
		if (rc == 0)
			rc = stack_resolve(&c->M, c->path.s, &r);
		if (rc)
			return rc;
		if (r.ncopies == 0 || !S_ISDIR(r.st.st_mode)) {
			lookup_result_free(&r);
			return lt_err("%s/%s: not found in the merged view", c->upper, c->path.s);
		}
		rc = emit_merged_children(c, r.copies, r.ncopies);
		lookup_result_free(&r);
		return rc;
	}
	return walk_upper_dir(c, dfd, st, priv);
}

/* A directory of the upper: its opaque marker, whiteouts, then entries. */
static int walk_upper_dir(struct cctx *c, int dirfd, const struct stat *dirst, bool priv)
{
	char **names;
	long n = read_sorted_names(dirfd, &names);
	if (n < 0)
		return lt_err("%s/%s: reading directory: %s", c->upper, c->path.s, strerror((int)-n));
	bool opaque = false;
	char **wh = NULL;
	size_t nwh = 0;
	struct uent *ents = lt_xmalloc((size_t)n * sizeof *ents);
	size_t nents = 0;
	int rc = 0;

	for (long i = 0; i < n && rc == 0; i++) {
		struct stat st;
		const char *nm = names[i];
		if (fstatat(dirfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = lt_err("%s/%s%s%s: stat: %s", c->upper, c->path.s, c->path.len ? "/" : "", nm,
				    strerror(errno));
			break;
		}
		if (!strcmp(nm, AUFS_OPQ_NAME)) {
			opaque = true;
		} else if (is_aufs_marker_name(nm)) {
			wh = lt_xrealloc(wh, (nwh + 1) * sizeof *wh);
			wh[nwh++] = lt_xstrdup(nm);
		} else if (is_whiteout_entry(dirfd, nm, &st)) {
			wh = lt_xrealloc(wh, (nwh + 1) * sizeof *wh);
			wh[nwh++] = lt_xasprintf(AUFS_WH_PREFIX "%s", nm);
		} else if (st.st_dev == c->out_dev && st.st_ino == c->out_ino) {
			lt_warn("%s/%s%s%s: the layer being written; left out", c->upper, c->path.s,
				c->path.len ? "/" : "", nm);
		} else {
			ents[nents].name = names[i];
			ents[nents].st = st;
			names[i] = NULL;
			nents++;
		}
	}
	if (!opaque && priv)
		opaque = is_opaque_dir(dirfd);
	if (rc == 0 && opaque)
		rc = emit_marker(c, AUFS_OPQ_NAME, dirst);
	/* whiteouts first; in an opaque directory they hide nothing */
	if (rc == 0 && !opaque && nwh) {
		if (nwh > 1)
			qsort(wh, nwh, sizeof *wh, cmp_str);
		for (size_t i = 0; i < nwh && rc == 0; i++) {
			if (i && !strcmp(wh[i], wh[i - 1]))
				continue;
			rc = emit_marker(c, wh[i], dirst);
		}
	}
	size_t base = c->path.len;
	for (size_t i = 0; i < nents && rc == 0; i++) {
		const struct stat *st = &ents[i].st;
		const char *nm = ents[i].name;
		int fd;
		bool opath = false;
		if (S_ISREG(st->st_mode)) {
			fd = openat(dirfd, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
			if (fd < 0 && errno == EPERM)
				fd = openat(dirfd, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		} else if (S_ISDIR(st->st_mode)) {
			fd = openat(dirfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		} else {
			fd = openat(dirfd, nm, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			opath = true;
		}
		if (base)
			buf_append(&c->path, "/");
		buf_append(&c->path, nm);
		if (fd < 0) {
			rc = lt_err("%s/%s: open: %s", c->upper, c->path.s, strerror(errno));
		} else {
			struct stat fst;
			/* the name must still be what was listed */
			if (fstat(fd, &fst) < 0 || fst.st_ino != st->st_ino || ((fst.st_mode ^ st->st_mode) & S_IFMT))
				rc = lt_err("%s/%s: changed while being read", c->upper, c->path.s);
			bool priv = true;
			if (rc == 0)
				rc = emit_object(c, fd, opath, &fst, NULL, &priv);
			if (rc == 0 && S_ISDIR(st->st_mode))
				rc = emit_dir_body(c, fd, &fst, priv);
			close(fd);
		}
		buf_set_len(&c->path, base);
	}
	for (size_t i = 0; i < nents; i++)
		free(ents[i].name);
	free(ents);
	names_free(names, n);
	for (size_t i = 0; i < nwh; i++)
		free(wh[i]);
	free(wh);
	return rc;
}

int commit_layer(const struct commit_opts *o, int fd, enum lt_compress comp, char diffid[72],
		 char blob[72], uint64_t *blob_size)
{
	struct cctx c;
	int rc = -1;
	memset(&c, 0, sizeof c);
	c.o = o;
	c.upper = o->upper;
	buf_set_len(&c.path, 0);
	int ufd = open(o->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ufd < 0) {
		lt_err("cannot open upper directory '%s': %s", o->upper, strerror(errno));
		goto out;
	}
	if (o->nlowers) {
		const char **all = lt_xmalloc((o->nlowers + 1) * sizeof *all);
		all[0] = o->upper;
		for (size_t i = 0; i < o->nlowers; i++)
			all[i + 1] = o->lowers[i];
		int r = open_lower_stack(&c.M, all, o->nlowers + 1);
		free(all);
		if (r)
			goto out;
		c.have_M = true;
	}
	struct stat ost;
	if (fstat(fd, &ost) == 0 && S_ISREG(ost.st_mode)) {
		c.out_dev = ost.st_dev;
		c.out_ino = ost.st_ino;
	}
	c.iobuf = lt_xmalloc(IOBUF);
	c.w = tarw_open(fd, comp, o->output ? o->output : o->upper);
	if (!c.w)
		goto out;
	progress_start("commit");
	struct stat st;
	if (fstat(ufd, &st) < 0) {
		lt_err("%s: stat: %s", o->upper, strerror(errno));
		goto out;
	}
	if (walk_upper_dir(&c, ufd, &st, true))
		goto out;
	rc = tarw_close(c.w, diffid, blob, blob_size);
	c.w = NULL;
	progress_end();
out:
	tarw_abort(c.w);
	if (ufd >= 0)
		close(ufd);
	if (c.have_M)
		stack_close(&c.M);
	for (size_t i = 0; i < c.links_cap; i++)
		free(c.links[i].path);
	free(c.links);
	free(c.iobuf);
	buf_free(&c.path);
	return rc;
}
