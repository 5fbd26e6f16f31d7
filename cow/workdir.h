/* workdir.h - the workdir: where copy-ups and new objects are staged
 * before an atomic rename into the upper.  Kernel layout: WORKDIR/work,
 * emptied at every mount so that nothing half-made survives a crash.
 */
#ifndef LAYERFS_WORKDIR_H
#define LAYERFS_WORKDIR_H

#include <stddef.h>

/* Creates or empties WORKDIR/work. Returns its O_PATH fd, or -1 with err. */
int workdir_prepare(int workroot_fd, char *err, size_t errlen, const char *path);

/* A fresh staging name ("#<hex>"); buf needs 24 bytes. */
void workdir_tmpname(char *buf);

/* Removes name under dirfd, recursively for directories. 0 or -errno. */
int remove_tree_at(int dirfd, const char *name);

#endif
