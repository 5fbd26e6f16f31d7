/* ino.h - the inode number a merged object reports.
 *
 * As the kernel does: a merged directory reports its top lower copy's
 * number, a copied-up file its origin's (unless the origin had several
 * links: the kernel's index=off breaks those), the mount root its top
 * layer's root, anything else its own.  When the layers span several
 * filesystems the number is (filesystem index << 48) | real number, so
 * numbers never collide across layers.
 */
#ifndef LAYERFS_INO_H
#define LAYERFS_INO_H

#include <stdbool.h>
#include <stdint.h>

#include "lookup.h"
#include "stack.h"

#define LFS_INO_FS_SHIFT 48

uint64_t map_ino(const struct layer_stack *s, unsigned layer, ino_t ino);

/* st_ino for a lookup result; *nlink_from gets the stat whose nlink to show */
uint64_t merged_ino(const struct layer_stack *s, const struct lookup_result *r, bool is_root);

#endif
