/* test_stack.c - stack_open on real directories: the good stack, and each
 * check a user can trip over, with its one-line message naming the path. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "layers/options.h"
#include "layers/stack.h"

struct fixture {
	char *root;   /* mkdtemp */
	char *l1, *l2, *up, *work, *mnt;
	char *tmpfs;  /* mounted by a test, NULL otherwise */
	char *lowers[8];
	struct lfs_options o;
	char err[1024];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->root = tmpdir_new();
	f->l1 = mkdirs(f->root, "l1");
	f->l2 = mkdirs(f->root, "l2");
	f->up = mkdirs(f->root, "up");
	f->work = mkdirs(f->root, "work");
	f->mnt = mkdirs(f->root, "mnt");
	f->lowers[0] = f->l1;
	f->lowers[1] = f->l2;
	f->o.lowers = f->lowers;
	f->o.nlowers = 2;
	f->o.upper = f->up;
	f->o.work = f->work;
	f->o.mountpoint = f->mnt;
	f->o.redirect_dir = true;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->tmpfs) {
		umount2(f->tmpfs, MNT_DETACH);
		free(f->tmpfs);
	}
	tmpdir_free(f->root);
	free(f->l1);
	free(f->l2);
	free(f->up);
	free(f->work);
	free(f->mnt);
	free(f);
	return 0;
}

static void same_object(int fd, const char *path)
{
	struct stat a, b;
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

/* stack_open must fail with one line naming every path in want[], and
 * leave no fd open. */
static void expect_open_fails(struct fixture *f, const char *const *want, size_t nwant)
{
	struct layer_stack s;
	int before = count_fds();
	f->err[0] = '\0';
	int rc = stack_open(&s, &f->o, f->err, sizeof f->err);
	if (rc == 0) {
		stack_close(&s);
		fail_msg("stack_open succeeded; expected an error naming '%s'", want[0]);
	}
	assert_int_equal(rc, -1);
	assert_true(f->err[0] != '\0');
	if (strchr(f->err, '\n'))
		fail_msg("message is more than one line: '%s'", f->err);
	for (size_t i = 0; i < nwant; i++)
		if (!strstr(f->err, want[i]))
			fail_msg("message '%s' does not name '%s'", f->err, want[i]);
	assert_int_equal(count_fds(), before);
}

static void test_good_stack(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s;

	/* a leftover of a crashed mount, nested */
	put_file(f->work, "work/#1f", "half a copy");
	put_file(f->work, "work/#20/deep/file", "x");
	put_chr_whiteout(f->work, "work/#21");

	int before = count_fds();
	if (stack_open(&s, &f->o, f->err, sizeof f->err))
		fail_msg("stack_open: %s", f->err);
	assert_int_equal(s.nlayers, 3);
	assert_true(s.has_upper);
	assert_false(s.read_only);
	assert_true(s.same_fs);
	assert_int_equal(s.nfs, 1);
	assert_true(stack_is_upper(&s, 0));
	assert_false(stack_is_upper(&s, 1));
	/* layer 0 is the upper, then the lowers top first */
	same_object(s.layers[0].root_fd, f->up);
	same_object(s.layers[1].root_fd, f->l1);
	same_object(s.layers[2].root_fd, f->l2);
	assert_string_equal(s.layers[0].path, f->up);
	assert_string_equal(s.layers[1].path, f->l1);
	assert_string_equal(s.layers[2].path, f->l2);
	struct stat st;
	assert_int_equal(stat(f->l1, &st), 0);
	assert_true(s.layers[1].dev == st.st_dev);
	assert_true(s.layers[1].root_ino == st.st_ino);
	for (unsigned l = 0; l < s.nlayers; l++)
		assert_int_equal(s.layers[l].fs_index, 0);

	/* WORKDIR/work exists, is a directory, and is empty again */
	char *wk = pjoin(f->work, "work");
	assert_int_equal(lstat(wk, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(count_entries(wk), 0);
	assert_true(s.work_fd >= 0);
	same_object(s.work_fd, wk);
	same_object(s.workroot_fd, f->work);
	assert_string_equal(s.work_path, f->work);
	/* root on ext4: trusted.* works, so the kernel's namespace */
	assert_false(s.userxattr);
	assert_string_equal(stack_xattr_prefix(&s), "trusted.overlay.");
	assert_true(s.can_mknod_whiteout);
	/* the probes left nothing behind */
	assert_int_equal(count_entries(wk), 0);
	assert_int_equal(getxattr(f->up, "trusted.overlay.layerfs-probe", NULL, 0), -1);

	stack_close(&s);
	assert_int_equal(count_fds(), before);
	free(wk);
}

static void test_read_only_lowers(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s;

	f->o.upper = NULL;
	f->o.work = NULL;
	f->o.read_only = true;
	if (stack_open(&s, &f->o, f->err, sizeof f->err))
		fail_msg("stack_open: %s", f->err);
	assert_int_equal(s.nlayers, 2);
	assert_false(s.has_upper);
	assert_true(s.read_only);
	assert_false(stack_is_upper(&s, 0));
	same_object(s.layers[0].root_fd, f->l1);
	same_object(s.layers[1].root_fd, f->l2);
	assert_int_equal(s.work_fd, -1);
	assert_int_equal(s.workroot_fd, -1);
	assert_null(s.work_path);
	stack_close(&s);
	/* no default workdir made for a stack without an upper */
	assert_int_equal(count_entries(f->root), 5);
}

static void test_upper_read_only(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s;

	put_file(f->work, "work/old", "x");
	f->o.read_only = true;
	if (stack_open(&s, &f->o, f->err, sizeof f->err))
		fail_msg("stack_open: %s", f->err);
	assert_true(s.has_upper);
	assert_true(s.read_only);
	assert_int_equal(s.work_fd, -1);
	stack_close(&s);
}

static void test_userxattr_option(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s;

	f->o.xattr_ns = LFS_XNS_USER;
	if (stack_open(&s, &f->o, f->err, sizeof f->err))
		fail_msg("stack_open: %s", f->err);
	assert_true(s.userxattr);
	assert_string_equal(stack_xattr_prefix(&s), "user.overlay.");
	stack_close(&s);
}

static void test_default_workdir_created(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s;

	f->o.work = NULL;
	if (stack_open(&s, &f->o, f->err, sizeof f->err))
		fail_msg("stack_open: %s", f->err);
	char *want = pjoin(f->root, ".layerfs-work.up");
	assert_string_equal(s.work_path, want);
	struct stat st;
	char *wk = pjoin(want, "work");
	assert_int_equal(lstat(wk, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	stack_close(&s);

	/* a second open reuses it */
	if (stack_open(&s, &f->o, f->err, sizeof f->err))
		fail_msg("second stack_open: %s", f->err);
	stack_close(&s);
	free(wk);
	free(want);
}

static void test_missing_dir(void **state)
{
	struct fixture *f = *state;
	char *missing = pjoin(f->root, "no-such-dir");
	f->lowers[1] = missing;
	expect_open_fails(f, (const char *const[]){ missing, "No such file" }, 2);
	f->lowers[1] = f->l2;

	f->o.upper = missing;
	expect_open_fails(f, (const char *const[]){ missing }, 1);
	f->o.upper = f->up;

	f->o.work = missing;
	expect_open_fails(f, (const char *const[]){ missing }, 1);
	f->o.work = f->work;

	f->o.mountpoint = missing;
	expect_open_fails(f, (const char *const[]){ missing }, 1);
	free(missing);
}

static void test_file_not_dir(void **state)
{
	struct fixture *f = *state;
	put_file(f->root, "afile", "x");
	char *file = pjoin(f->root, "afile");

	f->lowers[0] = file;
	expect_open_fails(f, (const char *const[]){ file, "not a directory" }, 2);
	f->lowers[0] = f->l1;

	f->o.upper = file;
	expect_open_fails(f, (const char *const[]){ file, "not a directory" }, 2);
	f->o.upper = f->up;

	f->o.work = file;
	expect_open_fails(f, (const char *const[]){ file, "not a directory" }, 2);
	f->o.work = f->work;

	f->o.mountpoint = file;
	expect_open_fails(f, (const char *const[]){ file, "not a directory" }, 2);
	free(file);
}

static void test_same_dir_twice(void **state)
{
	struct fixture *f = *state;

	f->lowers[1] = f->l1;
	expect_open_fails(f, (const char *const[]){ f->l1, "same" }, 2);
	f->lowers[1] = f->l2;

	f->o.upper = f->l2;
	expect_open_fails(f, (const char *const[]){ f->l2, "same" }, 2);
	f->o.upper = f->up;

	f->o.work = f->up;
	expect_open_fails(f, (const char *const[]){ f->up, "same" }, 2);
	f->o.work = f->work;

	/* spelled differently, same directory */
	char *alias = pjoin(f->root, "l1/../l1/.");
	f->lowers[1] = alias;
	expect_open_fails(f, (const char *const[]){ "same" }, 1);
	f->lowers[1] = f->l2;
	free(alias);

	/* through a symlink */
	char *link = pjoin(f->root, "uplink");
	assert_int_equal(symlink(f->up, link), 0);
	f->o.mountpoint = link;
	expect_open_fails(f, (const char *const[]){ link, f->up }, 2);
	free(link);
}

static void test_upper_inside_lower(void **state)
{
	struct fixture *f = *state;
	char *inner = mkdirs(f->root, "l1/sub/up");
	f->o.upper = inner;
	expect_open_fails(f, (const char *const[]){ inner, f->l1, "inside" }, 3);
	free(inner);
}

static void test_lower_inside_upper(void **state)
{
	struct fixture *f = *state;
	char *inner = mkdirs(f->root, "up/lower");
	f->lowers[1] = inner;
	expect_open_fails(f, (const char *const[]){ inner, f->up, "inside" }, 3);
	free(inner);
}

static void test_lowers_may_nest(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s;
	char *inner = mkdirs(f->root, "l1/inner");
	f->lowers[1] = inner;
	if (stack_open(&s, &f->o, f->err, sizeof f->err))
		fail_msg("nested lowers refused: %s", f->err);
	stack_close(&s);
	free(inner);
}

static void test_workdir_inside_lower(void **state)
{
	struct fixture *f = *state;
	char *inner = mkdirs(f->root, "l2/w");
	f->o.work = inner;
	expect_open_fails(f, (const char *const[]){ inner, f->l2, "inside" }, 3);
	free(inner);
}

static void test_workdir_inside_upper(void **state)
{
	struct fixture *f = *state;
	char *inner = mkdirs(f->root, "up/w");
	f->o.work = inner;
	expect_open_fails(f, (const char *const[]){ inner, f->up, "inside" }, 3);
	free(inner);
	f->o.work = f->work;
	/* and the other way round */
	inner = mkdirs(f->root, "work/up");
	f->o.upper = inner;
	expect_open_fails(f, (const char *const[]){ inner, f->work, "inside" }, 3);
	free(inner);
}

static void test_mountpoint_inside_layer(void **state)
{
	struct fixture *f = *state;
	char *inner = mkdirs(f->root, "l2/a/mnt");
	f->o.mountpoint = inner;
	expect_open_fails(f, (const char *const[]){ inner, f->l2, "inside" }, 3);
	free(inner);
	inner = mkdirs(f->root, "up/mnt");
	f->o.mountpoint = inner;
	expect_open_fails(f, (const char *const[]){ inner, f->up, "inside" }, 3);
	free(inner);
}

static void mount_tmpfs(struct fixture *f)
{
	f->tmpfs = mkdirs(f->root, "tmpfs");
	if (mount("layerfs-unit", f->tmpfs, "tmpfs", 0, "size=16m") < 0) {
		int e = errno;
		free(f->tmpfs);
		f->tmpfs = NULL;
		if (e == EPERM)
			skip();
		fail_msg("mount tmpfs: %s", strerror(e));
	}
}

static void test_workdir_other_fs(void **state)
{
	struct fixture *f = *state;
	mount_tmpfs(f);
	char *w = mkdirs(f->tmpfs, "w");
	f->o.work = w;
	expect_open_fails(f, (const char *const[]){ w, f->up, "filesystem" }, 3);
	/* nothing was made in it */
	assert_int_equal(count_entries(w), 0);
	free(w);
}

static void test_layers_on_several_fs(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s;
	mount_tmpfs(f);
	char *l = mkdirs(f->tmpfs, "lower");
	f->lowers[1] = l;
	if (stack_open(&s, &f->o, f->err, sizeof f->err))
		fail_msg("stack_open: %s", f->err);
	assert_false(s.same_fs);
	assert_int_equal(s.nfs, 2);
	assert_int_equal(s.layers[0].fs_index, 0); /* upper, ext4 */
	assert_int_equal(s.layers[1].fs_index, 0); /* l1, same fs */
	assert_int_equal(s.layers[2].fs_index, 1); /* tmpfs */
	assert_true(s.layers[2].dev != s.layers[0].dev);
	stack_close(&s);
	free(l);
}

static void test_default_workdir_paths(void **state)
{
	(void)state;
	struct { const char *upper, *want; } cases[] = {
		{ "a/up", "a/.layerfs-work.up" },
		{ "/x/up/", "/x/.layerfs-work.up" },
		{ "/x/up///", "/x/.layerfs-work.up" },
		{ "/x/y/up", "/x/y/.layerfs-work.up" },
		{ "up", "./.layerfs-work.up" },
		{ "/up", "/.layerfs-work.up" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = stack_default_workdir(cases[i].upper);
		if (strcmp(got, cases[i].want))
			fail_msg("stack_default_workdir(\"%s\") = \"%s\", want \"%s\"", cases[i].upper, got,
				 cases[i].want);
		free(got);
	}
}

/* A refused stack must not leave a default workdir behind, least of all
 * inside a lower layer (the user's image). */
static void test_refused_stack_leaves_no_workdir(void **state)
{
	struct fixture *f = *state;
	char *inner = mkdirs(f->root, "l1/sub/up");
	f->o.upper = inner;
	f->o.work = NULL;
	expect_open_fails(f, (const char *const[]){ inner, "inside" }, 2);
	char *sub = pjoin(f->root, "l1/sub");
	char *stray = pjoin(sub, ".layerfs-work.up");
	struct stat st;
	if (lstat(stray, &st) == 0)
		fail_msg("failed stack_open created '%s' inside the lower layer", stray);
	assert_int_equal(count_entries(sub), 1);
	free(stray);
	free(sub);
	free(inner);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_good_stack),
		T(test_read_only_lowers),
		T(test_upper_read_only),
		T(test_userxattr_option),
		T(test_default_workdir_created),
		T(test_missing_dir),
		T(test_file_not_dir),
		T(test_same_dir_twice),
		T(test_upper_inside_lower),
		T(test_lower_inside_upper),
		T(test_lowers_may_nest),
		T(test_workdir_inside_lower),
		T(test_workdir_inside_upper),
		T(test_mountpoint_inside_layer),
		T(test_workdir_other_fs),
		T(test_layers_on_several_fs),
		cmocka_unit_test(test_default_workdir_paths),
		T(test_refused_stack_leaves_no_workdir),
	};
	return cmocka_run_group_tests_name("stack", tests, NULL, NULL);
}
