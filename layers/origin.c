/* origin.c - encode and decode the kernel's origin file handle (see origin.h).
 *
 * Format (fs/overlayfs/overlayfs.h, struct ovl_fb): version 0, magic 0xfb,
 * total length, flags, handle type, 16-byte uuid, then the handle bytes.
 * We write a null uuid, as the kernel does with uuid=null/auto.
 */
#define _GNU_SOURCE
#include "origin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "xattr.h"

#define OVL_FH_MAGIC 0xfb
#define OVL_FH_HDR 21 /* version, magic, len, flags, type, uuid[16] */
#define OVL_FH_MAX 256

int origin_set(const struct layer_stack *s, int upper_fd, int lower_fd)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	uint8_t fb[OVL_FH_HDR + MAX_HANDLE_SZ];
	int mount_id;
	char name[64];

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(lower_fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0)
		return -errno;
	memset(fb, 0, OVL_FH_HDR);
	fb[0] = 0;
	fb[1] = OVL_FH_MAGIC;
	fb[2] = (uint8_t)(OVL_FH_HDR + h.fh.handle_bytes);
	fb[3] = 0; /* little-endian host, no flags */
	fb[4] = (uint8_t)h.fh.handle_type;
	memcpy(fb + OVL_FH_HDR, h.fh.f_handle, h.fh.handle_bytes);
	snprintf(name, sizeof name, "%sorigin", stack_xattr_prefix(s));
	if (fd_setxattr(upper_fd, name, fb, OVL_FH_HDR + h.fh.handle_bytes, 0) < 0)
		return -errno;
	return 0;
}

/* Without CAP_DAC_READ_SEARCH open_by_handle_at() is refused; for the
 * common 32-bit inode+generation handles (ext4, xfs, tmpfs) the inode
 * number is the first word. */
static int ino_from_handle(int type, const uint8_t *bytes, size_t len, ino_t *ino)
{
	uint32_t w;
	/* exactly ext4/xfs INO32_GEN: tmpfs's 12-byte type 1 starts with the generation */
	if (type == 1 && len == 8) {
		memcpy(&w, bytes, 4);
		*ino = w;
		return 0;
	}
	return -EOPNOTSUPP;
}

int origin_get(const struct layer_stack *s, int upper_fd, struct stat *st, unsigned *layer)
{
	uint8_t fb[OVL_FH_MAX];
	ssize_t len = ovl_getxattr(upper_fd, "origin", fb, sizeof fb);

	if (len < 0)
		return errno == ENODATA ? -ENODATA : -errno;
	if (len < OVL_FH_HDR || fb[1] != OVL_FH_MAGIC || fb[2] != len)
		return -EINVAL;
	size_t hlen = (size_t)len - OVL_FH_HDR;
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + OVL_FH_MAX];
	} h;
	h.fh.handle_bytes = (unsigned)hlen;
	h.fh.handle_type = fb[4];
	memcpy(h.fh.f_handle, fb + OVL_FH_HDR, hlen);

	/* one try per filesystem: a handle means nothing on another one */
	for (unsigned l = s->has_upper ? 1 : 0; l < s->nlayers; l++) {
		bool first_of_fs = true;
		for (unsigned k = s->has_upper ? 1 : 0; k < l; k++)
			if (s->layers[k].fs_index == s->layers[l].fs_index)
				first_of_fs = false;
		if (!first_of_fs || s->layers[l].handle_fd < 0)
			continue;
		int fd = open_by_handle_at(s->layers[l].handle_fd, &h.fh, O_PATH | O_CLOEXEC);
		if (fd >= 0) {
			int rc = fstat(fd, st);
			close(fd);
			if (rc == 0 && st->st_dev == s->layers[l].dev) {
				*layer = l;
				return 0;
			}
			continue;
		}
		if (errno != EPERM || !s->same_fs)
			continue;
		/* Unprivileged: trust the handle's inode number, on the first
		 * lower on the same filesystem as the upper... or any lower. */
		ino_t ino;
		if (ino_from_handle(fb[4], fb + OVL_FH_HDR, hlen, &ino))
			return -EOPNOTSUPP;
		memset(st, 0, sizeof *st);
		st->st_ino = ino;
		st->st_dev = s->layers[l].dev;
		st->st_nlink = 1;
		*layer = l;
		return 0;
	}
	return -ESTALE;
}
