/* inode.c - the inode table: one lfs_inode per merged object the kernel
 * knows, keyed by the inode number stat shows (two names of one object
 * meet in one inode), freed when the kernel forgets it and no child
 * still names it as parent.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../layers/ino.h"
#include "../layers/whiteout.h"

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lfs_inode **buckets;
static size_t nbuckets, ninodes;

void inode_table_init(void)
{
	nbuckets = 1024;
	buckets = calloc(nbuckets, sizeof *buckets);
	if (!buckets)
		abort();
}

static size_t bucket_of(uint64_t key, size_t n)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return key & (n - 1);
}

static void table_grow(void)
{
	size_t n = nbuckets * 2;
	struct lfs_inode **nb = calloc(n, sizeof *nb);
	if (!nb)
		return; /* keep the longer chains */
	for (size_t b = 0; b < nbuckets; b++) {
		for (struct lfs_inode *i = buckets[b], *next; i; i = next) {
			next = i->hnext;
			size_t k = bucket_of(i->st_ino, n);
			i->hnext = nb[k];
			nb[k] = i;
		}
	}
	free(buckets);
	buckets = nb;
	nbuckets = n;
}

static void table_unlink(struct lfs_inode *i)
{
	struct lfs_inode **pp = &buckets[bucket_of(i->st_ino, nbuckets)];
	while (*pp && *pp != i)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = i->hnext;
	ninodes--;
}

struct lfs_inode *ino_to_inode(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? lfs.root : (struct lfs_inode *)(uintptr_t)ino;
}

fuse_ino_t inode_to_ino(const struct lfs_inode *i)
{
	return i == lfs.root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)i;
}

void inode_inval_attrs(const struct lfs_inode *i)
{
	/* offset -1: attributes only, no page cache, so this cannot wait on
	 * the request being served */
	if (lfs.se)
		fuse_lowlevel_notify_inval_inode(lfs.se, inode_to_ino(i), -1, 0);
}

/* fds held by the copies of inodes other than the root, and how many
 * may be held before idle inodes give theirs back */
static _Atomic long copy_fds;
static long fd_budget = 4096;
static size_t sweep_cursor;

void inode_set_fd_budget(long budget)
{
	fd_budget = budget < 64 ? 64 : budget;
}

static bool copies_live(const struct lfs_inode *i)
{
	return i->copies[0].fd >= 0;
}

static void free_copies(struct lfs_inode *i)
{
	if (copies_live(i)) {
		for (uint32_t c = 0; c < i->ncopies; c++)
			close(i->copies[c].fd);
		if (i != lfs.root)
			atomic_fetch_sub(&copy_fds, (long)i->ncopies);
	}
	if (i->copies != &i->one)
		free(i->copies);
	i->copies = &i->one;
	i->ncopies = 0;
}

/* Closes the fds but keeps the top layer, so inode_is_upper() and the
 * copies[0].layer readers stay right while the fds are away. */
static void drop_copies(struct lfs_inode *i)
{
	free_copies(i);
	i->one = (struct layer_copy){ i->top_layer, -1 };
	i->ncopies = 1;
}

static void set_copies(struct lfs_inode *i, struct layer_copy *copies, uint32_t n)
{
	if (n == 1) {
		i->one = copies[0];
		i->copies = &i->one;
		free(copies);
	} else {
		i->copies = copies;
	}
	i->ncopies = n;
	i->top_layer = i->copies[0].layer;
	if (i != lfs.root)
		atomic_fetch_add(&copy_fds, (long)n);
}

/* Called with table_lock held; drops the inode and, in turn, any parent
 * whose last reference it was. */
static void maybe_free_locked(struct lfs_inode *i)
{
	while (i && i != lfs.root && i->nlookup == 0 && i->refs == 0) {
		struct lfs_inode *parent = i->parent;
		table_unlink(i);
		free_copies(i);
		name_index_free(atomic_load(&i->lower_index));
		free(i->name);
		free(i);
		if (parent)
			parent->refs--;
		i = parent;
	}
}

static struct lfs_inode *inode_new(struct lookup_result *r, uint64_t st_ino)
{
	struct lfs_inode *i = calloc(1, sizeof *i);
	if (!i)
		abort();
	i->st_ino = st_ino;
	i->type = r->st.st_mode & S_IFMT;
	i->top_dev = r->st.st_dev;
	i->top_ino = r->st.st_ino;
	i->recent = true;
	lfs_rw_init(&i->rw);
	set_copies(i, r->copies, r->ncopies);
	r->copies = NULL;
	r->ncopies = 0;
	return i;
}

struct lfs_inode *make_root_inode(void)
{
	struct layer_copy *copies = calloc(lfs.stack.nlayers, sizeof *copies);
	struct lookup_result r = { .copies = copies };
	if (!copies)
		abort();
	for (unsigned l = 0; l < lfs.stack.nlayers; l++) {
		int fd = dup(lfs.stack.layers[l].root_fd);
		if (fd < 0)
			abort();
		copies[r.ncopies++] = (struct layer_copy){ l, fd };
		/* an opaque root hides the layers below it */
		if (l + 1 < lfs.stack.nlayers && is_opaque_dir(fd))
			break;
	}
	fstat(copies[0].fd, &r.st);
	struct lfs_inode *root = inode_new(&r, 0);
	atomic_fetch_sub(&copy_fds, (long)root->ncopies); /* the root keeps its fds */
	root->st_ino = merged_ino(&lfs.stack, &(struct lookup_result){ .st = r.st, .copies = root->copies, .ncopies = root->ncopies }, true);
	root->nlookup = 1;
	pthread_mutex_lock(&table_lock);
	size_t k = bucket_of(root->st_ino, nbuckets);
	root->hnext = buckets[k];
	buckets[k] = root;
	ninodes++;
	pthread_mutex_unlock(&table_lock);
	return root;
}

/* Is i the inode for this name?  One inode serves every name of an
 * object, except a lower hard link: FUSE does not say which name an open
 * or setattr came through, and the kernel (index=off) copies up only the
 * name used, so each name gets its own inode, all showing one st_ino. */
static bool inode_matches(const struct lfs_inode *i, uint64_t st_ino, bool per_name,
			  const struct lfs_inode *parent, const char *name)
{
	if (i->st_ino != st_ino)
		return false;
	if (!per_name)
		return true;
	return i->parent == parent && i->name && !strcmp(i->name, name);
}

static struct lfs_inode *table_search(uint64_t st_ino, bool per_name, const struct lfs_inode *parent,
				      const char *name)
{
	struct lfs_inode *i;
	for (i = buckets[bucket_of(st_ino, nbuckets)]; i; i = i->hnext)
		if (inode_matches(i, st_ino, per_name, parent, name))
			break;
	return i;
}

struct lfs_inode *inode_from_lookup(struct lfs_inode *parent, const char *name,
				    struct lookup_result *r, uint64_t st_ino, bool *fresh_out)
{
	struct lfs_inode *i;
	bool per_name = !S_ISDIR(r->st.st_mode) && r->st.st_nlink > 1 &&
			!stack_is_upper(&lfs.stack, r->copies[0].layer);

	pthread_mutex_lock(&tree_lock);
	pthread_mutex_lock(&table_lock);
	i = table_search(st_ino, per_name, parent, name);
	pthread_mutex_unlock(&tree_lock);
	*fresh_out = i == NULL;
	if (i) {
		i->nlookup++;
		pthread_mutex_unlock(&table_lock);
		lookup_result_free(r);
		return i;
	}
	/* made under the lock, so that two lookups of one name meet */
	struct lfs_inode *fresh = inode_new(r, st_ino);
	fresh->name = strdup(name);
	fresh->parent = parent;
	if (ninodes + 1 > nbuckets)
		table_grow();
	size_t k = bucket_of(st_ino, nbuckets);
	fresh->hnext = buckets[k];
	buckets[k] = fresh;
	fresh->nlookup = 1;
	if (parent)
		parent->refs++;
	ninodes++;
	pthread_mutex_unlock(&table_lock);
	inode_evict_idle();
	return fresh;
}

void inode_forget(struct lfs_inode *i, uint64_t n)
{
	pthread_mutex_lock(&table_lock);
	i->nlookup = n > i->nlookup ? 0 : i->nlookup - n;
	maybe_free_locked(i);
	pthread_mutex_unlock(&table_lock);
}

void inode_release(struct lfs_inode *i)
{
	pthread_mutex_lock(&table_lock);
	i->refs--;
	maybe_free_locked(i);
	pthread_mutex_unlock(&table_lock);
}

void inode_set_upper(struct lfs_inode *i, int upper_fd)
{
	struct stat st;
	if (fstat(upper_fd, &st) == 0) {
		i->top_dev = st.st_dev;
		i->top_ino = st.st_ino;
	}
	bool keep_lowers = i->type == S_IFDIR && i->ncopies > 0 && i->copies[0].layer != 0;
	i->top_layer = 0;
	if (i != lfs.root)
		atomic_fetch_add(&copy_fds, 1);
	if (keep_lowers) {
		/* a directory keeps its lower copies: they are merged below */
		struct layer_copy *c = malloc((i->ncopies + 1) * sizeof *c);
		if (!c)
			abort();
		c[0] = (struct layer_copy){ 0, upper_fd };
		memcpy(c + 1, i->copies, i->ncopies * sizeof *c);
		if (i->copies != &i->one)
			free(i->copies);
		i->copies = c;
		i->ncopies++;
	} else {
		free_copies(i);
		i->one = (struct layer_copy){ 0, upper_fd };
		i->copies = &i->one;
		i->ncopies = 1;
	}
	atomic_fetch_add(&i->data_gen, 1);
}

void inode_set_name(struct lfs_inode *i, struct lfs_inode *parent, const char *name)
{
	char *copy = strdup(name);
	struct lfs_inode *old;

	pthread_mutex_lock(&table_lock);
	parent->refs++;
	pthread_mutex_unlock(&table_lock);

	pthread_mutex_lock(&tree_lock);
	old = i->parent;
	i->parent = parent;
	free(i->name);
	i->name = copy;
	pthread_mutex_unlock(&tree_lock);

	if (old)
		inode_release(old);
}

struct lfs_inode *inode_get_parent(struct lfs_inode *i, char **name)
{
	struct lfs_inode *p;

	pthread_mutex_lock(&tree_lock);
	p = i->parent;
	*name = i->name ? strdup(i->name) : NULL;
	if (p) {
		pthread_mutex_lock(&table_lock);
		p->refs++;
		pthread_mutex_unlock(&table_lock);
	}
	pthread_mutex_unlock(&tree_lock);
	return p;
}

void inode_add_lookup(struct lfs_inode *i)
{
	pthread_mutex_lock(&table_lock);
	i->nlookup++;
	pthread_mutex_unlock(&table_lock);
}

void inode_rekey(struct lfs_inode *i, uint64_t st_ino)
{
	pthread_mutex_lock(&table_lock);
	table_unlink(i);
	i->st_ino = st_ino;
	size_t k = bucket_of(st_ino, nbuckets);
	i->hnext = buckets[k];
	buckets[k] = i;
	ninodes++;
	pthread_mutex_unlock(&table_lock);
}

struct lfs_inode *inode_find_named(uint64_t st_ino, struct lfs_inode *parent, const char *name)
{
	pthread_mutex_lock(&tree_lock);
	pthread_mutex_lock(&table_lock);
	struct lfs_inode *i = table_search(st_ino, true, parent, name);
	if (!i)
		i = table_search(st_ino, false, NULL, NULL);
	pthread_mutex_unlock(&tree_lock);
	if (i)
		i->refs++;
	pthread_mutex_unlock(&table_lock);
	return i;
}

/* ---- copies as a cache of fds ---- */

/* Finds the copies of i again through its parent and name.  Best effort:
 * nothing changes when the name no longer leads to the same object. */
static void reload_copies(struct lfs_inode *i)
{
	char *name;
	struct lfs_inode *parent = inode_get_parent(i, &name);
	struct lookup_result r;
	int rc = -ESTALE;

	if (parent && name) {
		inode_rdlock(parent);
		rc = layers_lookup(&lfs.stack, parent->copies, parent->ncopies, name, &r);
		lfs_rw_unlock(&parent->rw);
	}
	if (parent)
		inode_release(parent);
	free(name);
	if (rc)
		return;
	lfs_rw_wrlock(&i->rw);
	if (!copies_live(i) && r.st.st_dev == i->top_dev && r.st.st_ino == i->top_ino) {
		free_copies(i);
		set_copies(i, r.copies, r.ncopies);
		i->recent = true; /* not to be swept before the caller gets to it */
		r.copies = NULL;
		r.ncopies = 0;
	}
	lfs_rw_unlock(&i->rw);
	lookup_result_free(&r);
	inode_evict_idle();
}

/* A sweep may take the fds again between the reload and our lock; a few
 * rounds settle that, and a name that leads elsewhere ends it. */
static void lock_with_copies(struct lfs_inode *i, bool write)
{
	for (int round = 0;; round++) {
		if (write)
			lfs_rw_wrlock(&i->rw);
		else
			lfs_rw_rdlock(&i->rw);
		if (copies_live(i) || round == 4) {
			i->recent = true;
			return;
		}
		lfs_rw_unlock(&i->rw);
		reload_copies(i);
	}
}

void inode_rdlock(struct lfs_inode *i)
{
	lock_with_copies(i, false);
}

void inode_wrlock(struct lfs_inode *i)
{
	lock_with_copies(i, true);
}

void inode_pin(struct lfs_inode *i)
{
	lfs_rw_wrlock(&i->rw);
	i->pinned = true;
	lfs_rw_unlock(&i->rw);
}

/* A clock sweep over the table: an inode used since the last pass gets
 * another chance, an idle one gives its fds back.  Only try-locks are
 * taken under table_lock, so lock order does not matter here. */
void inode_evict_idle(void)
{
	if (atomic_load(&copy_fds) <= fd_budget)
		return;
	long target = fd_budget - fd_budget / 4;
	pthread_mutex_lock(&table_lock);
	for (size_t n = 0; n < 2 * nbuckets && atomic_load(&copy_fds) > target; n++) {
		sweep_cursor = (sweep_cursor + 1) & (nbuckets - 1);
		for (struct lfs_inode *i = buckets[sweep_cursor]; i; i = i->hnext) {
			if (i == lfs.root || i->pinned || !copies_live(i))
				continue;
			if (atomic_exchange(&i->recent, false))
				continue;
			if (lfs_rw_trywrlock(&i->rw) != 0)
				continue;
			if (!i->pinned && copies_live(i))
				drop_copies(i);
			lfs_rw_unlock(&i->rw);
		}
	}
	pthread_mutex_unlock(&table_lock);
}
