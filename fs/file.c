/* file.c - open files: open, read (spliced), write, fsync,
 * fallocate, lseek, copy_file_range, release.  No flush: locks stay in
 * the kernel, so a close has nothing to tell us. */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cow/copyup.h"

/* With the writeback cache the kernel may read pages of a file opened
 * write-only, and it keeps the end of file itself for O_APPEND: the real
 * fd must be readable where it can be, and must not append on its own
 * (pwrite on an O_APPEND fd ignores the offset). */
int handle_flags(int flags)
{
	/* creation is done by then; O_DIRECT would only add alignment rules */
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT);
	if (lfs.writeback) {
		flags &= ~O_APPEND;
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
	}
	return flags;
}

static int reopen_for_io(struct lfs_inode *i, int flags)
{
	/* reading a lower layer must not change it, atime included */
	int lower = inode_is_upper(i) ? 0 : O_NOATIME;
	int fd = reopen_fd(i->copies[0].fd, flags | lower);
	/* write-only turned read-write: a file the daemon may only write */
	if (fd == -EACCES && lfs.writeback && (flags & O_ACCMODE) == O_RDWR)
		fd = reopen_fd(i->copies[0].fd, (flags & ~O_ACCMODE) | O_WRONLY | lower);
	return fd;
}

int handle_wrap(struct lfs_inode *i, int fd, int flags, struct fuse_file_info *fi)
{
	struct lfs_handle *h = calloc(1, sizeof *h);
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->fd = fd;
	h->gen = atomic_load(&i->data_gen);
	h->flags = flags & ~O_TRUNC;
	h->inode = i;
	pthread_mutex_init(&h->lock, NULL);
	passthrough_open(i, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	/* layerfs is the only way to the data: the kernel's cache stays valid;
	 * but an upper file served cached while passthrough is on may have
	 * been written past that cache by passthrough files before */
	fi->keep_cache = !(h->backing_id == 0 && inode_is_upper(i));
	return 0;
}

int handle_open(struct lfs_inode *i, int flags, struct fuse_file_info *fi)
{
	flags = handle_flags(flags);
	/* under the lock, so the handle's generation is its fd's */
	inode_rdlock(i);
	int fd = reopen_for_io(i, flags);
	int rc = fd < 0 ? fd : handle_wrap(i, fd, flags, fi);
	lfs_rw_unlock(&i->rw);
	return rc;
}

/* A handle opened on a lower copy follows the inode to its upper copy. */
static int handle_fd(struct lfs_handle *h)
{
	struct lfs_inode *i = h->inode;
	if (atomic_load(&i->data_gen) == h->gen)
		return h->fd;
	pthread_mutex_lock(&h->lock);
	if (atomic_load(&i->data_gen) != h->gen) {
		inode_rdlock(i);
		int fd = reopen_for_io(i, h->flags);
		uint32_t gen = atomic_load(&i->data_gen);
		lfs_rw_unlock(&i->rw);
		if (fd >= 0) {
			/* dup2 keeps h->fd valid for readers racing with us */
			dup3(fd, h->fd, O_CLOEXEC);
			close(fd);
			h->gen = gen;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return h->fd;
}

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lfs_inode *i = ino_to_inode(ino);
	int rc = 0;

	if (wants_write(fi->flags)) {
		if (lfs.stack.read_only) {
			fuse_reply_err(req, EROFS);
			return;
		}
		rc = copy_up(i, (fi->flags & O_TRUNC) ? COPYUP_ORIGIN : COPYUP_DATA | COPYUP_ORIGIN);
	}
	if (rc == 0)
		rc = handle_open(i, fi->flags, fi);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		passthrough_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	(void)ino;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = handle_fd(fi_handle(fi));
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	(void)ino;
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = handle_fd(fi_handle(fi));
	out.buf[0].pos = off;
	ssize_t n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lfs_handle *h = fi_handle(fi);
	(void)ino;
	passthrough_release(h);
	close(h->fd);
	pthread_mutex_destroy(&h->lock);
	free(h);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	if (lfs.stack.volatile_) {
		fuse_reply_err(req, 0);
		return;
	}
	int fd = handle_fd(fi_handle(fi));
	int rc = datasync ? fdatasync(fd) : fsync(fd);
	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)ino;
	int rc = fallocate(handle_fd(fi_handle(fi)), mode, off, len);
	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	(void)ino;
	off_t r = lseek(handle_fd(fi_handle(fi)), off, whence);
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	(void)ino_in;
	(void)ino_out;
	loff_t in = off_in, out = off_out;
	ssize_t n = copy_file_range(handle_fd(fi_handle(fi_in)), &in, handle_fd(fi_handle(fi_out)),
				    &out, len, (unsigned)flags);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
}

void file_ops_register(struct fuse_lowlevel_ops *ops)
{
	ops->open = op_open;
	ops->read = op_read;
	ops->write_buf = op_write_buf;
	ops->release = op_release;
	ops->fsync = op_fsync;
	ops->fallocate = op_fallocate;
	ops->lseek = op_lseek;
	ops->copy_file_range = op_copy_file_range;
}
