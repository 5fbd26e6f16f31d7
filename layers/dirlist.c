/* dirlist.c - list a merged directory (see dirlist.h). */
#define _GNU_SOURCE
#include "dirlist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#include "whiteout.h"

/* An open-addressing set of names seen in upper layers: visible, or hidden
 * by a whiteout.  Index into the listing, or a hidden marker. */
struct name_set {
	struct slot { uint64_t hash; int64_t idx; char *hidden; } *slots;
	size_t cap, used;
};

#define HIDDEN_IDX (-2)

static void set_grow(struct name_set *ns, const struct dir_listing *l);

static struct slot *set_find(struct name_set *ns, const struct dir_listing *l, const char *name,
			     uint64_t h)
{
	for (size_t i = h & (ns->cap - 1);; i = (i + 1) & (ns->cap - 1)) {
		struct slot *sl = &ns->slots[i];
		if (sl->idx == -1)
			return sl;
		if (sl->hash != h)
			continue;
		const char *other = sl->idx == HIDDEN_IDX ? sl->hidden : l->entries[sl->idx].name;
		if (!strcmp(other, name))
			return sl;
	}
}

static void set_init(struct name_set *ns, size_t cap)
{
	ns->cap = cap;
	ns->used = 0;
	ns->slots = malloc(cap * sizeof *ns->slots);
	if (!ns->slots)
		abort();
	for (size_t i = 0; i < cap; i++)
		ns->slots[i].idx = -1;
}

static void set_grow(struct name_set *ns, const struct dir_listing *l)
{
	struct name_set bigger;
	set_init(&bigger, ns->cap * 2);
	for (size_t i = 0; i < ns->cap; i++) {
		struct slot *sl = &ns->slots[i];
		if (sl->idx == -1)
			continue;
		const char *name = sl->idx == HIDDEN_IDX ? sl->hidden : l->entries[sl->idx].name;
		*set_find(&bigger, l, name, sl->hash) = *sl;
	}
	bigger.used = ns->used;
	free(ns->slots);
	*ns = bigger;
}

static void set_free(struct name_set *ns)
{
	for (size_t i = 0; i < ns->cap; i++)
		if (ns->slots[i].idx == HIDDEN_IDX)
			free(ns->slots[i].hidden);
	free(ns->slots);
}

static void push_entry(struct dir_listing *l, size_t *cap, const char *name, uint64_t ino,
		       uint32_t layer, uint8_t type)
{
	if (l->n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		l->entries = realloc(l->entries, *cap * sizeof *l->entries);
		if (!l->entries)
			abort();
	}
	l->entries[l->n++] = (struct dir_entry){ strdup(name), ino, layer, type, 0, NULL, 0 };
}

/* The listed name appears again, in any form, in a lower layer. */
static void note_again(struct dir_listing *l, int64_t idx, uint32_t layer)
{
	struct dir_entry *e = &l->entries[idx];
	uint32_t *a = realloc(e->also, (e->nalso + 1) * sizeof *a);
	if (!a)
		abort();
	a[e->nalso++] = layer;
	e->also = a;
}

/* Marks name as taken; returns the slot's previous state (-1 = new). */
static int64_t claim(struct name_set *ns, struct dir_listing *l, const char *name, int64_t idx)
{
	uint64_t h = XXH3_64bits(name, strlen(name));
	if ((ns->used + 1) * 2 > ns->cap)
		set_grow(ns, l);
	struct slot *sl = set_find(ns, l, name, h);
	if (sl->idx != -1)
		return sl->idx;
	sl->hash = h;
	sl->idx = idx;
	sl->hidden = idx == HIDDEN_IDX ? strdup(name) : NULL;
	ns->used++;
	return -1;
}

static int list_one_copy(const struct layer_stack *s, const struct layer_copy *c, bool more_below,
			 bool xwh, struct dir_listing *l, size_t *cap, struct name_set *ns)
{
	bool upper = stack_is_upper(s, c->layer);
	/* listing a lower layer must not change it, atime included */
	int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	int dfd = openat(c->fd, ".", flags | (upper ? 0 : O_NOATIME));
	if (dfd < 0 && errno == EPERM && !upper)
		dfd = openat(c->fd, ".", flags);
	if (dfd < 0)
		return -errno;
	char buf[32768];

	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
		if (n < 0) {
			int e = errno;
			close(dfd);
			return -e;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			const char *name = d->d_name;
			if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
				continue;
			if (!upper && is_aufs_marker_name(name)) {
				/* ".wh.NAME" hides NAME below; ".wh..wh..opq" is a marker */
				if (strcmp(name, AUFS_OPQ_NAME) && more_below) {
					int64_t prev = claim(ns, l, name + AUFS_WH_PREFIX_LEN, HIDDEN_IDX);
					if (prev >= 0)
						note_again(l, prev, c->layer);
				}
				continue;
			}
			bool maybe_wh = d->d_type == DT_CHR || d->d_type == DT_UNKNOWN ||
					(xwh && d->d_type == DT_REG);
			if (maybe_wh) {
				struct stat st;
				if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    is_whiteout_entry(dfd, name, &st)) {
					int64_t prev = claim(ns, l, name, HIDDEN_IDX);
					if (prev >= 0)
						note_again(l, prev, c->layer);
					/* as the kernel: a lower xattr whiteout whose
					 * name no layer above has counts as an entry
					 * when emptiness is checked */
					if (prev == -1 && !upper && S_ISREG(st.st_mode))
						l->lower_xwhiteouts++;
					continue;
				}
			}
			int64_t prev = claim(ns, l, name, (int64_t)l->n);
			if (prev == -1)
				push_entry(l, cap, name, d->d_ino, c->layer, d->d_type);
			else if (prev >= 0) {
				l->entries[prev].in_lower_too = 1;
				note_again(l, prev, c->layer);
			}
		}
	}
	close(dfd);
	return 0;
}

int list_merged_dir(const struct layer_stack *s, const struct layer_copy *copies, unsigned ncopies,
		    struct dir_listing *out)
{
	struct name_set ns;
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof *out);
	/* As the kernel: a merged directory one of whose copies is marked
	 * opaque=x is looked through for xattr whiteouts in every copy (a
	 * lookup finds them anywhere; a listing must not show those names). */
	bool xwh = false;
	for (unsigned i = 0; i < ncopies && !xwh; i++)
		xwh = holds_xattr_whiteouts(copies[i].fd);
	set_init(&ns, 64);
	for (unsigned i = 0; i < ncopies && rc == 0; i++)
		rc = list_one_copy(s, &copies[i], i + 1 < ncopies, xwh, out, &cap, &ns);
	set_free(&ns);
	if (rc)
		dir_listing_free(out);
	return rc;
}

void dir_listing_free(struct dir_listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->entries[i].name);
		free(l->entries[i].also);
	}
	free(l->entries);
	l->entries = NULL;
	l->n = 0;
}

int merged_dir_is_empty(const struct layer_stack *s, const struct layer_copy *copies, unsigned ncopies)
{
	struct dir_listing l;
	int rc = list_merged_dir(s, copies, ncopies, &l);
	if (rc)
		return rc;
	rc = l.n || l.lower_xwhiteouts ? -ENOTEMPTY : 0;
	dir_listing_free(&l);
	return rc;
}

/* ---- the index of a directory's lower copies ---- */

struct name_index {
	struct dir_listing l;
	uint32_t *slots;   /* entry index + 1; 0 = empty */
	size_t mask;
};

static uint64_t name_hash(const char *name)
{
	return XXH3_64bits(name, strlen(name));
}

struct name_index *name_index_build(const struct layer_stack *s, const struct layer_copy *copies,
				    unsigned ncopies)
{
	struct name_index *ix = calloc(1, sizeof *ix);
	if (!ix)
		return NULL;
	if (list_merged_dir(s, copies, ncopies, &ix->l) || ix->l.n >= UINT32_MAX / 2) {
		free(ix);
		return NULL;
	}
	size_t cap = 16;
	while (cap < ix->l.n * 2)
		cap *= 2;
	ix->mask = cap - 1;
	ix->slots = calloc(cap, sizeof *ix->slots);
	if (!ix->slots) {
		name_index_free(ix);
		return NULL;
	}
	for (size_t k = 0; k < ix->l.n; k++) {
		size_t i = name_hash(ix->l.entries[k].name) & ix->mask;
		while (ix->slots[i])
			i = (i + 1) & ix->mask;
		ix->slots[i] = (uint32_t)k + 1;
	}
	return ix;
}

bool name_index_find(const struct name_index *ix, const char *name, struct name_hint *hint)
{
	for (size_t i = name_hash(name) & ix->mask; ix->slots[i]; i = (i + 1) & ix->mask) {
		const struct dir_entry *e = &ix->l.entries[ix->slots[i] - 1];
		if (!strcmp(e->name, name)) {
			*hint = (struct name_hint){ e->layer, e->also, e->nalso };
			return true;
		}
	}
	return false;
}

void name_index_free(struct name_index *ix)
{
	if (!ix)
		return;
	dir_listing_free(&ix->l);
	free(ix->slots);
	free(ix);
}
