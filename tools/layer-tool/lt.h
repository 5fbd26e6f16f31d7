/* lt.h - what the parts of layer-tool share: the error and progress
 * reporters, directory-fd helpers, the tar writer and the commands.
 *
 * Every function that fails prints exactly one line, "layer-tool: ...",
 * and returns -1; its callers only pass the -1 up.
 */
#ifndef LAYER_TOOL_LT_H
#define LAYER_TOOL_LT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "layers/stack.h"

#define LT_PROG "layer-tool"

/* ------------------------------------------------------------ util.c */

int lt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *lt_xmalloc(size_t n);
void *lt_xrealloc(void *p, size_t n);
char *lt_xstrdup(const char *s);
char *lt_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable string (paths inside a layer, JSON text). */
struct lt_buf {
	char *s;
	size_t len, cap;
};
void buf_set_len(struct lt_buf *b, size_t len);
void buf_append(struct lt_buf *b, const char *s);
void buf_free(struct lt_buf *b);

/* The progress line on stderr (only when stderr is a terminal). */
void progress_start(const char *what);
void progress_tick(uint64_t entries, uint64_t bytes);
void progress_end(void);

/* Sorted names of a directory (no "." and ".."), from an fd open for
 * reading.  Returns the count or -errno; *names is freed with names_free. */
long read_sorted_names(int dirfd, char ***names);
void names_free(char **names, long n);

/* openat2 beneath a root with no symlinks followed. -errno on failure. */
int open_beneath(int rootfd, const char *rel, int flags, mode_t mode);

/* Opens an O_PATH fd's object again with real flags (through /proc). */
int reopen_fd(int opath_fd, int flags);

/* remove_tree_at() (cow/workdir.h) removes a staging tree. */

int write_all(int fd, const void *buf, size_t len);

/* The xattrs an image layer carries (see commit.c): names sorted,
 * overlay-private ones left out.  Fills parallel arrays; returns the
 * count or -errno. */
struct xattr_set {
	bool metacopy; /* an overlay metacopy marker: the data is in a lower */
	bool has_private; /* some overlay-private xattr (marker, origin, ...) */
	size_t n;
	char **names;
	void **vals;
	size_t *lens;
};
int xattrs_read(int fd, bool opath, struct xattr_set *x);
void xattrs_free(struct xattr_set *x);
bool xattr_in_image(const char *name);

/* "sha256:<64 hex>" -> true */
bool digest_valid(const char *d);

/* Opens a read-only stack of the given layers (colon list, top first,
 * `\:` escapes as layerfs).  Prints the error itself. */
int open_lower_stack(struct layer_stack *s, const char *const *paths, size_t n);
int split_layer_list(const char *spec, char ***out, size_t *n);

/* The next '/'-separated component of *p (advanced past it), its length
 * in *len; NULL at the end. */
const char *next_component(const char **p, size_t *len);

/* list_merged_dir() of layers/dirlist.h, names sorted (strcmp). */
struct dir_listing;
struct layer_copy;
int list_sorted(const struct layer_stack *s, const struct layer_copy *copies, unsigned n, struct dir_listing *l);

/* Walks PATH (relative, '/'-separated) in a stack from its root; fills
 * r (r->ncopies == 0 when absent).  Returns 0 or -1 (printed). */
struct lookup_result;
int stack_resolve(const struct layer_stack *s, const char *path, struct lookup_result *r);

/* ------------------------------------------------------------ tarw.c */

enum lt_compress { LT_NONE, LT_GZIP, LT_ZSTD, LT_LZ4 };

struct tarw;
/* Opens a deterministic pax writer on out_fd, compressing as asked. */
struct tarw *tarw_open(int out_fd, enum lt_compress c, const char *what);
struct archive_entry;
int tarw_header(struct tarw *w, struct archive_entry *e);
int tarw_data(struct tarw *w, const void *buf, size_t len);
/* Finishes the stream; the digests are "sha256:<hex>". */
int tarw_close(struct tarw *w, char diffid[72], char blob[72], uint64_t *blob_size);
void tarw_abort(struct tarw *w);
uint64_t tarw_tar_bytes(const struct tarw *w);
const char *compress_name(enum lt_compress c);
int compress_parse(const char *s, enum lt_compress *c);

/* ------------------------------------------------------------ commands */

struct commit_opts {
	const char *upper;
	char **lowers;
	size_t nlowers;
	bool have_mtime;
	time_t mtime; /* clamp */
	enum lt_compress compress;
	bool compress_set;
	const char *output;
	const char *image;
	const char *from;
	bool quiet;
};

/* Writes the layer of UPPER into fd; digests as tarw_close. */
int commit_layer(const struct commit_opts *o, int fd, enum lt_compress c, char diffid[72],
		 char blob[72], uint64_t *blob_size);
int cmd_commit(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_unpack(int argc, char **argv);

/* apply.c: unpacks the archive read from fd into DIR (absent or empty);
 * checks the sha256 of the raw bytes when want_digest is set. */
struct apply_opts {
	bool aufs;
	const char *want_digest;
	const char *what; /* name of the archive for messages */
};
int apply_layer_fd(int fd, const char *dir, const struct apply_opts *o);

/* oci.c */
int image_append(const struct commit_opts *o);

extern const char *lt_usage_text;

#endif
