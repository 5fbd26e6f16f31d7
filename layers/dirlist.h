/* dirlist.h - the merged listing of a directory: every copy's entries,
 * top layer first, without duplicates, whiteouts or AUFS markers.
 *
 * Reads only directory entries (getdents64); an entry is stat'ed only
 * when its d_type could be a whiteout (a char device, or a regular file
 * in a directory marked as holding xattr whiteouts).
 */
#ifndef LAYERFS_DIRLIST_H
#define LAYERFS_DIRLIST_H

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

#endif
