/* origin.h - the kernel's "origin" record: which lower object an upper
 * copy came from, as a file handle in {trusted,user}.overlay.origin.
 *
 * Written at copy-up in the kernel's byte format (so kernel overlay keeps
 * the same inode numbers on our upper), read back to keep st_ino stable
 * across a remount.
 */
#ifndef LAYERFS_ORIGIN_H
#define LAYERFS_ORIGIN_H

#include <stdbool.h>
#include <sys/stat.h>

#include "stack.h"

/* Records that upper_fd was copied up from lower_fd. 0 or -errno. */
int origin_set(const struct layer_stack *s, int upper_fd, int lower_fd);

/* Finds the lower object named by upper_fd's origin; fills st and *layer.
 * Returns 0, or -errno (-ENODATA: no origin). */
int origin_get(const struct layer_stack *s, int upper_fd, struct stat *st, unsigned *layer);

#endif
