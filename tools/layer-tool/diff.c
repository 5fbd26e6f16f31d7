/* diff.c - `layer-tool diff`: the changes an upper holds, as `docker
 * diff` prints them (A added, C changed, D deleted; sorted; the parents
 * of a change listed as C).
 *
 * Without --lower only the upper is read: a whiteout is D, an entry with
 * an overlay origin (a copy-up) is C unless it is a renamed directory,
 * anything else A.  With --lower the
 * merged view (upper over the lowers) is compared with the lowers alone
 * through layers/ lookups: an entry that is in both is C only when its
 * type, mode, owner, xattrs, mtime (non-directories), symlink target,
 * device or content differ -- the size first, then an XXH3 hash of both
 * contents -- so copy-ups that changed nothing are left out.  Opaque and
 * renamed directories are compared name by name with the lower ones.
 */
#define _GNU_SOURCE
#include "lt.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "layers/dirlist.h"
#include "layers/lookup.h"
#include "layers/whiteout.h"
#include "layers/xattr.h"

struct change {
	char *path;
	char kind;
};

struct dctx {
	struct layer_stack M, B;
	bool have_lower;
	struct change *ch;
	size_t nch;
	struct lt_buf path; /* "/a/b", "" at the root */
	const char *upper;
	char *buf1, *buf2;
};

#define HBUF (1 << 20)

static void add(struct dctx *c, char kind)
{
	c->ch = lt_xrealloc(c->ch, (c->nch + 1) * sizeof *c->ch);
	c->ch[c->nch].path = lt_xstrdup(c->path.s);
	c->ch[c->nch].kind = kind;
	c->nch++;
}

static void push(struct dctx *c, const char *name)
{
	buf_append(&c->path, "/");
	buf_append(&c->path, name);
}

/* Lists every entry below a merged directory of s as A. */
static int all_added(struct dctx *c, struct layer_stack *s, const struct layer_copy *cp, unsigned n)
{
	struct dir_listing l;
	int rc = list_sorted(s, cp, n, &l);
	if (rc < 0)
		return lt_err("%s%s: listing: %s", c->upper, c->path.s, strerror(-rc));
	size_t base = c->path.len;
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		struct lookup_result r;
		if (layers_lookup(s, cp, n, l.entries[i].name, &r) < 0)
			continue;
		push(c, l.entries[i].name);
		add(c, 'A');
		if (S_ISDIR(r.st.st_mode))
			rc = all_added(c, s, r.copies, r.ncopies);
		lookup_result_free(&r);
		buf_set_len(&c->path, base);
	}
	dir_listing_free(&l);
	return rc;
}

/* Everything below the current path of the merged view, as A. */
static int added_below(struct dctx *c)
{
	struct lookup_result rm;
	int rc = stack_resolve(&c->M, c->path.s, &rm);
	if (rc == 0 && rm.ncopies)
		rc = all_added(c, &c->M, rm.copies, rm.ncopies);
	lookup_result_free(&rm);
	return rc;
}

static int hash_fd(struct dctx *c, int opath, char *buf, XXH64_hash_t *out)
{
	int fd = reopen_fd(opath, O_RDONLY | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = reopen_fd(opath, O_RDONLY);
	if (fd < 0)
		return lt_err("%s%s: open: %s", c->upper, c->path.s, strerror(errno));
	XXH3_state_t *st = XXH3_createState();
	XXH3_64bits_reset(st);
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, HBUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = lt_err("%s%s: read: %s", c->upper, c->path.s, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		XXH3_64bits_update(st, buf, (size_t)n);
	}
	*out = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	close(fd);
	return rc;
}

static bool same_xattrs(int a, int b)
{
	struct xattr_set xa, xb;
	if (xattrs_read(a, true, &xa) < 0)
		return false;
	if (xattrs_read(b, true, &xb) < 0) {
		xattrs_free(&xa);
		return false;
	}
	bool same = xa.n == xb.n;
	for (size_t i = 0; same && i < xa.n; i++)
		same = !strcmp(xa.names[i], xb.names[i]) && xa.lens[i] == xb.lens[i] &&
		       !memcmp(xa.vals[i], xb.vals[i], xa.lens[i]);
	xattrs_free(&xa);
	xattrs_free(&xb);
	return same;
}

/* 1 when the object m (merged view) differs from b (lowers), 0 if not. */
static int differs(struct dctx *c, int mfd, const struct stat *ms, int bfd, const struct stat *bs)
{
	if ((ms->st_mode & S_IFMT) != (bs->st_mode & S_IFMT) || (ms->st_mode & 07777) != (bs->st_mode & 07777) ||
	    ms->st_uid != bs->st_uid || ms->st_gid != bs->st_gid)
		return 1;
	if (!S_ISDIR(ms->st_mode) &&
	    (ms->st_mtim.tv_sec != bs->st_mtim.tv_sec || ms->st_mtim.tv_nsec != bs->st_mtim.tv_nsec))
		return 1;
	if ((S_ISCHR(ms->st_mode) || S_ISBLK(ms->st_mode)) && ms->st_rdev != bs->st_rdev)
		return 1;
	if (S_ISLNK(ms->st_mode)) {
		char ta[PATH_MAX + 1], tb[PATH_MAX + 1];
		ssize_t la = readlinkat(mfd, "", ta, PATH_MAX), lb = readlinkat(bfd, "", tb, PATH_MAX);
		if (la != lb || la < 0 || memcmp(ta, tb, (size_t)la))
			return 1;
	}
	if (!same_xattrs(mfd, bfd))
		return 1;
	if (S_ISREG(ms->st_mode)) {
		if (ms->st_size != bs->st_size)
			return 1;
		XXH64_hash_t ha, hb;
		if (hash_fd(c, mfd, c->buf1, &ha) || hash_fd(c, bfd, c->buf2, &hb))
			return -1;
		return ha != hb;
	}
	return 0;
}

/* Compares a merged directory with the lower one, name by name.
 * Returns 1 when something below changed, 0 if not, -1 on error. */
static int compare_full(struct dctx *c, const struct layer_copy *mc, unsigned mn, const struct layer_copy *bc,
			unsigned bn)
{
	struct dir_listing lm, lb;
	int rc = list_sorted(&c->M, mc, mn, &lm);
	if (rc < 0)
		return lt_err("%s%s: listing: %s", c->upper, c->path.s, strerror(-rc));
	rc = list_sorted(&c->B, bc, bn, &lb);
	if (rc < 0) {
		dir_listing_free(&lm);
		return lt_err("%s%s: listing the lowers: %s", c->upper, c->path.s, strerror(-rc));
	}
	size_t i = 0, j = 0, base = c->path.len;
	int changed = 0;
	while ((i < lm.n || j < lb.n) && rc >= 0) {
		int k = i >= lm.n ? 1 : j >= lb.n ? -1 : strcmp(lm.entries[i].name, lb.entries[j].name);
		const char *name = k <= 0 ? lm.entries[i].name : lb.entries[j].name;
		struct lookup_result rm = { 0 }, rb = { 0 };
		bool inm = k <= 0 && layers_lookup(&c->M, mc, mn, name, &rm) == 0;
		bool inb = k >= 0 && layers_lookup(&c->B, bc, bn, name, &rb) == 0;
		push(c, name);
		if (inm && !inb) {
			add(c, 'A');
			changed = 1;
			if (S_ISDIR(rm.st.st_mode))
				rc = all_added(c, &c->M, rm.copies, rm.ncopies);
		} else if (inb && !inm) {
			add(c, 'D');
			changed = 1;
		} else if (inm && inb) {
			int d = differs(c, rm.copies[0].fd, &rm.st, rb.copies[0].fd, &rb.st);
			if (d < 0) {
				rc = -1;
			} else if (S_ISDIR(rm.st.st_mode) && S_ISDIR(rb.st.st_mode)) {
				int sub = compare_full(c, rm.copies, rm.ncopies, rb.copies, rb.ncopies);
				if (sub < 0)
					rc = -1;
				else if (d || sub) {
					/* a directory with changes below is C (the list is sorted at the end) */
					add(c, 'C');
					changed = 1;
				}
			} else if (d) {
				add(c, 'C');
				changed = 1;
				if (S_ISDIR(rm.st.st_mode))
					rc = all_added(c, &c->M, rm.copies, rm.ncopies);
			}
		}
		lookup_result_free(&rm);
		lookup_result_free(&rb);
		buf_set_len(&c->path, base);
		if (k <= 0)
			i++;
		if (k >= 0)
			j++;
	}
	dir_listing_free(&lm);
	dir_listing_free(&lb);
	return rc < 0 ? -1 : changed;
}

static bool has_origin(int fd)
{
	char v[8];
	ssize_t n = ovl_getxattr(fd, "origin", v, sizeof v);
	return n >= 0 || errno == ERANGE;
}

/* The upper walk.  bc/bn: the lower directory at this path (bn == 0:
 * none).  Returns 1 when something changed, 0 if not, -1 on error. */
static int walk(struct dctx *c, int dirfd, bool in_new, const struct layer_copy *bc, unsigned bn)
{
	char **names;
	long n = read_sorted_names(dirfd, &names);
	if (n < 0)
		return lt_err("%s%s: reading directory: %s", c->upper, c->path.s, strerror((int)-n));
	int changed = 0, rc = 0;
	size_t base = c->path.len;
	for (long i = 0; i < n && rc >= 0; i++) {
		const char *nm = names[i];
		struct stat st;
		if (!strcmp(nm, AUFS_OPQ_NAME))
			continue;
		if (fstatat(dirfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			push(c, nm);
			rc = lt_err("%s%s: stat: %s", c->upper, c->path.s, strerror(errno));
			break;
		}
		const char *wh = NULL;
		if (is_aufs_marker_name(nm))
			wh = nm + AUFS_WH_PREFIX_LEN;
		else if (is_whiteout_entry(dirfd, nm, &st))
			wh = nm;
		if (wh) {
			push(c, wh);
			if (!c->have_lower) {
				add(c, 'D');
				changed = 1;
			} else if (bn) {
				struct lookup_result rb;
				if (layers_lookup(&c->B, bc, bn, wh, &rb) == 0) {
					add(c, 'D');
					changed = 1;
					lookup_result_free(&rb);
				}
			}
			buf_set_len(&c->path, base);
			continue;
		}
		push(c, nm);
		int fd = openat(dirfd, nm, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = lt_err("%s%s: open: %s", c->upper, c->path.s, strerror(errno));
			buf_set_len(&c->path, base);
			break;
		}
		if (!c->have_lower) {
			char redirect[PATH_MAX];
			/* a renamed directory is new where it is now, whatever its origin */
			bool isnew = in_new || !has_origin(fd) ||
				     (S_ISDIR(st.st_mode) && read_redirect(fd, redirect, sizeof redirect) > 0);
			add(c, isnew ? 'A' : 'C');
			changed = 1;
			if (S_ISDIR(st.st_mode)) {
				int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (dfd < 0)
					rc = lt_err("%s%s: open: %s", c->upper, c->path.s, strerror(errno));
				else {
					rc = walk(c, dfd, isnew, NULL, 0);
					close(dfd);
				}
			}
		} else {
			struct lookup_result rb = { 0 };
			bool inb = bn && layers_lookup(&c->B, bc, bn, nm, &rb) == 0;
			char redirect[PATH_MAX];
			bool special = S_ISDIR(st.st_mode) && (is_opaque_dir(fd) || read_redirect(fd, redirect, sizeof redirect) != 0);
			if (!inb) {
				add(c, 'A');
				changed = 1;
				if (S_ISDIR(st.st_mode)) {
					rc = added_below(c);
				}
			} else if (S_ISDIR(st.st_mode) && S_ISDIR(rb.st.st_mode)) {
				int d = differs(c, fd, &st, rb.copies[0].fd, &rb.st);
				int sub = 0;
				if (d >= 0 && special) {
					struct lookup_result rm;
					sub = stack_resolve(&c->M, c->path.s, &rm);
					if (sub == 0)
						sub = compare_full(c, rm.copies, rm.ncopies, rb.copies, rb.ncopies);
					lookup_result_free(&rm);
				} else if (d >= 0) {
					int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
					sub = dfd < 0 ? lt_err("%s%s: open: %s", c->upper, c->path.s, strerror(errno))
						      : walk(c, dfd, false, rb.copies, rb.ncopies);
					if (dfd >= 0)
						close(dfd);
				}
				if (d < 0 || sub < 0)
					rc = -1;
				else if (d || sub) {
					add(c, 'C');
					changed = 1;
				}
			} else {
				int d = differs(c, fd, &st, rb.copies[0].fd, &rb.st);
				if (d < 0)
					rc = -1;
				else if (d) {
					add(c, 'C');
					changed = 1;
					if (S_ISDIR(st.st_mode)) {
						rc = added_below(c);
					}
				}
			}
			lookup_result_free(&rb);
		}
		close(fd);
		buf_set_len(&c->path, base);
	}
	names_free(names, n);
	return rc < 0 ? -1 : changed;
}

static int cmp_change(const void *a, const void *b)
{
	return strcmp(((const struct change *)a)->path, ((const struct change *)b)->path);
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lower", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	char **lowers = NULL;
	size_t nlowers = 0;
	bool json = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'l') {
			if (split_layer_list(optarg, &lowers, &nlowers))
				return 2;
		} else if (ch == 'j') {
			json = true;
		} else {
			fprintf(stderr, LT_PROG ": bad option for diff (see layer-tool --help)\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, LT_PROG ": diff takes one UPPER directory (see layer-tool --help)\n");
		return 2;
	}
	struct dctx c;
	memset(&c, 0, sizeof c);
	c.upper = argv[optind];
	buf_set_len(&c.path, 0);
	int rc = 1, ufd = -1;
	bool haveB = false;
	struct lookup_result rb = { 0 };
	c.buf1 = lt_xmalloc(HBUF);
	c.buf2 = lt_xmalloc(HBUF);
	ufd = open(c.upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ufd < 0) {
		lt_err("cannot open upper directory '%s': %s", c.upper, strerror(errno));
		goto out;
	}
	if (nlowers) {
		const char **all = lt_xmalloc((nlowers + 1) * sizeof *all);
		all[0] = c.upper;
		for (size_t i = 0; i < nlowers; i++)
			all[i + 1] = lowers[i];
		int r = open_lower_stack(&c.B, (const char *const *)lowers, nlowers);
		haveB = r == 0;
		if (r == 0 && open_lower_stack(&c.M, all, nlowers + 1))
			r = -1;
		free(all);
		if (r)
			goto out;
		c.have_lower = true;
		if (stack_resolve(&c.B, "", &rb))
			goto out;
	}
	int r;
	if (c.have_lower && is_opaque_dir(ufd)) {
		struct lookup_result rm;
		r = stack_resolve(&c.M, "", &rm);
		if (r == 0)
			r = compare_full(&c, rm.copies, rm.ncopies, rb.copies, rb.ncopies);
		lookup_result_free(&rm);
	} else {
		r = walk(&c, ufd, false, rb.copies, rb.ncopies);
	}
	if (r < 0)
		goto out;
	if (c.nch > 1)
		qsort(c.ch, c.nch, sizeof *c.ch, cmp_change);
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < c.nch; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "path", json_string(c.ch[i].path));
			char k[2] = { c.ch[i].kind, 0 };
			json_object_set_new(o, "kind", json_string(k));
			json_array_append_new(a, o);
		}
		char *s = json_dumps(a, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		puts(s ? s : "[]");
		free(s);
		json_decref(a);
	} else {
		for (size_t i = 0; i < c.nch; i++)
			printf("%c %s\n", c.ch[i].kind, c.ch[i].path);
	}
	rc = 0;
out:
	lookup_result_free(&rb);
	if (ufd >= 0)
		close(ufd);
	if (c.have_lower)
		stack_close(&c.M);
	if (haveB)
		stack_close(&c.B);
	for (size_t i = 0; i < c.nch; i++)
		free(c.ch[i].path);
	free(c.ch);
	for (size_t i = 0; i < nlowers; i++)
		free(lowers[i]);
	free(lowers);
	free(c.buf1);
	free(c.buf2);
	buf_free(&c.path);
	return rc;
}
