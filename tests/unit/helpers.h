/* helpers.h - small file-tree helpers shared by the unit tests.
 * Every helper aborts the test (via cmocka's fail_msg) when the set-up
 * itself fails, so a test only ever fails on what it asserts. */
#ifndef LAYERFS_UNIT_HELPERS_H
#define LAYERFS_UNIT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A fresh directory under /tmp; free with tmpdir_free (removes it). */
char *tmpdir_new(void);
void tmpdir_free(char *dir);

/* rm -rf, without following symlinks or crossing into other mounts' data. */
void rm_rf(const char *path);

/* a "/" b, malloc'd. */
char *pjoin(const char *a, const char *b);

/* Makes DIR/REL and every missing parent (mode 0755). Returns the full path (malloc'd). */
char *mkdirs(const char *dir, const char *rel);

/* Writes CONTENT to DIR/REL (parents made), mode 0644. */
void put_file(const char *dir, const char *rel, const char *content);

/* Reads a whole file (NUL-terminated, malloc'd), NULL when it cannot. */
char *slurp(const char *path, size_t *len);

/* Sets an xattr on DIR/REL without following a symlink. */
void put_xattr(const char *dir, const char *rel, const char *name, const char *value);

/* Makes a char device 0/0 (the kernel's whiteout) at DIR/REL. */
void put_chr_whiteout(const char *dir, const char *rel);

/* Number of open fds of this process. */
int count_fds(void);

/* Number of entries (but . and ..) in a directory, -1 when unreadable. */
int count_entries(const char *path);

#endif
