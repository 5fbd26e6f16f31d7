/* xperm.h - owner and mode kept in an xattr instead of the inode
 * ("override_stat"), as fuse-overlayfs's xattr_permissions= and
 * containers-storage's force_mask write them.
 *
 * A layer is in override mode when its root directory carries one of the
 * names below (looked for in this order, as fuse-overlayfs does); then the
 * value on each of its objects, "UID:GID:MODE" (MODE in octal, a fourth
 * ":TYPE" field is accepted and ignored), is what stat shows for it.  An
 * object without the xattr shows its real owner and mode.
 */
#ifndef LAYERFS_XPERM_H
#define LAYERFS_XPERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum xperm_mode {
	XPERM_NONE,
	XPERM_PRIVILEGED,  /* security.fuseoverlayfs.override_stat (xattr_permissions=1) */
	XPERM_CONTAINERS,  /* user.containers.override_stat (containers-storage force_mask) */
	XPERM_USER,        /* user.fuseoverlayfs.override_stat (xattr_permissions=2) */
};

struct xperm_value {
	uint32_t uid, gid;
	mode_t mode;       /* permission bits only (07777) */
};

/* The xattr name of a mode; NULL for XPERM_NONE. */
const char *xperm_name(enum xperm_mode m);
/* Is name one of the override xattrs? */
bool xperm_is_name(const char *name);
/* The mode xattr_permissions=N writes (1, 2), XPERM_NONE otherwise. */
enum xperm_mode xperm_mode_of_option(int xattr_permissions);

/* "UID:GID:MODE[:TYPE]" -> v.  0, or -EINVAL. */
int xperm_parse(const char *buf, size_t len, struct xperm_value *v);
/* v -> "UID:GID:0MODE"; returns the length (no NUL counted). */
int xperm_format(const struct xperm_value *v, char *buf, size_t len);

/* Which override name a layer root (an O_PATH fd) carries. */
enum xperm_mode xperm_layer_mode(int root_fd);
/* Reads the value of an object (O_PATH fd): 1 found, 0 none, -errno. */
int xperm_read(int fd, enum xperm_mode m, struct xperm_value *v);
/* Writes it: 0 or -errno. */
int xperm_write(int fd, enum xperm_mode m, const struct xperm_value *v);

#endif
