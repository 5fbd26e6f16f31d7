/* xattr.h - extended attributes on O_PATH fds, and which names are the
 * overlay's private ones.
 *
 * The daemon holds O_PATH fds (they open anything, FIFOs and devices
 * included, without side effects); f*xattr() refuses those, so the calls
 * go through /proc/self/fd/N, which reaches the fd's own object, a symlink
 * included.
 */
#ifndef LAYERFS_XATTR_H
#define LAYERFS_XATTR_H

#include <stdbool.h>
#include <sys/types.h>

ssize_t fd_getxattr(int fd, const char *name, void *buf, size_t size);
ssize_t fd_listxattr(int fd, char *buf, size_t size);
int fd_setxattr(int fd, const char *name, const void *val, size_t size, int flags);
int fd_removexattr(int fd, const char *name);

/* trusted.overlay.*, user.overlay.*, user.fuseoverlayfs.* and the override
 * owner xattrs of xperm.h: never shown, never set through the mount (a
 * file's owner could otherwise record itself as root). */
bool xattr_is_private(const char *name);

/* "trusted.overlay.overlay.X": a caller's own overlay xattr, stored
 * escaped (kernel 6.7+); private in form but copied up like any other. */
bool xattr_is_escaped(const char *name);

/* Reads overlay attribute SUFFIX ("opaque", "redirect", ...) in either
 * namespace, trusted first.  Returns the length, or -1 with errno. */
ssize_t ovl_getxattr(int fd, const char *suffix, void *buf, size_t size);

#endif
