/* test_copyup.c - copy-up through the workdir: data with its holes,
 * xattrs but the private ones, and copy_up_object for each file type,
 * checked as a user of the upper would see it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "cow/copyup.h"
#include "helpers.h"
#include "layers/origin.h"
#include "layers/stack.h"

struct fixture {
	char *root, *lower, *up, *work, *workwork;
	char *lowers[1];
	struct lfs_options o;
	struct layer_stack s;
	bool open;
};

static void open_stack(struct fixture *f, enum lfs_xattr_ns ns)
{
	char err[512];
	if (f->open)
		stack_close(&f->s);
	f->o.xattr_ns = ns;
	if (stack_open(&f->s, &f->o, err, sizeof err))
		fail_msg("stack_open: %s", err);
	f->open = true;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->root = tmpdir_new();
	f->lower = mkdirs(f->root, "lower");
	f->up = mkdirs(f->root, "up");
	f->work = mkdirs(f->root, "work");
	f->workwork = pjoin(f->work, "work");
	f->lowers[0] = f->lower;
	f->o.lowers = f->lowers;
	f->o.nlowers = 1;
	f->o.upper = f->up;
	f->o.work = f->work;
	f->o.redirect_dir = true;
	open_stack(f, LFS_XNS_AUTO);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->open)
		stack_close(&f->s);
	tmpdir_free(f->root);
	free(f->lower);
	free(f->up);
	free(f->work);
	free(f->workwork);
	free(f);
	return 0;
}

/* ---- copy_file_data ---- */

static void fill(int fd, off_t off, size_t len, unsigned char seed)
{
	unsigned char *b = malloc(len);
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(seed + i * 7 + (i >> 9));
	assert_int_equal(pwrite(fd, b, len, off), (ssize_t)len);
	free(b);
}

static void same_bytes(const char *a, const char *b)
{
	size_t la, lb;
	char *ca = slurp(a, &la), *cb = slurp(b, &lb);
	assert_non_null(ca);
	assert_non_null(cb);
	assert_int_equal(la, lb);
	if (memcmp(ca, cb, la))
		fail_msg("%s and %s differ", a, b);
	free(ca);
	free(cb);
}

struct segment { off_t off; size_t len; };

/* Makes a sparse file of SIZE with the data segments given, copies it
 * with copy_file_data, and checks content, size, allocation and that the
 * holes are still holes at the same places. */
static void check_sparse_copy(const char *srcdir, const char *dstdir, off_t size,
			      const struct segment *seg, size_t nseg)
{
	char *src = pjoin(srcdir, "sparse-src"), *dst = pjoin(dstdir, "sparse-dst");
	int in = open(src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(in >= 0);
	assert_int_equal(ftruncate(in, size), 0);
	for (size_t i = 0; i < nseg; i++)
		fill(in, seg[i].off, seg[i].len, (unsigned char)(i + 1));
	assert_int_equal(fsync(in), 0);
	int out = open(dst, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(out >= 0);

	assert_int_equal(copy_file_data(in, out, size), 0);
	assert_int_equal(fsync(out), 0);

	struct stat si, so;
	assert_int_equal(fstat(in, &si), 0);
	assert_int_equal(fstat(out, &so), 0);
	assert_int_equal(so.st_size, size);
	/* allocation: about what the source has, far from the full size */
	if (so.st_blocks > si.st_blocks + 64)
		fail_msg("copy allocates %ld blocks, source %ld (size %ld)", (long)so.st_blocks,
			 (long)si.st_blocks, (long)size);
	off_t data = 0;
	for (size_t i = 0; i < nseg; i++)
		data += (off_t)seg[i].len;
	if (so.st_blocks * 512 > data + 256 * 1024)
		fail_msg("copy allocates %ld bytes for %ld bytes of data", (long)so.st_blocks * 512, (long)data);
	/* every hole of the source is a hole in the copy, every segment data */
	off_t pos = 0;
	for (size_t i = 0; i <= nseg; i++) {
		off_t data_at = i < nseg ? seg[i].off : size;
		if (data_at > pos) {
			/* a hole [pos, data_at) */
			off_t h = lseek(out, pos, SEEK_HOLE);
			if (h != pos)
				fail_msg("no hole at %ld in the copy (SEEK_HOLE gives %ld)", (long)pos, (long)h);
			off_t d = lseek(out, pos, SEEK_DATA);
			if (i < nseg)
				assert_int_equal(d, data_at);
			else
				assert_true(d < 0 && errno == ENXIO); /* only a hole left */
		}
		if (i < nseg) {
			assert_int_equal(lseek(out, seg[i].off, SEEK_DATA), seg[i].off);
			assert_int_equal(lseek(out, seg[i].off, SEEK_HOLE),
					 (off_t)(seg[i].off + (off_t)seg[i].len));
			pos = seg[i].off + (off_t)seg[i].len;
		}
	}
	close(in);
	close(out);
	same_bytes(src, dst);
	unlink(src);
	unlink(dst);
	free(src);
	free(dst);
}

#define MiB (1024 * 1024)

static void test_copy_data_holes(void **state)
{
	struct fixture *f = *state;
	/* data, hole in the middle, data, hole at the end */
	const struct segment a[] = { { 0, 64 * 1024 }, { 2 * MiB, 64 * 1024 } };
	check_sparse_copy(f->lower, f->up, 4 * MiB, a, 2);
	/* hole first */
	const struct segment b[] = { { 1 * MiB, 8192 } };
	check_sparse_copy(f->lower, f->up, 3 * MiB, b, 1);
	/* nothing but a hole */
	check_sparse_copy(f->lower, f->up, 2 * MiB, NULL, 0);
	/* data to the end, with a hole between */
	const struct segment c[] = { { 0, 4096 }, { 1 * MiB, 1 * MiB } };
	check_sparse_copy(f->lower, f->up, 2 * MiB, c, 2);
}

static void test_copy_data_holes_cross_fs(void **state)
{
	struct fixture *f = *state;
	/* tmpfs to ext4: no copy_file_range between them, read/write path */
	char shm[] = "/dev/shm/layerfs-unit.XXXXXX";
	if (!mkdtemp(shm))
		skip();
	const struct segment a[] = { { 0, 64 * 1024 }, { 2 * MiB, 128 * 1024 } };
	check_sparse_copy(shm, f->up, 4 * MiB, a, 2);
	rm_rf(shm);
}

static void test_copy_data_plain(void **state)
{
	struct fixture *f = *state;
	/* a dense file bigger than one 1 MiB chunk, odd size */
	char *src = pjoin(f->lower, "dense"), *dst = pjoin(f->up, "dense");
	int in = open(src, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	off_t size = 3 * MiB + 12345;
	fill(in, 0, (size_t)size, 9);
	int out = open(dst, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_int_equal(copy_file_data(in, out, size), 0);
	close(in);
	close(out);
	same_bytes(src, dst);
	free(src);
	free(dst);

	/* size 0: nothing to do, nothing written */
	src = pjoin(f->lower, "zero");
	dst = pjoin(f->up, "zero");
	in = open(src, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	out = open(dst, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_int_equal(copy_file_data(in, out, 0), 0);
	struct stat st;
	assert_int_equal(fstat(out, &st), 0);
	assert_int_equal(st.st_size, 0);
	close(in);
	close(out);
	free(src);
	free(dst);
}

/* The daemon's worker threads come and go (libfuse keeps only the idle
 * ones it is told to); a thread that copied data must leave nothing behind. */
struct copy_job {
	int in, out;
	off_t size;
	int rc;
};

static void *copy_thread(void *arg)
{
	struct copy_job *j = arg;
	j->rc = copy_file_data(j->in, j->out, j->size);
	return NULL;
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static void test_copy_data_thread_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	/* tmpfs to ext4: the read/write path */
	char shm[] = "/dev/shm/layerfs-unit.XXXXXX";
	if (!mkdtemp(shm))
		skip();
	char *src = pjoin(shm, "src"), *dst = pjoin(f->up, "dst");
	int in = open(src, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	fill(in, 0, 256 * 1024, 3);
	int out = open(dst, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	/* one round first, so that lazily made per-process state exists */
	struct copy_job j = { in, out, 256 * 1024, -1 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, copy_thread, &j), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(j.rc, 0);

	size_t before = heap_in_use();
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ftruncate(out, 0), 0);
		j.rc = -1;
		assert_int_equal(pthread_create(&t, NULL, copy_thread, &j), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(j.rc, 0);
	}
	size_t after = heap_in_use();
	close(in);
	close(out);
	same_bytes(src, dst);
	rm_rf(shm);
	free(src);
	free(dst);
	if (after > before + 256 * 1024)
		fail_msg("4 threads that copied data left %zu KiB of heap behind", (after - before) / 1024);
}

/* ---- copy_xattrs ---- */

/* A v2 file capability: cap_net_bind_service, effective. */
static const unsigned char vfs_cap[20] = {
	0x01, 0x00, 0x00, 0x02, /* VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE */
	0x00, 0x04, 0x00, 0x00, /* permitted[0]: bit 10 */
	0x00, 0x00, 0x00, 0x00, /* inheritable[0] */
	0x00, 0x00, 0x00, 0x00, /* permitted[1] */
	0x00, 0x00, 0x00, 0x00, /* inheritable[1] */
};

static void set_cap(const char *path)
{
	if (setxattr(path, "security.capability", vfs_cap, sizeof vfs_cap, 0) < 0)
		fail_msg("setxattr security.capability on %s: %s", path, strerror(errno));
}

static void expect_xattr(const char *path, const char *name, const void *val, size_t len)
{
	char buf[8192];
	ssize_t n = lgetxattr(path, name, buf, sizeof buf);
	if (n < 0)
		fail_msg("%s lacks %s: %s", path, name, strerror(errno));
	assert_int_equal(n, len);
	assert_memory_equal(buf, val, len);
}

static void expect_no_xattr(const char *path, const char *name)
{
	if (lgetxattr(path, name, NULL, 0) >= 0)
		fail_msg("%s has %s; it should not have been copied", path, name);
	assert_int_equal(errno, ENODATA);
}

static void put_private_xattrs(const char *dir, const char *rel)
{
	put_xattr(dir, rel, "trusted.overlay.origin", "junk");
	put_xattr(dir, rel, "trusted.overlay.opaque", "y");
	put_xattr(dir, rel, "trusted.overlay.redirect", "/elsewhere");
	put_xattr(dir, rel, "user.overlay.whiteout", "");
	put_xattr(dir, rel, "user.overlay.impure", "y");
	put_xattr(dir, rel, "user.fuseoverlayfs.opaque", "y");
}

static void test_copy_xattrs(void **state)
{
	struct fixture *f = *state;
	put_file(f->lower, "src", "x");
	put_file(f->up, "dst", "x");
	char *src = pjoin(f->lower, "src"), *dst = pjoin(f->up, "dst");
	char big[3000];
	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	put_xattr(f->lower, "src", "user.keep", "v1");
	put_xattr(f->lower, "src", "user.empty", "");
	put_xattr(f->lower, "src", "user.big", big);
	put_xattr(f->lower, "src", "trusted.keep", "t");
	put_xattr(f->lower, "src", "user.overlayish", "not private");
	put_private_xattrs(f->lower, "src");
	set_cap(src);

	int sfd = open(src, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int dfd = open(dst, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	assert_int_equal(copy_xattrs(sfd, dfd), 0);
	close(sfd);
	close(dfd);

	expect_xattr(dst, "user.keep", "v1", 2);
	expect_xattr(dst, "user.empty", "", 0);
	expect_xattr(dst, "user.big", big, strlen(big));
	expect_xattr(dst, "trusted.keep", "t", 1);
	expect_xattr(dst, "user.overlayish", "not private", 11);
	expect_xattr(dst, "security.capability", vfs_cap, sizeof vfs_cap);
	expect_no_xattr(dst, "trusted.overlay.origin");
	expect_no_xattr(dst, "trusted.overlay.opaque");
	expect_no_xattr(dst, "trusted.overlay.redirect");
	expect_no_xattr(dst, "user.overlay.whiteout");
	expect_no_xattr(dst, "user.overlay.impure");
	expect_no_xattr(dst, "user.fuseoverlayfs.opaque");

	/* a source without xattrs copies nothing and succeeds */
	put_file(f->lower, "bare", "x");
	put_file(f->up, "bare", "x");
	char *bs = pjoin(f->lower, "bare"), *bd = pjoin(f->up, "bare");
	sfd = open(bs, O_PATH | O_CLOEXEC);
	dfd = open(bd, O_PATH | O_CLOEXEC);
	assert_int_equal(copy_xattrs(sfd, dfd), 0);
	assert_int_equal(llistxattr(bd, NULL, 0), 0);
	close(sfd);
	close(dfd);
	free(bs);
	free(bd);
	free(src);
	free(dst);
}

/* ---- copy_up_object ---- */

static const struct timespec MTIME = { 1500000000, 123456789 };
static const struct timespec ATIME = { 1400000000, 987654321 };

static void set_times(const char *path)
{
	struct timespec ts[2] = { ATIME, MTIME };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void times_are(const struct stat *st, const char *what)
{
	if (st->st_mtim.tv_sec != MTIME.tv_sec || st->st_mtim.tv_nsec != MTIME.tv_nsec)
		fail_msg("%s: mtime %ld.%09ld, want %ld.%09ld", what, (long)st->st_mtim.tv_sec,
			 st->st_mtim.tv_nsec, (long)MTIME.tv_sec, MTIME.tv_nsec);
	if (st->st_atim.tv_sec != ATIME.tv_sec || st->st_atim.tv_nsec != ATIME.tv_nsec)
		fail_msg("%s: atime %ld.%09ld, want %ld.%09ld", what, (long)st->st_atim.tv_sec,
			 st->st_atim.tv_nsec, (long)ATIME.tv_sec, ATIME.tv_nsec);
}

/* Copies lower/NAME to up/NEWNAME; returns the result of copy_up_object. */
static int do_copy_up(struct fixture *f, const char *name, const char *newname, unsigned flags)
{
	char *src = pjoin(f->lower, name);
	int sfd = open(src, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		fail_msg("open %s: %s", src, strerror(errno));
	struct stat st;
	assert_int_equal(fstat(sfd, &st), 0);
	int rc = copy_up_object(&f->s, sfd, &st, f->s.layers[0].root_fd, newname, flags);
	close(sfd);
	free(src);
	return rc;
}

static void same_inode(int fd, const char *path)
{
	struct stat a, b;
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(lstat(path, &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
}

/* The upper copy carries an origin record in the kernel's format
 * (struct ovl_fb: version 0, magic 0xfb, total length, flags, type,
 * uuid, then the lower's file handle). */
static void origin_is(struct fixture *f, int upfd, const char *lowerpath, const char *ns)
{
	char name[64], p[64];
	unsigned char buf[256];
	(void)f;
	snprintf(p, sizeof p, "/proc/self/fd/%d", upfd);
	snprintf(name, sizeof name, "%s.overlay.origin", ns);
	ssize_t n = getxattr(p, name, buf, sizeof buf);
	if (n < 0)
		fail_msg("no %s on the upper copy: %s", name, strerror(errno));
	assert_true(n > 21);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[1], 0xfb);
	assert_int_equal(buf[2], n);

	/* the handle bytes are the lower object's */
	union {
		struct file_handle fh;
		char b[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	int mount_id;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	assert_int_equal(name_to_handle_at(AT_FDCWD, lowerpath, &h.fh, &mount_id, 0), 0);
	assert_int_equal(buf[4], h.fh.handle_type);
	assert_int_equal(n - 21, h.fh.handle_bytes);
	assert_memory_equal(buf + 21, h.fh.f_handle, h.fh.handle_bytes);
}

/* origin_get finds the lower object back from the upper copy. */
static void origin_get_finds(struct fixture *f, int upfd, const char *lowerpath)
{
	struct stat want, got;
	unsigned layer = 99;
	assert_int_equal(lstat(lowerpath, &want), 0);
	int rc = origin_get(&f->s, upfd, &got, &layer);
	if (rc)
		fail_msg("origin_get on the copy of %s: %s", lowerpath, strerror(-rc));
	assert_int_equal(layer, 1);
	assert_true(got.st_ino == want.st_ino);
	assert_true(got.st_dev == want.st_dev);
}

static void work_is_empty(struct fixture *f)
{
	int n = count_entries(f->workwork);
	if (n != 0)
		fail_msg("%s holds %d entries after the copy-up", f->workwork, n);
}

static void test_copy_up_regular(void **state)
{
	struct fixture *f = *state;
	/* 200 KiB of text */
	char *text = malloc(200 * 1024 + 1);
	for (size_t i = 0; i < 200 * 1024; i++)
		text[i] = (char)('a' + i % 26);
	text[200 * 1024] = '\0';
	put_file(f->lower, "prog", text);
	char *src = pjoin(f->lower, "prog"), *dst = pjoin(f->up, "prog");
	assert_int_equal(chown(src, 1234, 5678), 0);
	assert_int_equal(chmod(src, 04755), 0);
	set_cap(src); /* after chown, which would drop it */
	put_xattr(f->lower, "prog", "user.mime", "text/plain");
	put_xattr(f->lower, "prog", "trusted.overlay.opaque", "y");
	set_times(src);
	/* the upper dir's times must survive the copy-up */
	struct timespec pts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, f->up, pts, 0), 0);

	int fd = do_copy_up(f, "prog", "prog", COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	same_inode(fd, dst);

	struct stat st;
	assert_int_equal(lstat(dst, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_size, 200 * 1024);
	assert_int_equal(st.st_nlink, 1);
	times_are(&st, "copied file");
	expect_xattr(dst, "user.mime", "text/plain", 10);
	expect_xattr(dst, "security.capability", vfs_cap, sizeof vfs_cap);
	expect_no_xattr(dst, "trusted.overlay.opaque");
	origin_is(f, fd, src, "trusted");
	same_bytes(src, dst);
	close(fd);

	struct stat pst;
	assert_int_equal(stat(f->up, &pst), 0);
	assert_int_equal(pst.st_mtim.tv_sec, 1000000000);
	assert_int_equal(pst.st_mtim.tv_nsec, 0);
	work_is_empty(f);
	/* the lower is untouched */
	struct stat lst;
	assert_int_equal(lstat(src, &lst), 0);
	assert_int_equal(lst.st_mode & 07777, 04755);
	free(text);
	free(src);
	free(dst);
}

static void test_copy_up_without_data(void **state)
{
	struct fixture *f = *state;
	put_file(f->lower, "trunc", "will be truncated");
	char *src = pjoin(f->lower, "trunc"), *dst = pjoin(f->up, "trunc");
	assert_int_equal(chmod(src, 0640), 0);
	int fd = do_copy_up(f, "trunc", "trunc", COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	close(fd);
	struct stat st;
	assert_int_equal(lstat(dst, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	work_is_empty(f);
	free(src);
	free(dst);
}

static void test_copy_up_fifo(void **state)
{
	struct fixture *f = *state;
	char *src = pjoin(f->lower, "fifo"), *dst = pjoin(f->up, "fifo");
	assert_int_equal(mkfifo(src, 0640), 0);
	assert_int_equal(chmod(src, 0640), 0);
	assert_int_equal(chown(src, 1234, 5678), 0);
	set_times(src);

	alarm(5); /* opening the FIFO would hang here */
	int fd = do_copy_up(f, "fifo", "fifo", COPYUP_DATA | COPYUP_ORIGIN);
	alarm(0);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	struct stat st;
	assert_int_equal(lstat(dst, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	times_are(&st, "copied fifo");
	origin_is(f, fd, src, "trusted");
	close(fd);
	work_is_empty(f);
	free(src);
	free(dst);
}

static void test_copy_up_device(void **state)
{
	struct fixture *f = *state;
	char *src = pjoin(f->lower, "null"), *dst = pjoin(f->up, "null");
	assert_int_equal(mknod(src, S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_int_equal(chmod(src, 0666), 0);
	int fd = do_copy_up(f, "null", "null", COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	close(fd);
	struct stat st;
	assert_int_equal(lstat(dst, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_true(st.st_rdev == makedev(1, 3));
	assert_int_equal(st.st_mode & 07777, 0666);
	work_is_empty(f);
	free(src);
	free(dst);
}

static void test_copy_up_symlink(void **state)
{
	struct fixture *f = *state;
	char *src = pjoin(f->lower, "ln"), *dst = pjoin(f->up, "ln");
	assert_int_equal(symlink("../some/target with space", src), 0);
	assert_int_equal(lchown(src, 1234, 5678), 0);
	put_xattr(f->lower, "ln", "trusted.note", "on a link");
	set_times(src);

	int fd = do_copy_up(f, "ln", "ln", COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	same_inode(fd, dst);
	struct stat st;
	assert_int_equal(lstat(dst, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	times_are(&st, "copied symlink");
	char target[PATH_MAX];
	ssize_t n = readlink(dst, target, sizeof target);
	assert_int_equal(n, strlen("../some/target with space"));
	target[n] = '\0';
	assert_string_equal(target, "../some/target with space");
	expect_xattr(dst, "trusted.note", "on a link", 9);
	origin_is(f, fd, src, "trusted");
	close(fd);
	work_is_empty(f);
	free(src);
	free(dst);
}

static void test_copy_up_directory(void **state)
{
	struct fixture *f = *state;
	put_file(f->lower, "dir/inside", "not copied");
	char *src = pjoin(f->lower, "dir"), *dst = pjoin(f->up, "dir");
	assert_int_equal(chown(src, 1234, 5678), 0);
	assert_int_equal(chmod(src, 02751), 0);
	put_xattr(f->lower, "dir", "user.tag", "d");
	put_xattr(f->lower, "dir", "trusted.overlay.opaque", "y");
	set_times(src);

	int fd = do_copy_up(f, "dir", "dir", COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	same_inode(fd, dst);
	struct stat st;
	assert_int_equal(lstat(dst, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 02751);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	times_are(&st, "copied directory");
	expect_xattr(dst, "user.tag", "d", 1);
	expect_no_xattr(dst, "trusted.overlay.opaque");
	origin_is(f, fd, src, "trusted");
	assert_int_equal(count_entries(dst), 0); /* the directory alone */
	close(fd);
	work_is_empty(f);
	free(src);
	free(dst);
}

static void test_copy_up_long_name(void **state)
{
	struct fixture *f = *state;
	char name[256];
	memset(name, 'n', 255);
	name[255] = '\0';
	put_file(f->lower, name, "long");
	char *dst = pjoin(f->up, name);
	int fd = do_copy_up(f, name, name, COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object with a 255-byte name: %s", strerror(-fd));
	close(fd);
	char *c = slurp(dst, NULL);
	assert_non_null(c);
	assert_string_equal(c, "long");
	free(c);
	work_is_empty(f);
	/* a long directory name too */
	name[0] = 'd';
	free(mkdirs(f->lower, name));
	fd = do_copy_up(f, name, name, COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object of a dir with a 255-byte name: %s", strerror(-fd));
	close(fd);
	free(dst);
}

static void test_copy_up_never_replaces(void **state)
{
	struct fixture *f = *state;
	put_file(f->lower, "f", "lower");
	put_file(f->up, "f", "already up");
	assert_int_equal(do_copy_up(f, "f", "f", COPYUP_DATA | COPYUP_ORIGIN), -EEXIST);
	char *dst = pjoin(f->up, "f");
	char *c = slurp(dst, NULL);
	assert_string_equal(c, "already up");
	free(c);
	free(dst);
	/* the staged copy was thrown away */
	work_is_empty(f);
}

/* The final name appears only by the rename from the workdir: nothing is
 * ever created or written under it. */
static void test_copy_up_appears_whole(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(2 * MiB + 1);
	memset(big, 'z', 2 * MiB);
	big[2 * MiB] = '\0';
	put_file(f->lower, "whole", big);
	free(big);

	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(in >= 0);
	assert_true(inotify_add_watch(in, f->up, IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO |
						     IN_ATTRIB | IN_OPEN) >= 0);
	int wk = inotify_add_watch(in, f->workwork, IN_CREATE | IN_MOVED_FROM);
	assert_true(wk >= 0);

	int fd = do_copy_up(f, "whole", "whole", COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	close(fd);

	char buf[65536] __attribute__((aligned(8)));
	bool moved_in = false, staged = false, moved_out = false;
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			p += sizeof *e + e->len;
			if (e->wd == wk) {
				if (e->mask & IN_CREATE)
					staged = true;
				if (e->mask & IN_MOVED_FROM)
					moved_out = true;
				continue;
			}
			if (!e->len || strcmp(e->name, "whole"))
				continue;
			if (e->mask & IN_MOVED_TO)
				moved_in = true;
			else if (!moved_in)
				fail_msg("'whole' seen in the upper (event 0x%x) before its rename", e->mask);
			else if (e->mask & (IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE))
				fail_msg("'whole' changed (event 0x%x) after it appeared", e->mask);
		}
	}
	close(in);
	assert_true(staged);
	assert_true(moved_out);
	assert_true(moved_in);
	work_is_empty(f);
}

static void test_origin_get_after_copy_up(void **state)
{
	struct fixture *f = *state;
	put_file(f->lower, "f", "data");
	put_file(f->lower, "d/x", "x");
	char *src = pjoin(f->lower, "f"), *dsrc = pjoin(f->lower, "d");
	int fd = do_copy_up(f, "f", "f", COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	origin_get_finds(f, fd, src);
	close(fd);
	fd = do_copy_up(f, "d", "d", COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	origin_get_finds(f, fd, dsrc);
	close(fd);

	/* no origin: -ENODATA */
	put_file(f->up, "fresh", "new");
	char *fresh = pjoin(f->up, "fresh");
	int nfd = open(fresh, O_PATH | O_CLOEXEC);
	struct stat st;
	unsigned layer;
	assert_int_equal(origin_get(&f->s, nfd, &st, &layer), -ENODATA);
	close(nfd);
	free(fresh);
	free(src);
	free(dsrc);
}

static void test_origin_get_userxattr(void **state)
{
	struct fixture *f = *state;
	open_stack(f, LFS_XNS_USER);
	put_file(f->lower, "f", "data");
	char *src = pjoin(f->lower, "f");
	int fd = do_copy_up(f, "f", "f", COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	origin_get_finds(f, fd, src);
	close(fd);
	free(src);
}

/* userxattr (rootless) mode: the overlay's records go to user.overlay.*,
 * which Linux allows on regular files and directories only. */
static void test_copy_up_userxattr_regular(void **state)
{
	struct fixture *f = *state;
	open_stack(f, LFS_XNS_USER);
	put_file(f->lower, "f", "data");
	char *src = pjoin(f->lower, "f"), *dst = pjoin(f->up, "f");
	int fd = do_copy_up(f, "f", "f", COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy_up_object: %s", strerror(-fd));
	origin_is(f, fd, src, "user");
	expect_no_xattr(dst, "trusted.overlay.origin");
	close(fd);
	free(src);
	free(dst);
}

static void test_copy_up_userxattr_symlink(void **state)
{
	struct fixture *f = *state;
	open_stack(f, LFS_XNS_USER);
	char *src = pjoin(f->lower, "ln"), *dst = pjoin(f->up, "ln");
	assert_int_equal(symlink("target", src), 0);
	assert_int_equal(lchown(src, 1234, 5678), 0);
	int fd = do_copy_up(f, "ln", "ln", COPYUP_DATA | COPYUP_ORIGIN);
	if (fd < 0)
		fail_msg("copy-up of a symlink in userxattr mode: %s", strerror(-fd));
	close(fd);
	struct stat st;
	assert_int_equal(lstat(dst, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_uid, 1234);
	work_is_empty(f);
	free(src);
	free(dst);
}

static void test_copy_up_userxattr_fifo(void **state)
{
	struct fixture *f = *state;
	open_stack(f, LFS_XNS_USER);
	char *src = pjoin(f->lower, "fifo"), *dst = pjoin(f->up, "fifo");
	assert_int_equal(mkfifo(src, 0600), 0);
	alarm(5);
	int fd = do_copy_up(f, "fifo", "fifo", COPYUP_DATA | COPYUP_ORIGIN);
	alarm(0);
	if (fd < 0)
		fail_msg("copy-up of a FIFO in userxattr mode: %s", strerror(-fd));
	close(fd);
	struct stat st;
	assert_int_equal(lstat(dst, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	work_is_empty(f);
	free(src);
	free(dst);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_copy_data_holes),
		T(test_copy_data_holes_cross_fs),
		T(test_copy_data_plain),
		T(test_copy_data_thread_leaves_nothing),
		T(test_copy_xattrs),
		T(test_copy_up_regular),
		T(test_copy_up_without_data),
		T(test_copy_up_fifo),
		T(test_copy_up_device),
		T(test_copy_up_symlink),
		T(test_copy_up_directory),
		T(test_copy_up_long_name),
		T(test_copy_up_never_replaces),
		T(test_copy_up_appears_whole),
		T(test_origin_get_after_copy_up),
		T(test_origin_get_userxattr),
		T(test_copy_up_userxattr_regular),
		T(test_copy_up_userxattr_symlink),
		T(test_copy_up_userxattr_fifo),
	};
	return cmocka_run_group_tests_name("copyup", tests, NULL, NULL);
}
