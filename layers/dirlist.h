/* dirlist.h - the merged listing of a directory: every copy's entries,
 * top layer first, without duplicates, whiteouts or AUFS markers.
 *
 * Reads only directory entries (getdents64); an entry is stat'ed only
 * when its d_type could be a whiteout (a char device, or a regular file
 * in a directory marked as holding xattr whiteouts).
 */
#ifndef LAYERFS_DIRLIST_H
#define LAYERFS_DIRLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lookup.h"
#include "stack.h"

struct dir_entry {
	char *name;
	uint64_t ino;     /* real inode number in its layer, unmapped */
	uint32_t layer;   /* where the visible entry lives */
	uint8_t type;     /* DT_* */
	uint8_t in_lower_too; /* the name also appears in a layer below */
	uint32_t *also;   /* the layers below where the name appears again, */
	uint32_t nalso;   /*   in any form (entry, whiteout, .wh. marker), in order */
};

struct dir_listing {
	struct dir_entry *entries;
	size_t n;
	size_t lower_xwhiteouts; /* xattr whiteouts met in lower layers */
};

int list_merged_dir(const struct layer_stack *s, const struct layer_copy *copies, unsigned ncopies,
		    struct dir_listing *out);
void dir_listing_free(struct dir_listing *l);

/* Is a merged directory empty of visible entries?  0 = empty, -ENOTEMPTY,
 * or -errno.  As the kernel does, xattr whiteouts in a lower layer count
 * as entries here, though no listing shows them. */
int merged_dir_is_empty(const struct layer_stack *s, const struct layer_copy *copies, unsigned ncopies);

/* What the lower copies of a directory hold, by name, for lookups in
 * deep stacks: lowers never change, so it stays right for as long as the
 * copies are the same.  Built from lower copies only (the upper changes);
 * NULL when it cannot be built. */
struct name_index;
struct name_index *name_index_build(const struct layer_stack *s, const struct layer_copy *copies,
				    unsigned ncopies);
/* false: no lower copy shows the name (absent, or hidden by a whiteout
 * or .wh. marker in a lower layer); true: where the listing saw it. */
bool name_index_find(const struct name_index *ix, const char *name, struct name_hint *hint);
void name_index_free(struct name_index *ix);

#endif
