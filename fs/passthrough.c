/* passthrough.c - FUSE passthrough for files of the upper layer: the
 * kernel reads and writes the upper file itself, with no request per
 * read or write (Linux 6.9 and later, CONFIG_FUSE_PASSTHROUGH, as root).
 *
 * libfuse 3.14 knows nothing of it, so this file does the protocol's
 * part itself: it sees the kernel's INIT through a custom io read hook,
 * asks for passthrough in the INIT reply and puts backing ids into open
 * and create replies in the writev hook.
 *
 * Only upper files: a read-only fd of a lower file opened before a
 * copy-up must move to the upper copy, as on kernel overlay (file.c's
 * handle_fd), and the kernel cannot move a passthrough fd.  The kernel's
 * rule for an inode: every open file is passthrough, with one backing
 * file, or none is (its "cached" io mode); an open that breaks it fails
 * with EIO.  So the open files of each inode are counted here.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

/* From Linux 6.9's <linux/fuse.h> (protocol 7.40); Debian 12's is 7.38. */
#define PT_FLAG2_PASSTHROUGH (1u << (37 - 32))
#define PT_FOPEN_PASSTHROUGH (1u << 7)
#define PT_FOPEN_NOFLUSH (1u << 5)
struct pt_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define PT_IOC_BACKING_OPEN _IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

/* fuse_init_out as of 7.40: max_stack_depth took the first unused word */
struct pt_init_out {
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2, max_stack_depth;
	uint32_t unused[6];
};
_Static_assert(sizeof(struct pt_init_out) == 64, "fuse_init_out is 64 bytes");

/* fuse_open_out as of 7.40: backing_id took the padding */
struct pt_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};
_Static_assert(sizeof(struct pt_open_out) == sizeof(struct fuse_open_out), "fuse_open_out");

static bool kernel_offers;  /* the INIT request had FUSE_PASSTHROUGH */
/* ...and we asked for it; set before the first open, cleared on EPERM */
static _Atomic bool enabled;

/* What the next reply this thread sends must carry (set around a
 * libfuse reply call, which writes on the calling thread). */
static __thread enum { PATCH_NONE, PATCH_INIT, PATCH_OPEN } patch;
static __thread int32_t patch_backing_id;

/* ---- the custom io hooks ---- */

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	ssize_t n = read(fd, buf, len);
	/* before INIT is answered libfuse reads, never splices */
	const struct fuse_in_header *in = buf;
	if (!enabled && n >= (ssize_t)(sizeof *in + sizeof(struct fuse_init_in)) &&
	    in->opcode == FUSE_INIT) {
		const struct fuse_init_in *ii = (const void *)(in + 1);
		/* flags2 follows flags from 7.36 (FUSE_INIT_EXT) */
		if (ii->major == 7 && ii->minor >= 40 && (ii->flags & FUSE_INIT_EXT))
			kernel_offers = (ii->flags2 & PT_FLAG2_PASSTHROUGH) != 0;
	}
	return n;
}

static void patch_reply(struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	if (count < 2 || iov[0].iov_len < sizeof *out || out->error != 0)
		return;
	if (patch == PATCH_INIT && iov[1].iov_len >= sizeof(struct pt_init_out)) {
		struct pt_init_out *io = iov[1].iov_base;
		io->flags |= FUSE_INIT_EXT;
		io->flags2 |= PT_FLAG2_PASSTHROUGH;
		/* we sit on plain filesystems: kernel overlay may still stack on us */
		io->max_stack_depth = 1;
		enabled = true;
	} else if (patch == PATCH_OPEN && iov[1].iov_len >= sizeof(struct pt_open_out)) {
		/* the open part ends an open reply and a create reply alike */
		struct pt_open_out *oo =
			(void *)((char *)iov[1].iov_base + iov[1].iov_len - sizeof *oo);
		/* the kernel takes only direct_io and noflush beside it; the
		 * page cache is the upper file's own */
		oo->open_flags = (oo->open_flags & (FOPEN_DIRECT_IO | PT_FOPEN_NOFLUSH)) |
				 PT_FOPEN_PASSTHROUGH;
		oo->backing_id = patch_backing_id;
	}
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (patch != PATCH_NONE) {
		patch_reply(iov, count);
		patch = PATCH_NONE;
	}
	return writev(fd, iov, count);
}

static ssize_t io_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				 unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t io_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			      unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

void passthrough_attach(struct fuse_session *se)
{
	/* the backing ioctl needs CAP_SYS_ADMIN; the writeback cache and
	 * passthrough exclude each other in the kernel */
	if (geteuid() != 0 || lfs.opts->writeback || lfs.opts->no_passthrough || !lfs.stack.has_upper)
		return;
	static const struct fuse_custom_io io = {
		.read = io_read,
		.writev = io_writev,
		.splice_receive = io_splice_receive,
		.splice_send = io_splice_send,
	};
	fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

void passthrough_init(void)
{
	/* (attached only without -o writeback) */
	if (kernel_offers)
		patch = PATCH_INIT;
}

/* ---- which open files each inode has ---- */

struct open_files {
	struct lfs_inode *inode;
	struct open_files *next;
	int32_t backing_id;       /* > 0 while passthrough files are open */
	uint32_t passthrough;     /* open files in each mode */
	uint32_t cached;
};

#define OPEN_BUCKETS 256
static struct open_files *open_table[OPEN_BUCKETS];
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

static struct open_files **open_slot(const struct lfs_inode *i)
{
	uintptr_t h = (uintptr_t)i;
	h ^= h >> 17;
	struct open_files **p = &open_table[(h >> 4) % OPEN_BUCKETS];
	while (*p && (*p)->inode != i)
		p = &(*p)->next;
	return p;
}

/* Called by handle_wrap under i->rw: decides the new handle's mode. */
void passthrough_open(struct lfs_inode *i, struct lfs_handle *h)
{
	h->backing_id = -1;
	if (!enabled)
		return;
	h->backing_id = 0;
	pthread_mutex_lock(&open_lock);
	struct open_files **p = open_slot(i), *of = *p;
	if (!of) {
		of = calloc(1, sizeof *of);
		if (!of) {
			pthread_mutex_unlock(&open_lock);
			h->backing_id = -1; /* counted nowhere: see release */
			return;
		}
		of->inode = i;
		*p = of;
	}
	if (enabled && inode_is_upper(i) && of->cached == 0) {
		if (of->backing_id <= 0) {
			struct pt_backing_map map = { .fd = h->fd };
			int id = ioctl(fuse_session_fd(lfs.se), PT_IOC_BACKING_OPEN, &map);
			/* EPERM: no CAP_SYS_ADMIN (a user namespace's root): never
			 * again; others (ELOOP: an upper that is itself stacked)
			 * leave this file cached */
			if (id < 0 && errno == EPERM)
				enabled = false;
			of->backing_id = id > 0 ? id : 0;
		}
		h->backing_id = of->backing_id;
	}
	if (h->backing_id > 0)
		of->passthrough++;
	else
		of->cached++;
	pthread_mutex_unlock(&open_lock);
}

void passthrough_release(struct lfs_handle *h)
{
	if (h->backing_id < 0)
		return;
	pthread_mutex_lock(&open_lock);
	struct open_files **p = open_slot(h->inode), *of = *p;
	if (of) {
		if (h->backing_id > 0 && --of->passthrough == 0) {
			uint32_t id = (uint32_t)of->backing_id;
			ioctl(fuse_session_fd(lfs.se), PT_IOC_BACKING_CLOSE, &id);
			of->backing_id = 0;
		} else if (h->backing_id == 0) {
			of->cached--;
		}
		if (of->passthrough == 0 && of->cached == 0) {
			*p = of->next;
			free(of);
		}
	}
	pthread_mutex_unlock(&open_lock);
}

static void arm(const struct fuse_file_info *fi)
{
	int32_t id = fi_handle(fi)->backing_id;
	if (id > 0) {
		patch = PATCH_OPEN;
		patch_backing_id = id;
	}
}

void passthrough_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	arm(fi);
	fuse_reply_open(req, fi);
	patch = PATCH_NONE;
}

void passthrough_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
			      const struct fuse_file_info *fi)
{
	arm(fi);
	fuse_reply_create(req, e, fi);
	patch = PATCH_NONE;
}
