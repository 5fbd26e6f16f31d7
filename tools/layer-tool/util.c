/* util.c - layer-tool's small shared pieces: one-line errors, the
 * progress line, sorted directory listings and safe path opening through
 * directory fds, removal of a staging tree, the xattrs an image carries,
 * and opening a read-only layer stack with layers/. */
#define _GNU_SOURCE
#include "lt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layers/dirlist.h"
#include "layers/lookup.h"
#include "layers/options.h"
#include "layers/whiteout.h"
#include "layers/xattr.h"

static bool progress_on;
static bool progress_shown;
static struct timespec progress_last;
static const char *progress_what;

static void vmessage(const char *kind, const char *fmt, va_list ap)
{
	progress_end();
	fprintf(stderr, LT_PROG ": %s", kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int lt_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage("", fmt, ap);
	va_end(ap);
	return -1;
}

void lt_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage("warning: ", fmt, ap);
	va_end(ap);
}

void *lt_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		lt_err("out of memory");
		exit(1);
	}
	return p;
}

void *lt_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		lt_err("out of memory");
		exit(1);
	}
	return p;
}

char *lt_xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		lt_err("out of memory");
		exit(1);
	}
	return p;
}

char *lt_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	va_start(ap, fmt);
	int n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0) {
		lt_err("out of memory");
		exit(1);
	}
	return p;
}

void buf_set_len(struct lt_buf *b, size_t len)
{
	if (len + 1 > b->cap) {
		b->cap = (len + 1) * 2;
		b->s = lt_xrealloc(b->s, b->cap);
	}
	b->len = len;
	b->s[len] = '\0';
}

void buf_append(struct lt_buf *b, const char *s)
{
	size_t old = b->len, n = strlen(s);
	buf_set_len(b, old + n);
	memcpy(b->s + old, s, n + 1);
}

void buf_free(struct lt_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof *b);
}

void progress_start(const char *what)
{
	progress_on = isatty(STDERR_FILENO);
	progress_what = what;
	progress_shown = false;
	clock_gettime(CLOCK_MONOTONIC, &progress_last);
}

void progress_tick(uint64_t entries, uint64_t bytes)
{
	struct timespec now;
	if (!progress_on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - progress_last.tv_sec) * 1000000000L + (now.tv_nsec - progress_last.tv_nsec) < 250000000L)
		return;
	progress_last = now;
	fprintf(stderr, "\r\033[K" LT_PROG ": %s: %llu entries, %.1f MiB", progress_what,
		(unsigned long long)entries, (double)bytes / 1048576.0);
	progress_shown = true;
}

void progress_end(void)
{
	if (progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = false;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

long read_sorted_names(int dirfd, char ***names)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	long n = 0, cap = 0;
	char **v = NULL;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			v = lt_xrealloc(v, (size_t)cap * sizeof *v);
		}
		v[n++] = lt_xstrdup(nm);
	}
	int e = errno;
	closedir(d);
	if (e) {
		names_free(v, n);
		return -e;
	}
	if ((size_t)n > 1)
		qsort(v, (size_t)n, sizeof *v, cmp_names);
	*names = v;
	return n;
}

void names_free(char **names, long n)
{
	for (long i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int open_beneath(int rootfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	if (!*rel)
		rel = ".";
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
	return fd < 0 ? -errno : (int)fd;
}

int reopen_fd(int opath_fd, int flags)
{
	char p[40];
	snprintf(p, sizeof p, "/proc/self/fd/%d", opath_fd);
	return open(p, flags | O_CLOEXEC);
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Which xattrs go into an image layer: a file's capabilities, its ACLs,
 * user.* and trusted.* ones.  Never the overlay's markers (they would
 * turn into real whiteouts or redirects where the layer is unpacked),
 * nor security labels of the machine that built it. */
bool xattr_in_image(const char *name)
{
	if (xattr_is_private(name))
		return false;
	return !strcmp(name, "security.capability") || !strcmp(name, "system.posix_acl_access") ||
	       !strcmp(name, "system.posix_acl_default") || !strncmp(name, "user.", 5) ||
	       !strncmp(name, "trusted.", 8);
}

int xattrs_read(int fd, bool opath, struct xattr_set *x)
{
	char stackbuf[1024];
	char *list = stackbuf;
	memset(x, 0, sizeof *x);
	ssize_t len = opath ? fd_listxattr(fd, list, sizeof stackbuf) : flistxattr(fd, list, sizeof stackbuf);
	if (len < 0 && errno == ERANGE) {
		len = opath ? fd_listxattr(fd, NULL, 0) : flistxattr(fd, NULL, 0);
		if (len < 0)
			return -errno;
		list = lt_xmalloc((size_t)len + 1);
		len = opath ? fd_listxattr(fd, list, (size_t)len) : flistxattr(fd, list, (size_t)len);
	}
	if (len < 0) {
		int e = errno;
		if (list != stackbuf)
			free(list);
		return e == ENOTSUP ? 0 : -e;
	}
	int rc = 0;
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(list + off) + 1) {
		const char *nm = list + off;
		if (!strcmp(nm, "trusted.overlay.metacopy") || !strcmp(nm, "user.overlay.metacopy"))
			x->metacopy = true;
		if (xattr_is_private(nm))
			x->has_private = true;
		if (!xattr_in_image(nm))
			continue;
		ssize_t vl = opath ? fd_getxattr(fd, nm, NULL, 0) : fgetxattr(fd, nm, NULL, 0);
		if (vl < 0) {
			rc = -errno;
			break;
		}
		void *v = lt_xmalloc((size_t)vl);
		vl = opath ? fd_getxattr(fd, nm, v, (size_t)vl) : fgetxattr(fd, nm, v, (size_t)vl);
		if (vl < 0) {
			rc = -errno;
			free(v);
			break;
		}
		x->names = lt_xrealloc(x->names, (x->n + 1) * sizeof *x->names);
		x->vals = lt_xrealloc(x->vals, (x->n + 1) * sizeof *x->vals);
		x->lens = lt_xrealloc(x->lens, (x->n + 1) * sizeof *x->lens);
		x->names[x->n] = lt_xstrdup(nm);
		x->vals[x->n] = v;
		x->lens[x->n] = (size_t)vl;
		x->n++;
	}
	if (list != stackbuf)
		free(list);
	if (rc) {
		xattrs_free(x);
		return rc;
	}
	/* sorted: the same file gives the same header */
	for (size_t i = 1; i < x->n; i++)
		for (size_t j = i; j > 0 && strcmp(x->names[j - 1], x->names[j]) > 0; j--) {
			char *tn = x->names[j];
			x->names[j] = x->names[j - 1];
			x->names[j - 1] = tn;
			void *tv = x->vals[j];
			x->vals[j] = x->vals[j - 1];
			x->vals[j - 1] = tv;
			size_t tl = x->lens[j];
			x->lens[j] = x->lens[j - 1];
			x->lens[j - 1] = tl;
		}
	return (int)x->n;
}

void xattrs_free(struct xattr_set *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->names[i]);
		free(x->vals[i]);
	}
	free(x->names);
	free(x->vals);
	free(x->lens);
	memset(x, 0, sizeof *x);
}

bool digest_valid(const char *d)
{
	if (strncmp(d, "sha256:", 7) || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int split_layer_list(const char *spec, char ***out, size_t *n)
{
	char err[512];
	if (lfs_split_layers(spec, out, n, err, sizeof err))
		return lt_err("%s", err);
	return 0;
}

int open_lower_stack(struct layer_stack *s, const char *const *paths, size_t n)
{
	struct lfs_options o;
	char err[1024];
	memset(&o, 0, sizeof o);
	o.lowers = (char **)paths;
	o.nlowers = n;
	o.read_only = true;
	if (stack_open(s, &o, err, sizeof err))
		return lt_err("%s", err);
	return 0;
}

const char *next_component(const char **p, size_t *len)
{
	const char *s = *p;
	while (*s == '/')
		s++;
	if (!*s)
		return NULL;
	const char *e = strchr(s, '/');
	*len = e ? (size_t)(e - s) : strlen(s);
	*p = s + *len;
	return s;
}

static int cmp_dirent(const void *a, const void *b)
{
	return strcmp(((const struct dir_entry *)a)->name, ((const struct dir_entry *)b)->name);
}

int list_sorted(const struct layer_stack *s, const struct layer_copy *copies, unsigned n, struct dir_listing *l)
{
	int rc = list_merged_dir(s, copies, n, l);
	if (rc == 0 && l->n > 1)
		qsort(l->entries, l->n, sizeof *l->entries, cmp_dirent);
	return rc;
}

int stack_resolve(const struct layer_stack *s, const char *path, struct lookup_result *r)
{
	memset(r, 0, sizeof *r);
	r->copies = lt_xmalloc(s->nlayers * sizeof *r->copies);
	for (unsigned l = 0; l < s->nlayers; l++) {
		int fd = dup(s->layers[l].root_fd);
		if (fd < 0)
			return lt_err("dup: %s", strerror(errno));
		r->copies[r->ncopies++] = (struct layer_copy){ l, fd };
		if (l + 1 < s->nlayers && is_opaque_dir(fd))
			break;
	}
	fstat(r->copies[0].fd, &r->st);
	const char *p = path, *cp;
	char comp[NAME_MAX + 1];
	size_t len;
	while ((cp = next_component(&p, &len))) {
		if (len > NAME_MAX) {
			lookup_result_free(r);
			return 0;
		}
		memcpy(comp, cp, len);
		comp[len] = '\0';
		struct lookup_result c;
		int rc = layers_lookup(s, r->copies, r->ncopies, comp, &c);
		lookup_result_free(r);
		if (rc == -ENOENT || rc == -ENOTDIR) {
			memset(r, 0, sizeof *r);
			return 0;
		}
		if (rc < 0) {
			memset(r, 0, sizeof *r);
			return lt_err("%s: lookup of '%s': %s", s->layers[0].path, path, strerror(-rc));
		}
		*r = c;
		if (*p && !S_ISDIR(r->st.st_mode)) {
			lookup_result_free(r);
			memset(r, 0, sizeof *r);
			return 0;
		}
	}
	return 0;
}
