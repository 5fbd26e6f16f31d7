/* test_lookup.c - layers_lookup and list_merged_dir on small layer trees:
 * which copy wins, what merges, what whiteouts/opaque/redirects hide or
 * bring in, and what a merged listing shows. */
#define _GNU_SOURCE
#include <dirent.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "layers/dirlist.h"
#include "layers/lookup.h"
#include "layers/stack.h"
#include "layers/whiteout.h"

/* Layers: up (upper), l1 (top lower), l2 (bottom lower). */
struct fixture {
	char *root, *up, *l1, *l2, *work;
	char *lowers[2];
	struct lfs_options o;
	struct layer_stack s;
	bool open;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->root = tmpdir_new();
	f->up = mkdirs(f->root, "up");
	f->l1 = mkdirs(f->root, "l1");
	f->l2 = mkdirs(f->root, "l2");
	f->work = mkdirs(f->root, "work");
	f->lowers[0] = f->l1;
	f->lowers[1] = f->l2;
	f->o.lowers = f->lowers;
	f->o.nlowers = 2;
	f->o.redirect_dir = true;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->open)
		stack_close(&f->s);
	tmpdir_free(f->root);
	free(f->up);
	free(f->l1);
	free(f->l2);
	free(f->work);
	free(f);
	return 0;
}

/* Opens the stack once the trees are built: with the upper (layers
 * up=0, l1=1, l2=2) or lowers only (l1=0, l2=1). */
static void open_stack(struct fixture *f, bool with_upper)
{
	char err[512];
	f->o.upper = with_upper ? f->up : NULL;
	f->o.work = with_upper ? f->work : NULL;
	f->o.read_only = !with_upper;
	if (stack_open(&f->s, &f->o, err, sizeof err))
		fail_msg("stack_open: %s", err);
	f->open = true;
}

static unsigned L_UP, L_L1, L_L2;

static void open_upper_stack(struct fixture *f)
{
	open_stack(f, true);
	L_UP = 0, L_L1 = 1, L_L2 = 2;
}

static void open_lower_stack(struct fixture *f)
{
	open_stack(f, false);
	L_L1 = 0, L_L2 = 1;
}

/* Looks up a slash-separated path from the merged root. */
static int lookup_path(struct fixture *f, const char *path, struct lookup_result *out)
{
	struct layer_copy roots[8];
	for (unsigned l = 0; l < f->s.nlayers; l++)
		roots[l] = (struct layer_copy){ l, f->s.layers[l].root_fd };
	const struct layer_copy *cur = roots;
	unsigned ncur = f->s.nlayers;
	struct lookup_result prev = { .copies = NULL, .ncopies = 0 };
	char *p = strdup(path), *save = NULL;
	int rc = 0;

	for (char *c = strtok_r(p, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		struct lookup_result r;
		rc = layers_lookup(&f->s, cur, ncur, c, &r);
		lookup_result_free(&prev);
		if (rc)
			break;
		prev = r;
		cur = prev.copies;
		ncur = prev.ncopies;
	}
	free(p);
	if (rc == 0)
		*out = prev;
	return rc;
}

static void expect_enoent(struct fixture *f, const char *path)
{
	struct lookup_result r;
	int rc = lookup_path(f, path, &r);
	if (rc == 0) {
		unsigned layer = r.copies[0].layer;
		lookup_result_free(&r);
		fail_msg("'%s' found in layer %u; expected ENOENT", path, layer);
	}
	assert_int_equal(rc, -ENOENT);
}

static struct lookup_result expect_found(struct fixture *f, const char *path)
{
	struct lookup_result r;
	int rc = lookup_path(f, path, &r);
	if (rc)
		fail_msg("lookup '%s': %s", path, strerror(-rc));
	assert_true(r.ncopies >= 1);
	return r;
}

/* The copy's fd is the object at DIR/REL. */
static void copy_is(const struct layer_copy *c, unsigned layer, const char *dir, const char *rel)
{
	struct stat a, b;
	char *p = pjoin(dir, rel);
	assert_int_equal(c->layer, layer);
	assert_int_equal(fstat(c->fd, &a), 0);
	if (lstat(p, &b) < 0)
		fail_msg("lstat %s: %s", p, strerror(errno));
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		fail_msg("copy in layer %u is not %s", layer, p);
	free(p);
}

static char *content(int opath_fd)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", opath_fd);
	char *c = slurp(p, NULL);
	assert_non_null(c);
	return c;
}

static void expect_content(struct fixture *f, const char *path, unsigned layer, const char *want)
{
	struct lookup_result r = expect_found(f, path);
	assert_int_equal(r.ncopies, 1);
	assert_int_equal(r.copies[0].layer, layer);
	assert_true(S_ISREG(r.st.st_mode));
	char *c = content(r.copies[0].fd);
	assert_string_equal(c, want);
	assert_int_equal(r.st.st_size, strlen(want));
	free(c);
	lookup_result_free(&r);
}

/* ---- lookup ---- */

static void test_top_wins(void **state)
{
	struct fixture *f = *state;
	put_file(f->l1, "f", "l1");
	put_file(f->l2, "f", "l2-longer");
	put_file(f->l2, "only2", "bottom");
	put_file(f->up, "g", "up");
	put_file(f->l1, "g", "l1");
	put_file(f->l2, "g", "l2");

	open_lower_stack(f);
	expect_content(f, "f", L_L1, "l1");
	expect_content(f, "only2", L_L2, "bottom");
	expect_content(f, "g", L_L1, "l1");
	expect_enoent(f, "nothing");
	stack_close(&f->s);
	f->open = false;

	open_upper_stack(f);
	expect_content(f, "f", L_L1, "l1");
	expect_content(f, "g", L_UP, "up");
	expect_content(f, "only2", L_L2, "bottom");
	expect_enoent(f, "nothing");
	expect_enoent(f, "f/below-a-file");
}

static void test_dir_merge(void **state)
{
	struct fixture *f = *state;
	put_file(f->up, "d/u", "u");
	put_file(f->l1, "d/a", "a1");
	put_file(f->l2, "d/a", "a2");
	put_file(f->l2, "d/b", "b2");
	put_file(f->l1, "d/sub/x", "x1");
	put_file(f->l2, "d/sub/y", "y2");
	free(mkdirs(f->up, "gap"));
	free(mkdirs(f->l2, "gap"));

	open_upper_stack(f);
	struct lookup_result r = expect_found(f, "d");
	assert_true(S_ISDIR(r.st.st_mode));
	assert_int_equal(r.ncopies, 3);
	copy_is(&r.copies[0], L_UP, f->up, "d");
	copy_is(&r.copies[1], L_L1, f->l1, "d");
	copy_is(&r.copies[2], L_L2, f->l2, "d");
	/* st is the top copy's */
	struct stat st;
	char *p = pjoin(f->up, "d");
	assert_int_equal(stat(p, &st), 0);
	assert_true(r.st.st_ino == st.st_ino);
	free(p);
	lookup_result_free(&r);

	/* a layer without the directory is skipped, order kept */
	r = expect_found(f, "gap");
	assert_int_equal(r.ncopies, 2);
	copy_is(&r.copies[0], L_UP, f->up, "gap");
	copy_is(&r.copies[1], L_L2, f->l2, "gap");
	lookup_result_free(&r);

	expect_content(f, "d/u", L_UP, "u");
	expect_content(f, "d/a", L_L1, "a1");
	expect_content(f, "d/b", L_L2, "b2");
	r = expect_found(f, "d/sub");
	assert_int_equal(r.ncopies, 2);
	copy_is(&r.copies[0], L_L1, f->l1, "d/sub");
	copy_is(&r.copies[1], L_L2, f->l2, "d/sub");
	lookup_result_free(&r);
	expect_content(f, "d/sub/x", L_L1, "x1");
	expect_content(f, "d/sub/y", L_L2, "y2");
}

static void test_whiteouts_hide(void **state)
{
	struct fixture *f = *state;
	/* every form in l1 hides a file of l2 */
	put_chr_whiteout(f->l1, "wc");
	put_file(f->l2, "wc", "x");
	put_file(f->l1, "wt", "");
	put_xattr(f->l1, "wt", "trusted.overlay.whiteout", "");
	put_xattr(f->l1, NULL, "trusted.overlay.opaque", "x");
	put_file(f->l2, "wt", "x");
	put_file(f->l1, "wu", "");
	put_xattr(f->l1, "wu", "user.overlay.whiteout", "");
	put_file(f->l2, "wu", "x");
	put_file(f->l1, ".wh.wa", "");
	put_file(f->l2, "wa", "x");
	/* AUFS whiteout of a directory, in a subdirectory */
	put_file(f->l1, "sub/.wh.gonedir", "");
	put_file(f->l2, "sub/gonedir/inner", "x");
	put_file(f->l2, "sub/kept", "k");
	/* the upper's whiteout hides both lowers */
	put_chr_whiteout(f->up, "uw");
	put_file(f->l1, "uw", "x");
	put_file(f->l2, "uw", "x");
	put_chr_whiteout(f->up, "d/gone");
	put_file(f->l1, "d/gone", "x");
	/* a whiteout with nothing below */
	put_chr_whiteout(f->l1, "alone");
	/* a whiteout hides a directory */
	put_chr_whiteout(f->up, "wdir");
	put_file(f->l1, "wdir/file", "x");

	open_upper_stack(f);
	expect_enoent(f, "wc");
	expect_enoent(f, "wt");
	expect_enoent(f, "wu");
	expect_enoent(f, "wa");
	expect_enoent(f, "sub/gonedir");
	expect_enoent(f, "sub/gonedir/inner");
	expect_content(f, "sub/kept", L_L2, "k");
	expect_enoent(f, "uw");
	expect_enoent(f, "d/gone");
	expect_enoent(f, "alone");
	expect_enoent(f, "wdir");
	expect_enoent(f, "wdir/file");
	stack_close(&f->s);
	f->open = false;

	/* the same without an upper */
	open_lower_stack(f);
	expect_enoent(f, "wc");
	expect_enoent(f, "wt");
	expect_enoent(f, "wu");
	expect_enoent(f, "wa");
	expect_enoent(f, "sub/gonedir");
	expect_enoent(f, "alone");
	expect_content(f, "uw", L_L1, "x");
}

static void test_whiteout_below_dir(void **state)
{
	struct fixture *f = *state;
	/* a dir in the upper over a whiteout in l1: only the upper copy */
	put_file(f->up, "d/new", "n");
	put_chr_whiteout(f->l1, "d");
	put_file(f->l2, "d/old", "o");

	open_upper_stack(f);
	struct lookup_result r = expect_found(f, "d");
	assert_int_equal(r.ncopies, 1);
	copy_is(&r.copies[0], L_UP, f->up, "d");
	lookup_result_free(&r);
	expect_enoent(f, "d/old");
	expect_content(f, "d/new", L_UP, "n");
}

static void test_aufs_not_in_upper(void **state)
{
	struct fixture *f = *state;
	/* the upper is never in AUFS form: its ".wh.x" is a file like any */
	put_file(f->up, ".wh.x", "upper file");
	put_file(f->l1, "x", "lower x");

	open_upper_stack(f);
	expect_content(f, "x", L_L1, "lower x");
	expect_content(f, ".wh.x", L_UP, "upper file");
}

static void test_opaque_stops(void **state)
{
	struct fixture *f = *state;
	/* each opaque form on a copy in l1 hides l2's copy */
	const char *forms[][2] = {
		{ "ot", "trusted.overlay.opaque" },
		{ "ou", "user.overlay.opaque" },
		{ "of", "user.fuseoverlayfs.opaque" },
	};
	for (size_t i = 0; i < 3; i++) {
		char rel[64];
		snprintf(rel, sizeof rel, "%s/mine", forms[i][0]);
		put_file(f->l1, rel, "1");
		put_xattr(f->l1, forms[i][0], forms[i][1], "y");
		snprintf(rel, sizeof rel, "%s/hidden", forms[i][0]);
		put_file(f->l2, rel, "2");
	}
	put_file(f->l1, "oa/" AUFS_OPQ_NAME, "");
	put_file(f->l1, "oa/mine", "1");
	put_file(f->l2, "oa/hidden", "2");
	/* "x" is not opaque */
	put_file(f->l1, "ox/mine", "1");
	put_xattr(f->l1, "ox", "trusted.overlay.opaque", "x");
	put_file(f->l2, "ox/below", "2");
	/* an opaque upper dir */
	put_file(f->up, "ou2/mine", "u");
	put_xattr(f->up, "ou2", "trusted.overlay.opaque", "y");
	put_file(f->l1, "ou2/hidden", "1");
	put_file(f->l2, "ou2/hidden2", "2");

	open_upper_stack(f);
	const char *names[] = { "ot", "ou", "of", "oa" };
	for (size_t i = 0; i < 4; i++) {
		char rel[64];
		struct lookup_result r = expect_found(f, names[i]);
		if (r.ncopies != 1)
			fail_msg("'%s' (opaque) merged %u copies", names[i], r.ncopies);
		copy_is(&r.copies[0], L_L1, f->l1, names[i]);
		lookup_result_free(&r);
		snprintf(rel, sizeof rel, "%s/hidden", names[i]);
		expect_enoent(f, rel);
		snprintf(rel, sizeof rel, "%s/mine", names[i]);
		expect_content(f, rel, L_L1, "1");
	}
	expect_enoent(f, "oa/" AUFS_OPQ_NAME);
	struct lookup_result r = expect_found(f, "ox");
	assert_int_equal(r.ncopies, 2);
	lookup_result_free(&r);
	expect_content(f, "ox/below", L_L2, "2");

	r = expect_found(f, "ou2");
	assert_int_equal(r.ncopies, 1);
	copy_is(&r.copies[0], L_UP, f->up, "ou2");
	lookup_result_free(&r);
	expect_enoent(f, "ou2/hidden");
	expect_enoent(f, "ou2/hidden2");
}

static void test_nondir_below_dir_hidden(void **state)
{
	struct fixture *f = *state;
	put_file(f->l1, "nd/inner", "i");
	put_file(f->l2, "nd", "a file below a dir");
	put_file(f->up, "nd2/inner", "i");
	char *t = pjoin(f->l1, "nd2");
	assert_int_equal(symlink("/etc", t), 0);
	free(t);
	put_file(f->l2, "nd2/deeper", "x");
	/* and a file over a dir: the file, alone */
	put_file(f->l1, "fd", "file on top");
	put_file(f->l2, "fd/inner", "x");

	open_upper_stack(f);
	struct lookup_result r = expect_found(f, "nd");
	assert_true(S_ISDIR(r.st.st_mode));
	assert_int_equal(r.ncopies, 1);
	copy_is(&r.copies[0], L_L1, f->l1, "nd");
	lookup_result_free(&r);

	/* the symlink in l1 stops the merge: l2's dir is not reached */
	r = expect_found(f, "nd2");
	assert_true(S_ISDIR(r.st.st_mode));
	assert_int_equal(r.ncopies, 1);
	lookup_result_free(&r);
	expect_enoent(f, "nd2/deeper");

	expect_content(f, "fd", L_L1, "file on top");
	expect_enoent(f, "fd/inner");
}

static void test_symlink_not_followed(void **state)
{
	struct fixture *f = *state;
	char *t = pjoin(f->l1, "ln");
	assert_int_equal(symlink("target-dir", t), 0);
	free(t);
	put_file(f->l1, "target-dir/x", "x");

	open_upper_stack(f);
	struct lookup_result r = expect_found(f, "ln");
	assert_true(S_ISLNK(r.st.st_mode));
	assert_int_equal(r.ncopies, 1);
	lookup_result_free(&r);
	expect_enoent(f, "ln/x");
}

static void test_relative_redirect(void **state)
{
	struct fixture *f = *state;
	/* "mv old new" in one directory: upper new -> "old", whiteout at old */
	put_file(f->up, "p/new/added", "a");
	put_xattr(f->up, "p/new", "trusted.overlay.redirect", "old");
	put_chr_whiteout(f->up, "p/old");
	put_file(f->l1, "p/old/from1", "1");
	put_file(f->l2, "p/old/from2", "2");
	put_file(f->l1, "p/new/unrelated", "u"); /* another "new" in l1: not merged */

	open_upper_stack(f);
	struct lookup_result r = expect_found(f, "p/new");
	assert_int_equal(r.ncopies, 3);
	copy_is(&r.copies[0], L_UP, f->up, "p/new");
	copy_is(&r.copies[1], L_L1, f->l1, "p/old");
	copy_is(&r.copies[2], L_L2, f->l2, "p/old");
	lookup_result_free(&r);
	expect_content(f, "p/new/from1", L_L1, "1");
	expect_content(f, "p/new/from2", L_L2, "2");
	expect_content(f, "p/new/added", L_UP, "a");
	expect_enoent(f, "p/new/unrelated");
	expect_enoent(f, "p/old");
}

static void test_absolute_redirect_merged_parent(void **state)
{
	struct fixture *f = *state;
	/* "mv /b/orig /a/moved", where a exists in the lowers too */
	put_file(f->up, "a/moved/added", "a");
	put_xattr(f->up, "a/moved", "trusted.overlay.redirect", "/b/orig");
	put_file(f->l1, "a/other", "o");
	put_file(f->l1, "b/orig/from1", "1");
	put_file(f->l2, "b/orig/from2", "2");
	put_chr_whiteout(f->up, "b/orig");
	free(mkdirs(f->l1, "b"));

	open_upper_stack(f);
	struct lookup_result r = expect_found(f, "a/moved");
	assert_int_equal(r.ncopies, 3);
	copy_is(&r.copies[0], L_UP, f->up, "a/moved");
	copy_is(&r.copies[1], L_L1, f->l1, "b/orig");
	copy_is(&r.copies[2], L_L2, f->l2, "b/orig");
	lookup_result_free(&r);
	expect_content(f, "a/moved/from1", L_L1, "1");
	expect_content(f, "a/moved/from2", L_L2, "2");
	expect_content(f, "a/moved/added", L_UP, "a");
	expect_content(f, "a/other", L_L1, "o");
	expect_enoent(f, "b/orig");
}

static void test_absolute_redirect_upper_only_parent(void **state)
{
	struct fixture *f = *state;
	/* "mkdir /new; mv /b/orig /new/moved": /new exists in the upper only,
	 * so the redirect is all that leads to the lower copies (the kernel
	 * restarts from the root's lower stack in this case). */
	put_file(f->up, "new/moved/added", "a");
	put_xattr(f->up, "new/moved", "trusted.overlay.redirect", "/b/orig");
	put_xattr(f->up, "new", "trusted.overlay.opaque", "y");
	put_chr_whiteout(f->up, "b/orig");
	put_file(f->l1, "b/orig/from1", "1");

	open_upper_stack(f);
	struct lookup_result r = expect_found(f, "new/moved");
	if (r.ncopies != 2) {
		unsigned n = r.ncopies;
		lookup_result_free(&r);
		fail_msg("absolute redirect under an upper-only parent not followed: %u copies, want 2", n);
	}
	copy_is(&r.copies[0], L_UP, f->up, "new/moved");
	copy_is(&r.copies[1], L_L1, f->l1, "b/orig");
	lookup_result_free(&r);
	expect_content(f, "new/moved/from1", L_L1, "1");
}

/* The same in a read-only stack of committed layers: l1 moved l2's
 * /b/orig to /new/moved, and /new exists in l1 alone. */
static void test_absolute_redirect_lower_only_parent(void **state)
{
	struct fixture *f = *state;
	put_file(f->l1, "new/moved/added", "a");
	put_xattr(f->l1, "new/moved", "trusted.overlay.redirect", "/b/orig");
	put_file(f->l2, "b/orig/from2", "2");

	open_lower_stack(f);
	struct lookup_result r = expect_found(f, "new/moved");
	if (r.ncopies != 2) {
		unsigned n = r.ncopies;
		lookup_result_free(&r);
		fail_msg("absolute redirect under a single-copy parent not followed: %u copies, want 2", n);
	}
	copy_is(&r.copies[0], L_L1, f->l1, "new/moved");
	copy_is(&r.copies[1], L_L2, f->l2, "b/orig");
	lookup_result_free(&r);
	expect_content(f, "new/moved/from2", L_L2, "2");
}

/* An absolute redirect leads to a lower copy that itself carries a
 * relative redirect (renamed in its own directory when that layer was
 * the upper): the relative name is taken in the directory the absolute
 * path led to, not at the layer root. */
static void test_relative_redirect_after_absolute(void **state)
{
	struct fixture *f = *state;
	put_file(f->up, "a/moved/added", "a");
	put_xattr(f->up, "a/moved", "trusted.overlay.redirect", "/b/orig");
	free(mkdirs(f->l1, "a"));
	put_file(f->l1, "b/orig/from1", "1");
	put_xattr(f->l1, "b/orig", "trusted.overlay.redirect", "older");
	put_file(f->l2, "b/older/from2", "2");
	put_file(f->l2, "older/decoy", "wrong directory");

	open_upper_stack(f);
	struct lookup_result r = expect_found(f, "a/moved");
	assert_true(r.ncopies >= 2);
	copy_is(&r.copies[0], L_UP, f->up, "a/moved");
	copy_is(&r.copies[1], L_L1, f->l1, "b/orig");
	if (r.ncopies != 3) {
		unsigned n = r.ncopies;
		lookup_result_free(&r);
		fail_msg("relative redirect below an absolute one: %u copies, want 3", n);
	}
	copy_is(&r.copies[2], L_L2, f->l2, "b/older");
	lookup_result_free(&r);
	expect_content(f, "a/moved/from2", L_L2, "2");
	expect_enoent(f, "a/moved/decoy");
}

static void test_marker_names_never_found(void **state)
{
	struct fixture *f = *state;
	put_file(f->l1, ".wh.foo", "");
	put_file(f->l1, "d/" AUFS_OPQ_NAME, "");
	put_file(f->l2, ".wh.bar", "");
	put_file(f->l2, ".wh.", "");

	open_upper_stack(f);
	expect_enoent(f, ".wh.foo");
	expect_enoent(f, ".wh.bar");
	expect_enoent(f, ".wh.");
	expect_enoent(f, "d/" AUFS_OPQ_NAME);
	stack_close(&f->s);
	f->open = false;
	open_lower_stack(f);
	expect_enoent(f, ".wh.foo");
	expect_enoent(f, ".wh.bar");
	expect_enoent(f, "d/" AUFS_OPQ_NAME);
}

static void test_open_beneath(void **state)
{
	struct fixture *f = *state;
	put_file(f->l1, "a/b/c", "c");
	char *t = pjoin(f->l1, "a/esc");
	assert_int_equal(symlink("/etc", t), 0);
	free(t);
	open_upper_stack(f);
	int fd = layer_open_beneath(&f->s, L_L1, "/a/b/c");
	assert_true(fd >= 0);
	copy_is(&(struct layer_copy){ L_L1, fd }, L_L1, f->l1, "a/b/c");
	close(fd);
	fd = layer_open_beneath(&f->s, L_L1, "/");
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(layer_open_beneath(&f->s, L_L1, "/a/esc/passwd"), -ELOOP);
	assert_true(layer_open_beneath(&f->s, L_L1, "../up") < 0);
	assert_int_equal(layer_open_beneath(&f->s, L_L1, "/a/nothing"), -ENOENT);
}

/* ---- merged listing ---- */

static const struct dir_entry *find_entry(const struct dir_listing *l, const char *name)
{
	const struct dir_entry *hit = NULL;
	for (size_t i = 0; i < l->n; i++) {
		if (!strcmp(l->entries[i].name, name)) {
			if (hit)
				fail_msg("'%s' listed twice", name);
			hit = &l->entries[i];
		}
	}
	return hit;
}

static void entry_is(const struct dir_listing *l, const char *name, unsigned layer, bool lower_too,
		     uint8_t type, const char *layerdir)
{
	const struct dir_entry *e = find_entry(l, name);
	if (!e)
		fail_msg("'%s' missing from the listing", name);
	if (e->layer != layer)
		fail_msg("'%s' from layer %u, want %u", name, e->layer, layer);
	if (!!e->in_lower_too != lower_too)
		fail_msg("'%s' in_lower_too=%u, want %d", name, e->in_lower_too, lower_too);
	assert_int_equal(e->type, type);
	char *p = pjoin(layerdir, name);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	assert_true(e->ino == st.st_ino);
	free(p);
}

static void not_listed(const struct dir_listing *l, const char *name)
{
	if (find_entry(l, name))
		fail_msg("'%s' should be hidden", name);
}

static void list_path(struct fixture *f, const char *path, struct dir_listing *l)
{
	int rc;
	if (!path) {
		struct layer_copy roots[8];
		for (unsigned i = 0; i < f->s.nlayers; i++)
			roots[i] = (struct layer_copy){ i, f->s.layers[i].root_fd };
		rc = list_merged_dir(&f->s, roots, f->s.nlayers, l);
	} else {
		struct lookup_result r = expect_found(f, path);
		rc = list_merged_dir(&f->s, r.copies, r.ncopies, l);
		lookup_result_free(&r);
	}
	if (rc)
		fail_msg("list_merged_dir: %s", strerror(-rc));
}

static void test_list_merged(void **state)
{
	struct fixture *f = *state;
	put_file(f->up, "a", "up");
	put_file(f->up, "onlyup", "u");
	free(mkdirs(f->up, "d"));
	put_chr_whiteout(f->up, "wc");            /* hides l1/wc */
	put_file(f->l1, "a", "l1");
	put_file(f->l1, "b", "l1");
	put_file(f->l1, "c", "l1");
	put_file(f->l1, "wc", "l1");
	free(mkdirs(f->l1, "d"));
	put_file(f->l1, ".wh.e", "");               /* AUFS: hides l2/e */
	put_file(f->l1, "xw", "");                  /* xattr whiteout: hides l2/xw */
	put_xattr(f->l1, "xw", "trusted.overlay.whiteout", "");
	put_file(f->l1, "uw", "");                  /* user form: hides l2/uw */
	put_xattr(f->l1, "uw", "user.overlay.whiteout", "");
	put_xattr(f->l1, NULL, "trusted.overlay.opaque", "x");
	put_file(f->l1, "empty", "");               /* a plain empty file stays */
	put_file(f->l2, "b", "l2");
	put_file(f->l2, "e", "l2");
	put_file(f->l2, "f", "l2");
	put_file(f->l2, "xw", "l2");
	put_file(f->l2, "uw", "l2");
	free(mkdirs(f->l2, "d"));
	put_chr_whiteout(f->l2, "bottomwh");        /* nothing below: just hidden */
	put_file(f->l2, ".wh.nothing", "");
	put_file(f->l2, AUFS_OPQ_NAME, "");

	open_upper_stack(f);
	struct dir_listing l;
	list_path(f, NULL, &l);
	entry_is(&l, "a", L_UP, true, DT_REG, f->up);
	entry_is(&l, "onlyup", L_UP, false, DT_REG, f->up);
	entry_is(&l, "d", L_UP, true, DT_DIR, f->up);
	entry_is(&l, "b", L_L1, true, DT_REG, f->l1);
	entry_is(&l, "c", L_L1, false, DT_REG, f->l1);
	entry_is(&l, "empty", L_L1, false, DT_REG, f->l1);
	entry_is(&l, "f", L_L2, false, DT_REG, f->l2);
	not_listed(&l, "wc");
	not_listed(&l, "e");
	not_listed(&l, ".wh.e");
	not_listed(&l, "xw");
	not_listed(&l, "uw");
	not_listed(&l, "bottomwh");
	not_listed(&l, ".wh.nothing");
	not_listed(&l, "nothing");
	not_listed(&l, AUFS_OPQ_NAME);
	not_listed(&l, ".");
	not_listed(&l, "..");
	assert_int_equal(l.n, 7);
	dir_listing_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.entries);
}

static void test_list_upper_whiteout_of_upper_name(void **state)
{
	struct fixture *f = *state;
	/* whiteouts only hide what is below them */
	put_file(f->up, "d/x", "u");
	put_chr_whiteout(f->l1, "d/x");
	put_file(f->l2, "d/x", "2");
	put_chr_whiteout(f->l1, "d/y");
	put_file(f->l2, "d/y", "2");
	put_file(f->l2, "d/z", "2");

	open_upper_stack(f);
	struct dir_listing l;
	list_path(f, "d", &l);
	char *ud = pjoin(f->up, "d"), *l2d = pjoin(f->l2, "d");
	entry_is(&l, "x", L_UP, true, DT_REG, ud);
	not_listed(&l, "y");
	entry_is(&l, "z", L_L2, false, DT_REG, l2d);
	free(ud);
	free(l2d);
	assert_int_equal(l.n, 2);
	dir_listing_free(&l);
}

static void test_list_big(void **state)
{
	struct fixture *f = *state;
	char name[32];
	char *ld = mkdirs(f->l1, "big"), *ud = mkdirs(f->up, "big");
	int lfd = open(ld, O_PATH | O_DIRECTORY), ufd = open(ud, O_PATH | O_DIRECTORY);
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof name, "entry-%05d", i);
		int fd = openat(lfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	/* the upper: the first half again, 100 whiteouts, 100 new names */
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "entry-%05d", i);
		int fd = openat(ufd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	for (int i = 9000; i < 9100; i++) {
		snprintf(name, sizeof name, "entry-%05d", i);
		put_chr_whiteout(ud, name);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "new-%03d", i);
		put_file(ud, name, "");
	}
	close(lfd);
	close(ufd);

	open_upper_stack(f);
	struct dir_listing l;
	list_path(f, "big", &l);
	assert_int_equal(l.n, 10000);
	/* no duplicates, every name accounted for */
	unsigned char *seen = calloc(10100, 1);
	for (size_t i = 0; i < l.n; i++) {
		const struct dir_entry *e = &l.entries[i];
		int k;
		if (sscanf(e->name, "entry-%05d", &k) == 1) {
			assert_true(k >= 0 && k < 10000);
			if (k >= 9000 && k < 9100)
				fail_msg("whited-out '%s' listed", e->name);
			if (k < 5000) {
				assert_int_equal(e->layer, L_UP);
				assert_true(e->in_lower_too);
			} else {
				assert_int_equal(e->layer, L_L1);
				assert_false(e->in_lower_too);
			}
		} else if (sscanf(e->name, "new-%03d", &k) == 1) {
			assert_true(k >= 0 && k < 100);
			k += 10000;
			assert_int_equal(e->layer, L_UP);
			assert_false(e->in_lower_too);
		} else {
			fail_msg("unexpected name '%s'", e->name);
		}
		if (seen[k]++)
			fail_msg("'%s' listed twice", e->name);
		assert_int_equal(e->type, DT_REG);
	}
	free(seen);
	dir_listing_free(&l);
	free(ld);
	free(ud);
}

static void test_dir_is_empty(void **state)
{
	struct fixture *f = *state;
	/* every lower entry whited out in the upper */
	free(mkdirs(f->up, "m1"));
	put_chr_whiteout(f->up, "m1/a");
	put_file(f->up, "m1/b", "");
	put_xattr(f->up, "m1/b", "trusted.overlay.whiteout", "");
	put_xattr(f->up, "m1", "trusted.overlay.opaque", "x");
	put_file(f->l1, "m1/a", "x");
	put_file(f->l2, "m1/b", "x");
	/* a lower entry left */
	free(mkdirs(f->up, "m2"));
	put_file(f->l1, "m2/x", "x");
	/* AUFS marker hiding the only entry below */
	put_file(f->l1, "m3/.wh.foo", "");
	put_file(f->l2, "m3/foo", "x");
	/* opaque by AUFS marker: l2's entries do not count */
	put_file(f->l1, "m4/" AUFS_OPQ_NAME, "");
	put_file(f->l2, "m4/bar", "x");
	/* plain empty copies */
	free(mkdirs(f->l1, "m5"));
	free(mkdirs(f->l2, "m5"));
	/* an upper entry */
	put_file(f->up, "m6/new", "n");
	free(mkdirs(f->l1, "m6"));
	/* only a subdirectory, itself empty: not empty */
	free(mkdirs(f->l2, "m7/sub"));

	open_upper_stack(f);
	const struct { const char *name; int want; } cases[] = {
		{ "m1", 0 }, { "m2", -ENOTEMPTY }, { "m3", 0 }, { "m4", 0 },
		{ "m5", 0 }, { "m6", -ENOTEMPTY }, { "m7", -ENOTEMPTY },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct lookup_result r = expect_found(f, cases[i].name);
		int rc = merged_dir_is_empty(&f->s, r.copies, r.ncopies);
		lookup_result_free(&r);
		if (rc != cases[i].want)
			fail_msg("merged_dir_is_empty(%s) = %d, want %d", cases[i].name, rc, cases[i].want);
	}
}


/* A lookup guided by the index of the lower copies finds exactly what a
 * full lookup finds, for every way a name can sit in the layers. */
static void test_index_hint_same_as_full(void **state)
{
	struct fixture *f = *state;
	put_file(f->l1, "only1", "1");
	put_file(f->l2, "only2", "2");
	put_file(f->l1, "d/a", "a");
	put_file(f->l2, "d/b", "b");
	put_file(f->l2, "gone", "g");
	put_chr_whiteout(f->l1, "gone");
	put_file(f->l2, "aufs", "x");
	put_file(f->l1, ".wh.aufs", "");
	put_file(f->l2, "e/in2", "e");
	put_file(f->up, "e", "upper file over lower dir");
	put_file(f->l2, "f/in2", "f");
	free(mkdirs(f->up, "f"));
	put_chr_whiteout(f->up, "only2");
	open_upper_stack(f);

	struct layer_copy roots[3];
	for (unsigned l = 0; l < 3; l++)
		roots[l] = (struct layer_copy){ l, f->s.layers[l].root_fd };
	struct name_index *ix = name_index_build(&f->s, roots + 1, 2);
	assert_non_null(ix);
	const char *names[] = { "only1", "only2", "d", "gone", "aufs", "e", "f", "absent", ".wh.aufs" };
	for (unsigned n = 0; n < sizeof names / sizeof *names; n++) {
		struct lookup_result full, hinted;
		struct name_hint h = { UINT32_MAX, NULL, 0 };
		name_index_find(ix, names[n], &h);
		int rf = layers_lookup(&f->s, roots, 3, names[n], &full);
		int rh = layers_lookup_hinted(&f->s, roots, 3, names[n], &h, &hinted);
		if (rf != rh)
			fail_msg("%s: full lookup %d, hinted %d", names[n], rf, rh);
		if (rf == 0) {
			assert_int_equal(full.ncopies, hinted.ncopies);
			for (unsigned c = 0; c < full.ncopies; c++)
				assert_int_equal(full.copies[c].layer, hinted.copies[c].layer);
			lookup_result_free(&full);
			lookup_result_free(&hinted);
		}
	}
	struct name_hint h;
	assert_false(name_index_find(ix, "gone", &h));   /* hidden below the upper */
	assert_true(name_index_find(ix, "d", &h));
	assert_int_equal(h.first, L_L1);
	assert_int_equal(h.nalso, 1);
	assert_int_equal(h.also[0], L_L2);
	name_index_free(ix);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_top_wins),
		T(test_dir_merge),
		T(test_whiteouts_hide),
		T(test_whiteout_below_dir),
		T(test_aufs_not_in_upper),
		T(test_opaque_stops),
		T(test_nondir_below_dir_hidden),
		T(test_symlink_not_followed),
		T(test_relative_redirect),
		T(test_absolute_redirect_merged_parent),
		T(test_absolute_redirect_upper_only_parent),
		T(test_absolute_redirect_lower_only_parent),
		T(test_relative_redirect_after_absolute),
		T(test_marker_names_never_found),
		T(test_open_beneath),
		T(test_list_merged),
		T(test_list_upper_whiteout_of_upper_name),
		T(test_list_big),
		T(test_dir_is_empty),
		T(test_index_hint_same_as_full),
	};
	return cmocka_run_group_tests_name("lookup", tests, NULL, NULL);
}
