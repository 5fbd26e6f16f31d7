/* stack.h - the layer stack: the opened roots of the upper and lower
 * layers, the workdir, and the facts about them the rest of the daemon
 * asks for (which filesystem a layer is on, which xattr namespace the
 * overlay markers live in).
 *
 * Layer 0 is the upper when there is one; lowers follow, top first.
 */
#ifndef LAYERFS_STACK_H
#define LAYERFS_STACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "options.h"

struct layer {
	int root_fd;     /* O_PATH|O_DIRECTORY */
	int handle_fd;   /* O_RDONLY root for open_by_handle_at (refuses O_PATH); -1 if none */
	dev_t dev;
	ino_t root_ino;
	unsigned fs_index; /* index among the distinct filesystems of the stack */
	char *path;      /* for messages only */
};

struct layer_stack {
	struct layer *layers;
	unsigned nlayers;
	bool has_upper;     /* layers[0] is writable */
	bool read_only;
	bool volatile_;
	bool redirect_dir;
	bool same_fs;       /* every layer on one filesystem: real inode numbers */
	bool userxattr;     /* write user.overlay.* instead of trusted.overlay.* */
	bool can_mknod_whiteout;
	int work_fd;        /* O_PATH of workdir/work, -1 when read-only */
	int workroot_fd;    /* O_PATH of workdir */
	char *work_path;
	unsigned nfs;       /* distinct filesystems */
};

/* Opens and checks every directory named in o. On failure returns -1 and
 * writes one line into err; nothing is left open. */
int stack_open(struct layer_stack *s, const struct lfs_options *o, char *err, size_t errlen);
void stack_close(struct layer_stack *s);

static inline bool stack_is_upper(const struct layer_stack *s, unsigned layer)
{
	return s->has_upper && layer == 0;
}

/* The prefix of the overlay xattrs we write: "trusted.overlay." or "user.overlay." */
const char *stack_xattr_prefix(const struct layer_stack *s);

/* Builds the default workdir path for an upper: a hidden sibling. */
char *stack_default_workdir(const char *upper);

#endif
