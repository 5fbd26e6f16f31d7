/* whiteout.h - the on-disk markers of a union: whiteouts, opaque
 * directories and redirects, in every form layerfs reads, and the forms
 * it writes (the kernel's).
 *
 * Read:  whiteout = char device 0/0 | zero-size file with
 *        {trusted,user}.overlay.whiteout | an AUFS/OCI ".wh.NAME" sibling.
 *        opaque   = {trusted,user}.overlay.opaque=y | user.fuseoverlayfs.opaque=y
 *                   | a ".wh..wh..opq" entry.  ("x" only says the directory
 *                   holds xattr whiteouts.)
 * Write: char 0/0 (xattr form where mknod is refused), overlay.opaque=y.
 */
#ifndef LAYERFS_WHITEOUT_H
#define LAYERFS_WHITEOUT_H

#include <stdbool.h>
#include <sys/stat.h>

#include "stack.h"

#define AUFS_WH_PREFIX ".wh."
#define AUFS_WH_PREFIX_LEN 4
#define AUFS_OPQ_NAME ".wh..wh..opq"

/* Is entry NAME of DIRFD (already lstat'ed into st) a whiteout? */
bool is_whiteout_entry(int dirfd, const char *name, const struct stat *st);

/* Does DIRFD hold an AUFS ".wh.NAME" marker for name? */
bool has_aufs_whiteout(int dirfd, const char *name);

/* Names that are markers, never shown: ".wh.*" (AUFS form, lower layers). */
static inline bool is_aufs_marker_name(const char *name)
{
	return name[0] == '.' && name[1] == 'w' && name[2] == 'h' && name[3] == '.';
}

/* Is the directory (an O_PATH fd) opaque? */
bool is_opaque_dir(int dirfd);
/* Is the directory marked opaque=x (it may hold xattr whiteouts)? */
bool holds_xattr_whiteouts(int dirfd);

/* Reads the redirect of a directory into buf (NUL-terminated).
 * Returns the length, 0 when there is none, -EIO when it is malformed
 * (a relative redirect with a '/', "." or ".."). */
int read_redirect(int dirfd, char *buf, size_t size);
/* Both markers of a directory copy at once, with one listxattr when it
 * has none: *opaque, and the redirect as read_redirect() returns it
 * (not read when opaque: nothing below is looked at then). */
int read_dir_marks(int dirfd, bool *opaque, char *redirect, size_t size);

/* Writing (upper only). All return 0 or -errno. */
int make_whiteout(const struct layer_stack *s, int dirfd, const char *name);
int set_opaque(const struct layer_stack *s, int dirfd);
int set_redirect(const struct layer_stack *s, int fd, const char *target);

#endif
