/* lookup.h - find a name across the layers of a merged directory.
 *
 * Order as the kernel: the parent's copies top to bottom; stop at a
 * non-directory, a whiteout or an opaque directory.  A directory found at
 * several levels is one merged directory, every copy kept.  A redirect on
 * a directory copy sends the search in the layers below it to the
 * redirect's path.
 */
#ifndef LAYERFS_LOOKUP_H
#define LAYERFS_LOOKUP_H

#include <stdint.h>
#include <sys/stat.h>

#include "stack.h"

struct layer_copy {
	uint32_t layer;
	int fd; /* O_PATH|O_NOFOLLOW */
};

struct lookup_result {
	struct stat st;            /* of the top copy */
	struct layer_copy *copies; /* top first; dirs: every merged copy */
	unsigned ncopies;
};

/* Returns 0 and fills r, or -errno (-ENOENT when absent or whited out). */
int layers_lookup(const struct layer_stack *s, const struct layer_copy *parent, unsigned nparent,
		  const char *name, struct lookup_result *r);

/* Where a listing of the parent saw a name: first, the layer of its
 * visible entry; also[], the layers below where it appears again. */
struct name_hint {
	uint32_t first;
	const uint32_t *also;
	uint32_t nalso;
};

/* The same, for a name a listing saw: lower copies of the parent at
 * other layers than the hint's are not searched (they cannot have it:
 * lowers never change); the upper copy always is, and every copy once
 * a redirect sends the search to another name. */
int layers_lookup_hinted(const struct layer_stack *s, const struct layer_copy *parent, unsigned nparent,
			 const char *name, const struct name_hint *hint, struct lookup_result *r);

void lookup_result_free(struct lookup_result *r);

/* Opens a path relative to a layer root without leaving the layer and
 * without following symlinks.  Returns an O_PATH fd or -errno. */
int layer_open_beneath(const struct layer_stack *s, unsigned layer, const char *relpath);

#endif
