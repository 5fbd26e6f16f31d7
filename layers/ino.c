/* ino.c - inode numbers of merged objects (see ino.h). */
#define _GNU_SOURCE
#include "ino.h"

#include "origin.h"

#include <unistd.h>

uint64_t map_ino(const struct layer_stack *s, unsigned layer, ino_t ino)
{
	if (s->same_fs)
		return ino;
	uint64_t fs = s->layers[layer].fs_index;
	uint64_t low = (uint64_t)ino & ((1ULL << LFS_INO_FS_SHIFT) - 1);
	/* inode numbers above 2^48 are folded; no filesystem we know
	 * hands those out, and the fold keeps the number stable */
	if ((uint64_t)ino >> LFS_INO_FS_SHIFT)
		low ^= (uint64_t)ino >> LFS_INO_FS_SHIFT;
	return (fs << LFS_INO_FS_SHIFT) | low;
}

uint64_t merged_ino(const struct layer_stack *s, const struct lookup_result *r, bool is_root)
{
	const struct layer_copy *top = &r->copies[0];

	if (is_root || !stack_is_upper(s, top->layer))
		return map_ino(s, top->layer, r->st.st_ino);
	if (S_ISDIR(r->st.st_mode) && r->ncopies > 1) {
		struct stat lst;
		if (fstat(r->copies[1].fd, &lst) == 0)
			return map_ino(s, r->copies[1].layer, lst.st_ino);
	}
	struct stat ost;
	unsigned olayer;
	if (origin_get(s, top->fd, &ost, &olayer) == 0 && (S_ISDIR(ost.st_mode) || ost.st_nlink <= 1))
		return map_ino(s, olayer, ost.st_ino);
	return map_ino(s, top->layer, r->st.st_ino);
}
