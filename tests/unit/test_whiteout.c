/* test_whiteout.c - every on-disk form of whiteout, opaque and redirect
 * layerfs reads, and the forms it writes, read back. */
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
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "layers/stack.h"
#include "layers/whiteout.h"
#include "layers/xattr.h"

struct fixture {
	char *dir;
	int dfd; /* O_PATH of dir */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->dir = tmpdir_new();
	f->dfd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dfd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	close(f->dfd);
	tmpdir_free(f->dir);
	free(f);
	return 0;
}

static bool wh(struct fixture *f, const char *name)
{
	struct stat st;
	if (fstatat(f->dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_msg("stat %s: %s", name, strerror(errno));
	return is_whiteout_entry(f->dfd, name, &st);
}

static int open_path(struct fixture *f, const char *rel)
{
	int fd = openat(f->dfd, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fail_msg("open %s: %s", rel, strerror(errno));
	return fd;
}

static void test_char_whiteout(void **state)
{
	struct fixture *f = *state;
	put_chr_whiteout(f->dir, "wh00");
	assert_true(wh(f, "wh00"));
	/* 1/3 is /dev/null, not a whiteout */
	char *p = pjoin(f->dir, "null");
	assert_int_equal(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_false(wh(f, "null"));
	free(p);
	/* 0/1: not a whiteout either */
	p = pjoin(f->dir, "c01");
	assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(0, 1)), 0);
	assert_false(wh(f, "c01"));
	free(p);
	/* a block device 0/0 is no whiteout */
	p = pjoin(f->dir, "b00");
	assert_int_equal(mknod(p, S_IFBLK | 0600, makedev(0, 0)), 0);
	assert_false(wh(f, "b00"));
	free(p);
}

static void test_xattr_whiteout(void **state)
{
	struct fixture *f = *state;
	put_file(f->dir, "t", "");
	put_xattr(f->dir, "t", "trusted.overlay.whiteout", "");
	assert_true(wh(f, "t"));

	put_file(f->dir, "u", "");
	put_xattr(f->dir, "u", "user.overlay.whiteout", "");
	assert_true(wh(f, "u"));

	/* any value counts, as in the kernel */
	put_file(f->dir, "v", "");
	put_xattr(f->dir, "v", "trusted.overlay.whiteout", "y");
	assert_true(wh(f, "v"));

	/* zero-size file without the attribute: a plain empty file */
	put_file(f->dir, "plain", "");
	assert_false(wh(f, "plain"));
	/* with an unrelated attribute */
	put_file(f->dir, "other", "");
	put_xattr(f->dir, "other", "user.whiteout", "");
	put_xattr(f->dir, "other", "trusted.overlay.opaque", "y");
	assert_false(wh(f, "other"));
	/* fuse-overlayfs' namespace holds no whiteout marker */
	put_file(f->dir, "fo", "");
	put_xattr(f->dir, "fo", "user.fuseoverlayfs.whiteout", "");
	assert_false(wh(f, "fo"));

	/* not empty: a file that happens to carry the attribute */
	put_file(f->dir, "full", "data");
	put_xattr(f->dir, "full", "trusted.overlay.whiteout", "");
	assert_false(wh(f, "full"));
	put_file(f->dir, "fullu", "d");
	put_xattr(f->dir, "fullu", "user.overlay.whiteout", "");
	assert_false(wh(f, "fullu"));

	/* a directory or a symlink with the attribute is no whiteout */
	free(mkdirs(f->dir, "d"));
	put_xattr(f->dir, "d", "trusted.overlay.whiteout", "");
	assert_false(wh(f, "d"));
	char *l = pjoin(f->dir, "lnk");
	assert_int_equal(symlink("t", l), 0);
	assert_false(wh(f, "lnk"));
	free(l);
}

static void test_aufs_whiteout(void **state)
{
	struct fixture *f = *state;
	put_file(f->dir, ".wh.gone", "");
	assert_true(has_aufs_whiteout(f->dfd, "gone"));
	assert_false(has_aufs_whiteout(f->dfd, "kept"));
	/* the marker may be of any type */
	free(mkdirs(f->dir, ".wh.gonedir"));
	assert_true(has_aufs_whiteout(f->dfd, "gonedir"));
	char *l = pjoin(f->dir, ".wh.dangling");
	assert_int_equal(symlink("/nonexistent", l), 0);
	assert_true(has_aufs_whiteout(f->dfd, "dangling"));
	free(l);
	/* a name too long to have a marker */
	char longname[256];
	memset(longname, 'n', 255);
	longname[255] = '\0';
	assert_false(has_aufs_whiteout(f->dfd, longname));
	/* marker names are recognized as such */
	assert_true(is_aufs_marker_name(".wh.x"));
	assert_true(is_aufs_marker_name(AUFS_OPQ_NAME));
	assert_false(is_aufs_marker_name(".wh"));
	assert_false(is_aufs_marker_name(".w"));
	assert_false(is_aufs_marker_name(""));
	assert_false(is_aufs_marker_name("x.wh.y"));
	assert_false(is_aufs_marker_name(".whx"));
}

static bool opaque(struct fixture *f, const char *rel)
{
	int fd = open_path(f, rel);
	bool o = is_opaque_dir(fd);
	close(fd);
	return o;
}

static void test_opaque_forms(void **state)
{
	struct fixture *f = *state;
	free(mkdirs(f->dir, "t"));
	put_xattr(f->dir, "t", "trusted.overlay.opaque", "y");
	assert_true(opaque(f, "t"));

	free(mkdirs(f->dir, "u"));
	put_xattr(f->dir, "u", "user.overlay.opaque", "y");
	assert_true(opaque(f, "u"));

	free(mkdirs(f->dir, "fo"));
	put_xattr(f->dir, "fo", "user.fuseoverlayfs.opaque", "y");
	assert_true(opaque(f, "fo"));

	free(mkdirs(f->dir, "aufs"));
	put_file(f->dir, "aufs/" AUFS_OPQ_NAME, "");
	assert_true(opaque(f, "aufs"));

	/* "x": holds xattr whiteouts, but is not opaque */
	free(mkdirs(f->dir, "x"));
	put_xattr(f->dir, "x", "trusted.overlay.opaque", "x");
	assert_false(opaque(f, "x"));
	free(mkdirs(f->dir, "ux"));
	put_xattr(f->dir, "ux", "user.overlay.opaque", "x");
	assert_false(opaque(f, "ux"));

	/* other values */
	free(mkdirs(f->dir, "n"));
	put_xattr(f->dir, "n", "trusted.overlay.opaque", "n");
	assert_false(opaque(f, "n"));
	free(mkdirs(f->dir, "yes"));
	put_xattr(f->dir, "yes", "trusted.overlay.opaque", "yes");
	assert_false(opaque(f, "yes"));

	/* none */
	free(mkdirs(f->dir, "none"));
	assert_false(opaque(f, "none"));
	free(mkdirs(f->dir, "unrelated"));
	put_xattr(f->dir, "unrelated", "user.comment", "y");
	assert_false(opaque(f, "unrelated"));
	/* a ".wh.something" entry does not make its directory opaque */
	free(mkdirs(f->dir, "hasmarker"));
	put_file(f->dir, "hasmarker/.wh.foo", "");
	assert_false(opaque(f, "hasmarker"));
}

static void test_read_redirect(void **state)
{
	struct fixture *f = *state;
	char buf[4096];

	free(mkdirs(f->dir, "abs"));
	put_xattr(f->dir, "abs", "trusted.overlay.redirect", "/a/b/c");
	int fd = open_path(f, "abs");
	assert_int_equal(read_redirect(fd, buf, sizeof buf), 6);
	assert_string_equal(buf, "/a/b/c");
	close(fd);

	free(mkdirs(f->dir, "rel"));
	put_xattr(f->dir, "rel", "user.overlay.redirect", "oldname");
	fd = open_path(f, "rel");
	assert_int_equal(read_redirect(fd, buf, sizeof buf), 7);
	assert_string_equal(buf, "oldname");
	close(fd);

	/* trusted first when both are there */
	free(mkdirs(f->dir, "both"));
	put_xattr(f->dir, "both", "trusted.overlay.redirect", "t");
	put_xattr(f->dir, "both", "user.overlay.redirect", "u");
	fd = open_path(f, "both");
	assert_int_equal(read_redirect(fd, buf, sizeof buf), 1);
	assert_string_equal(buf, "t");
	close(fd);

	free(mkdirs(f->dir, "none"));
	fd = open_path(f, "none");
	strcpy(buf, "stale");
	assert_int_equal(read_redirect(fd, buf, sizeof buf), 0);
	close(fd);
}

static struct layer_stack hand_stack(bool userxattr, bool can_mknod)
{
	struct layer_stack s;
	memset(&s, 0, sizeof s);
	s.work_fd = s.workroot_fd = -1;
	s.has_upper = true;
	s.userxattr = userxattr;
	s.can_mknod_whiteout = can_mknod;
	return s;
}

static void test_make_whiteout_mknod(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s = hand_stack(false, true);
	assert_int_equal(make_whiteout(&s, f->dfd, "gone"), 0);
	struct stat st;
	assert_int_equal(fstatat(f->dfd, "gone", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_true(st.st_rdev == makedev(0, 0));
	assert_true(wh(f, "gone"));
	/* no marking of the parent needed for this form */
	assert_int_equal(getxattr(f->dir, "trusted.overlay.opaque", NULL, 0), -1);
	/* an existing name is not replaced */
	put_file(f->dir, "exists", "keep");
	assert_int_equal(make_whiteout(&s, f->dfd, "exists"), -EEXIST);
	char *p = pjoin(f->dir, "exists");
	char *c = slurp(p, NULL);
	assert_string_equal(c, "keep");
	free(c);
	free(p);
}

static void check_xattr_whiteout(struct fixture *f, const char *dirrel, const char *name, const char *ns)
{
	char xname[64], buf[16];
	char *d = dirrel ? pjoin(f->dir, dirrel) : strdup(f->dir);
	char *p = pjoin(d, name);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 0);
	snprintf(xname, sizeof xname, "%s.overlay.whiteout", ns);
	assert_true(lgetxattr(p, xname, buf, sizeof buf) >= 0);
	/* the parent says it holds xattr whiteouts, without being opaque */
	snprintf(xname, sizeof xname, "%s.overlay.opaque", ns);
	ssize_t n = getxattr(d, xname, buf, sizeof buf);
	assert_int_equal(n, 1);
	assert_int_equal(buf[0], 'x');
	int dfd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_false(is_opaque_dir(dfd));
	assert_true(is_whiteout_entry(dfd, name, &st));
	close(dfd);
	free(p);
	free(d);
}

static void test_make_whiteout_xattr(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s = hand_stack(false, false);
	assert_int_equal(make_whiteout(&s, f->dfd, "gone"), 0);
	check_xattr_whiteout(f, NULL, "gone", "trusted");
	/* a second one in the same directory */
	assert_int_equal(make_whiteout(&s, f->dfd, "gone2"), 0);
	check_xattr_whiteout(f, NULL, "gone2", "trusted");
	assert_int_equal(make_whiteout(&s, f->dfd, "gone"), -EEXIST);
	assert_true(wh(f, "gone")); /* untouched */
}

static void test_make_whiteout_userxattr(void **state)
{
	struct fixture *f = *state;
	struct layer_stack s = hand_stack(true, false);
	free(mkdirs(f->dir, "sub"));
	int sfd = open_path(f, "sub");
	assert_int_equal(make_whiteout(&s, sfd, "gone"), 0);
	close(sfd);
	check_xattr_whiteout(f, "sub", "gone", "user");
	/* nothing in the trusted namespace */
	char *p = pjoin(f->dir, "sub/gone");
	assert_int_equal(lgetxattr(p, "trusted.overlay.whiteout", NULL, 0), -1);
	free(p);
}

static void test_set_opaque_roundtrip(void **state)
{
	struct fixture *f = *state;
	free(mkdirs(f->dir, "t"));
	free(mkdirs(f->dir, "u"));
	struct layer_stack s = hand_stack(false, true);
	int fd = open_path(f, "t");
	assert_false(is_opaque_dir(fd));
	assert_int_equal(set_opaque(&s, fd), 0);
	assert_true(is_opaque_dir(fd));
	close(fd);
	char buf[8];
	char *p = pjoin(f->dir, "t");
	assert_int_equal(getxattr(p, "trusted.overlay.opaque", buf, sizeof buf), 1);
	assert_int_equal(buf[0], 'y');
	free(p);

	s = hand_stack(true, true);
	fd = open_path(f, "u");
	assert_int_equal(set_opaque(&s, fd), 0);
	assert_true(is_opaque_dir(fd));
	close(fd);
	p = pjoin(f->dir, "u");
	assert_int_equal(getxattr(p, "user.overlay.opaque", buf, sizeof buf), 1);
	assert_int_equal(buf[0], 'y');
	assert_int_equal(getxattr(p, "trusted.overlay.opaque", buf, sizeof buf), -1);
	free(p);

	/* a directory holding xattr whiteouts ("x") becomes opaque ("y") */
	free(mkdirs(f->dir, "x"));
	s = hand_stack(false, false);
	fd = open_path(f, "x");
	assert_int_equal(make_whiteout(&s, fd, "w"), 0);
	assert_false(is_opaque_dir(fd));
	assert_int_equal(set_opaque(&s, fd), 0);
	assert_true(is_opaque_dir(fd));
	close(fd);
}

static void test_set_redirect_roundtrip(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	free(mkdirs(f->dir, "d"));
	int fd = open_path(f, "d");
	struct layer_stack s = hand_stack(false, true);
	assert_int_equal(set_redirect(&s, fd, "/some/where"), 0);
	assert_int_equal(read_redirect(fd, buf, sizeof buf), 11);
	assert_string_equal(buf, "/some/where");
	/* replaced by a later one */
	assert_int_equal(set_redirect(&s, fd, "old"), 0);
	assert_int_equal(read_redirect(fd, buf, sizeof buf), 3);
	assert_string_equal(buf, "old");
	close(fd);
	char *p = pjoin(f->dir, "d");
	ssize_t n = getxattr(p, "trusted.overlay.redirect", buf, sizeof buf);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "old", 3); /* stored without a NUL, as the kernel */
	free(p);

	free(mkdirs(f->dir, "ud"));
	fd = open_path(f, "ud");
	s = hand_stack(true, true);
	char longpath[1024];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	assert_int_equal(set_redirect(&s, fd, longpath), 0);
	assert_int_equal(read_redirect(fd, buf, sizeof buf), (int)strlen(longpath));
	assert_string_equal(buf, longpath);
	close(fd);
	p = pjoin(f->dir, "ud");
	assert_true(getxattr(p, "user.overlay.redirect", NULL, 0) > 0);
	free(p);
}

static void test_private_names(void **state)
{
	(void)state;
	assert_true(xattr_is_private("trusted.overlay.opaque"));
	assert_true(xattr_is_private("user.overlay.origin"));
	assert_true(xattr_is_private("user.fuseoverlayfs.opaque"));
	assert_false(xattr_is_private("user.overlayfoo"));
	assert_false(xattr_is_private("user.mime_type"));
	assert_false(xattr_is_private("trusted.foo"));
	assert_false(xattr_is_private("security.capability"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_char_whiteout),
		T(test_xattr_whiteout),
		T(test_aufs_whiteout),
		T(test_opaque_forms),
		T(test_read_redirect),
		T(test_make_whiteout_mknod),
		T(test_make_whiteout_xattr),
		T(test_make_whiteout_userxattr),
		T(test_set_opaque_roundtrip),
		T(test_set_redirect_roundtrip),
		cmocka_unit_test(test_private_names),
	};
	return cmocka_run_group_tests_name("whiteout", tests, NULL, NULL);
}
