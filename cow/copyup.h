/* copyup.h - copy one lower object into the upper, atomically.
 *
 * The copy is built in the workdir under a short staging name (never
 * near NAME_MAX, whatever the real name), given its data (reflink, then
 * copy_file_range, then read/write, holes kept), owner, mode, xattrs
 * (all but the overlay-private ones), times and an origin record, fsync'd
 * unless the mount is volatile, and renamed into the upper directory.
 * A crash leaves either no upper copy or the whole one.
 */
#ifndef LAYERFS_COPYUP_H
#define LAYERFS_COPYUP_H

#include <stdbool.h>
#include <sys/stat.h>

#include "../layers/stack.h"

enum copyup_flags {
	COPYUP_DATA = 1,        /* copy file contents (not for O_TRUNC opens) */
	COPYUP_ORIGIN = 2,      /* record where it came from */
};

/* src_fd: O_PATH of the lower object, st its stat.  Creates NAME in
 * updir_fd.  Returns an O_PATH fd of the new upper object, or -errno. */
int copy_up_object(const struct layer_stack *s, int src_fd, const struct stat *st, int updir_fd,
		   const char *name, unsigned flags);

/* Copies the data of in_fd to out_fd (both open for I/O), keeping holes. */
int copy_file_data(int in_fd, int out_fd, off_t size);

/* Copies every xattr of src_fd (O_PATH) but the private ones to dst_fd. */
int copy_xattrs(int src_fd, int dst_fd);

/* Opens an O_PATH fd for real I/O, without following anything further. */
int reopen_fd(int opath_fd, int flags);

#endif
