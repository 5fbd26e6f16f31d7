/* lookup.c - look a name up across layers (see lookup.h). */
#define _GNU_SOURCE
#include "lookup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "whiteout.h"

int layer_open_beneath(const struct layer_stack *s, unsigned layer, const char *relpath)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	while (*relpath == '/')
		relpath++;
	if (!*relpath)
		relpath = ".";
	long fd = syscall(SYS_openat2, s->layers[layer].root_fd, relpath, &how, sizeof how);
	return fd < 0 ? -errno : (int)fd;
}

static void add_copy(struct lookup_result *r, uint32_t layer, int fd)
{
	struct layer_copy *c = realloc(r->copies, (r->ncopies + 1) * sizeof *c);
	if (!c)
		abort();
	c[r->ncopies++] = (struct layer_copy){ layer, fd };
	r->copies = c;
}

enum step { STEP_ABSENT, STEP_FOUND, STEP_STOP };

/* Looks at one layer's candidate; fd is the opened entry or -errno. */
static enum step examine(const struct layer_stack *s, struct lookup_result *r, uint32_t layer,
			 int pfd, const char *name, int fd, int *err, char *redirect, bool *more_below)
{
	struct stat st;

	if (fd < 0) {
		/* ELOOP/EXDEV: a redirect's path crosses a symlink or leaves
		 * the layer there; like a missing name, nothing is found */
		if (fd != -ENOENT && fd != -ENOTDIR && fd != -ELOOP && fd != -EXDEV) {
			*err = fd;
			return STEP_STOP;
		}
		if (pfd >= 0 && !stack_is_upper(s, layer) && has_aufs_whiteout(pfd, name))
			return STEP_STOP;
		return STEP_ABSENT;
	}
	if (fstat(fd, &st) < 0) {
		*err = -errno;
		close(fd);
		return STEP_STOP;
	}
	if (is_whiteout_entry(pfd, name, &st)) {
		close(fd);
		return STEP_STOP;
	}
	if (r->ncopies == 0) {
		r->st = st;
	} else if (!S_ISDIR(st.st_mode)) {
		/* a non-directory below a directory is hidden by it */
		close(fd);
		return STEP_STOP;
	}
	add_copy(r, layer, fd);
	if (!S_ISDIR(st.st_mode) || !*more_below)
		return STEP_STOP;
	char buf[PATH_MAX];
	bool opaque;
	int rl = read_dir_marks(fd, &opaque, buf, sizeof buf);
	if (opaque)
		return STEP_STOP;
	if (rl < 0) {
		*err = rl;
		return STEP_STOP;
	}
	if (rl > 0)
		strcpy(redirect, buf);
	return STEP_FOUND;
}

/* Searches the layers below the last copy from their roots, for the
 * absolute path in redirect; a relative redirect met on the way is taken
 * in the directory the path led to. */
/* Opens the parent of an absolute redirect path in one layer, component
 * by component as the kernel walks it: a missing component means the
 * layer has nothing there (-ENOENT); a whiteout or non-directory on the
 * way ends the search in every layer below (-ENOTDIR); an opaque
 * directory on the way ends it after this layer (*opaque_on_path). */
static int open_redirect_parent(const struct layer_stack *s, unsigned layer, const char *path,
				bool *opaque_on_path)
{
	char comp[PATH_MAX];
	int fd = dup(s->layers[layer].root_fd);
	const char *p = path;

	while (fd >= 0) {
		while (*p == '/')
			p++;
		const char *end = strchr(p, '/');
		if (!end)
			return fd; /* p is the last component */
		size_t len = (size_t)(end - p);
		if (len == 0 || len >= sizeof comp) {
			close(fd);
			return -ENOENT;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		p = end;
		struct stat st;
		int next = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		if (next < 0) {
			close(fd);
			return e == ENOENT ? -ENOENT : -ENOTDIR;
		}
		bool wh = fstat(next, &st) < 0 || is_whiteout_entry(fd, comp, &st) || !S_ISDIR(st.st_mode);
		close(fd);
		if (wh) {
			close(next);
			return -ENOTDIR;
		}
		if (is_opaque_dir(next))
			*opaque_on_path = true;
		fd = next;
	}
	return -errno;
}

static enum step follow_absolute(const struct layer_stack *s, struct lookup_result *r, char *redirect,
				 int *err)
{
	char path[PATH_MAX];
	enum step st = STEP_ABSENT;
	strcpy(path, redirect);
	for (uint32_t l = r->copies[r->ncopies - 1].layer + 1; l < s->nlayers; l++) {
		bool more_below = l + 1 < s->nlayers;
		bool opaque_on_path = false;
		redirect[0] = '\0';
		int pfd = open_redirect_parent(s, l, path, &opaque_on_path);
		if (pfd == -ENOTDIR)
			break;
		const char *last = strrchr(path, '/');
		last = last ? last + 1 : path;
		int fd = pfd < 0 ? pfd : openat(pfd, last, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pfd >= 0 && fd < 0)
			fd = -errno;
		if (opaque_on_path)
			more_below = false;
		st = examine(s, r, l, pfd, last, fd, err, redirect, &more_below);
		if (pfd >= 0)
			close(pfd);
		if (redirect[0] == '/') {
			strcpy(path, redirect);
		} else if (redirect[0]) {
			char *slash = strrchr(path, '/');
			size_t keep = slash ? (size_t)(slash - path) + 1 : 0;
			snprintf(path + keep, sizeof path - keep, "%s", redirect);
		}
		if (st == STEP_STOP || opaque_on_path)
			break;
	}
	return st;
}

int layers_lookup(const struct layer_stack *s, const struct layer_copy *parent, unsigned nparent,
		  const char *name, struct lookup_result *r)
{
	return layers_lookup_hinted(s, parent, nparent, name, NULL, r);
}

/* Can a lower layer hold the name, by the hint?  Layers come in order,
 * so *k only moves forward. */
static bool hint_allows(const struct name_hint *h, uint32_t layer, uint32_t *k)
{
	if (layer == h->first)
		return true;
	while (*k < h->nalso && h->also[*k] < layer)
		(*k)++;
	return *k < h->nalso && h->also[*k] == layer;
}

int layers_lookup_hinted(const struct layer_stack *s, const struct layer_copy *parent, unsigned nparent,
			 const char *name, const struct name_hint *hint, struct lookup_result *r)
{
	uint32_t hk = 0;
	char redirect[PATH_MAX] = "";
	int err = 0;
	bool hidden_marker = is_aufs_marker_name(name);
	bool done = false;

	memset(r, 0, sizeof *r);
	for (unsigned i = 0; i < nparent; i++) {
		uint32_t layer = parent[i].layer;
		bool more_below = i + 1 < nparent || layer + 1 < s->nlayers;

		if (hidden_marker && !stack_is_upper(s, layer))
			break;
		if (hint && !redirect[0] && !stack_is_upper(s, layer) && !hint_allows(hint, layer, &hk))
			continue;
		if (redirect[0] == '/') {
			follow_absolute(s, r, redirect, &err);
			done = true;
			break;
		}
		const char *lname = redirect[0] ? redirect : name;
		int fd = openat(parent[i].fd, lname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
		enum step st = examine(s, r, layer, parent[i].fd, lname, fd, &err, redirect, &more_below);
		if (st == STEP_STOP) {
			done = true;
			break;
		}
	}
	/* an absolute redirect on the last copy of the parent: the kernel
	 * goes on from the root's lower layers */
	if (!done && !err && r->ncopies && redirect[0] == '/')
		follow_absolute(s, r, redirect, &err);
	if (err) {
		lookup_result_free(r);
		return err;
	}
	if (r->ncopies == 0)
		return -ENOENT;
	return 0;
}

void lookup_result_free(struct lookup_result *r)
{
	for (unsigned i = 0; i < r->ncopies; i++)
		close(r->copies[i].fd);
	free(r->copies);
	r->copies = NULL;
	r->ncopies = 0;
}
