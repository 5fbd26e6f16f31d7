/* test_options.c - lfs_split_layers and lfs_parse_args: every command-line
 * form of docs/DESIGN.md, parsed into the struct the daemon acts on. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "layers/options.h"

/* ---- lfs_split_layers ---- */

static void split_ok(const char *spec, size_t want_n, const char *const *want)
{
	char **v = NULL, err[256] = "";
	size_t n = 0;
	int rc = lfs_split_layers(spec, &v, &n, err, sizeof err);
	if (rc != 0)
		fail_msg("split '%s' failed: %s", spec, err);
	assert_int_equal(n, want_n);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(v[i]);
		assert_string_equal(v[i], want[i]);
		free(v[i]);
	}
	free(v);
}

static void split_fails(const char *spec, const char *msg_part)
{
	char **v = NULL, err[256] = "";
	size_t n = 0;
	assert_int_equal(lfs_split_layers(spec, &v, &n, err, sizeof err), -1);
	assert_true(err[0] != '\0');
	assert_null(strchr(err, '\n'));
	if (msg_part && !strstr(err, msg_part))
		fail_msg("message '%s' lacks '%s'", err, msg_part);
}

static void test_split_plain(void **state)
{
	(void)state;
	split_ok("/a", 1, (const char *const[]){ "/a" });
	split_ok("/a:/b:/c", 3, (const char *const[]){ "/a", "/b", "/c" });
	split_ok("rel/dir:/abs dir", 2, (const char *const[]){ "rel/dir", "/abs dir" });
}

static void test_split_escapes(void **state)
{
	(void)state;
	/* \: is a colon inside one path */
	split_ok("/a\\:b:/c", 2, (const char *const[]){ "/a:b", "/c" });
	split_ok("/x\\:", 1, (const char *const[]){ "/x:" });
	/* \\ is one backslash; the colon after it separates */
	split_ok("/a\\\\:/b", 2, (const char *const[]){ "/a\\", "/b" });
	split_ok("/a\\\\b", 1, (const char *const[]){ "/a\\b" });
	/* \\ then \: : a backslash and a colon, both literal */
	split_ok("/a\\\\\\:b", 1, (const char *const[]){ "/a\\:b" });
	/* a backslash before anything else stays as it is */
	split_ok("/a\\b:/c", 2, (const char *const[]){ "/a\\b", "/c" });
}

static void test_split_empty_entries(void **state)
{
	(void)state;
	split_fails("", "empty");
	split_fails(":/a", "empty");
	split_fails("/a::/b", "empty");
	split_fails("/a:/b:", "empty"); /* trailing colon */
	split_fails(":", "empty");
}

static char *many_spec(size_t n)
{
	char *s = malloc(n * 12 + 1), *p = s;
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s/l%zu", i ? ":" : "", i);
	return s;
}

static void test_split_many(void **state)
{
	(void)state;
	char **v = NULL, err[256];
	size_t n = 0;
	char *spec = many_spec(LFS_MAX_LOWERS);
	assert_int_equal(lfs_split_layers(spec, &v, &n, err, sizeof err), 0);
	assert_int_equal(n, LFS_MAX_LOWERS);
	assert_string_equal(v[0], "/l0");
	assert_string_equal(v[500], "/l500");
	assert_string_equal(v[LFS_MAX_LOWERS - 1], "/l4095");
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(spec);
}

static void test_split_too_many(void **state)
{
	(void)state;
	char *spec = many_spec(LFS_MAX_LOWERS + 1);
	split_fails(spec, "too many");
	free(spec);
	spec = many_spec(LFS_MAX_LOWERS * 2);
	split_fails(spec, "too many");
	free(spec);
}

/* ---- lfs_parse_args ---- */

struct parsed {
	struct lfs_options o;
	char err[512];
	int rc;
};

/* argv from a NULL-terminated list; argv[0] is "layerfs". */
static struct parsed *parse_v(const char *first, va_list ap)
{
	char *argv[64];
	int argc = 0;
	argv[argc++] = (char *)"layerfs";
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		if (argc >= 63)
			fail_msg("too many args");
		argv[argc++] = strdup(a);
	}
	argv[argc] = NULL;
	struct parsed *p = calloc(1, sizeof *p);
	p->rc = lfs_parse_args(argc, argv, &p->o, p->err, sizeof p->err);
	for (int i = 1; i < argc; i++)
		free(argv[i]);
	return p;
}

static struct parsed *parse(const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	struct parsed *p = parse_v(first, ap);
	va_end(ap);
	return p;
}

static void done(struct parsed *p)
{
	lfs_options_free(&p->o);
	free(p);
}

#define PARSE_OK(...)                                                              \
	({                                                                         \
		struct parsed *p_ = parse(__VA_ARGS__, NULL);                      \
		if (p_->rc != 0)                                                   \
			fail_msg("parse failed: %s", p_->err);                     \
		p_;                                                                \
	})

static void expect_usage_error(const char *msg_part, const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	struct parsed *p = parse_v(first, ap);
	va_end(ap);
	assert_int_equal(p->rc, -1);
	assert_true(p->err[0] != '\0');
	assert_null(strchr(p->err, '\n'));
	if (msg_part && !strstr(p->err, msg_part))
		fail_msg("message '%s' lacks '%s'", p->err, msg_part);
	done(p);
}

static void assert_lowers(const struct lfs_options *o, size_t n, const char *const *want)
{
	assert_int_equal(o->nlowers, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(o->lowers[i], want[i]);
}

static void test_parse_short_form_upper(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("mount", "/l1:/l2", "/up", "/mnt");
	assert_int_equal(p->o.command, LFS_CMD_MOUNT);
	assert_lowers(&p->o, 2, (const char *const[]){ "/l1", "/l2" });
	assert_string_equal(p->o.upper, "/up");
	assert_string_equal(p->o.mountpoint, "/mnt");
	assert_null(p->o.work);
	assert_false(p->o.read_only);
	assert_false(p->o.foreground);
	assert_false(p->o.debug);
	assert_false(p->o.volatile_);
	assert_true(p->o.redirect_dir); /* default on */
	assert_int_equal(p->o.xattr_ns, LFS_XNS_AUTO);
	assert_int_equal(p->o.allow_other, -1);
	assert_int_equal(p->o.default_permissions, -1);
	assert_int_equal(p->o.threads, 0);
	assert_int_equal(p->o.nwarnings, 0);
	done(p);
}

static void test_parse_short_form_read_only(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("mount", "/l1:/l2", "/mnt", "--read-only");
	assert_int_equal(p->o.command, LFS_CMD_MOUNT);
	assert_lowers(&p->o, 2, (const char *const[]){ "/l1", "/l2" });
	assert_null(p->o.upper);
	assert_string_equal(p->o.mountpoint, "/mnt");
	assert_true(p->o.read_only);
	done(p);

	/* the option may come first too */
	p = PARSE_OK("--read-only", "mount", "/l1", "/mnt");
	assert_true(p->o.read_only);
	assert_lowers(&p->o, 1, (const char *const[]){ "/l1" });
	done(p);

	/* two positionals after mount and no upper: read-only even without the flag */
	p = PARSE_OK("mount", "/l1", "/mnt");
	assert_null(p->o.upper);
	assert_true(p->o.read_only);
	done(p);
}

static void test_parse_short_form_escapes(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("mount", "/a\\:b:/c\\\\", "/up", "/mnt");
	assert_lowers(&p->o, 2, (const char *const[]){ "/a:b", "/c\\" });
	done(p);
	expect_usage_error("empty", "mount", "/a::/b", "/up", "/mnt", NULL);
	expect_usage_error("empty", "mount", "/a:", "/up", "/mnt", NULL);
}

static void test_parse_workdir_forms(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("mount", "/l", "/up", "/mnt", "--workdir", "/w");
	assert_string_equal(p->o.work, "/w");
	assert_string_equal(p->o.upper, "/up");
	done(p);

	p = PARSE_OK("mount", "/l", "/up", "/mnt", "--workdir=/w2");
	assert_string_equal(p->o.work, "/w2");
	done(p);

	p = PARSE_OK("--workdir", "/w3", "mount", "/l", "/up", "/mnt");
	assert_string_equal(p->o.work, "/w3");
	assert_string_equal(p->o.mountpoint, "/mnt");
	done(p);

	/* the last one wins */
	p = PARSE_OK("mount", "/l", "/up", "/mnt", "--workdir=/a", "--workdir", "/b");
	assert_string_equal(p->o.work, "/b");
	done(p);

	expect_usage_error("--workdir", "mount", "/l", "/up", "/mnt", "--workdir", NULL);
}

static void test_parse_o_form(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-o", "lowerdir=/l1:/l2:/l3,upperdir=/u,workdir=/w", "/mnt");
	assert_int_equal(p->o.command, LFS_CMD_MOUNT);
	assert_lowers(&p->o, 3, (const char *const[]){ "/l1", "/l2", "/l3" });
	assert_string_equal(p->o.upper, "/u");
	assert_string_equal(p->o.work, "/w");
	assert_string_equal(p->o.mountpoint, "/mnt");
	assert_false(p->o.read_only);
	assert_int_equal(p->o.nwarnings, 0);
	done(p);

	/* mountpoint first, options after; several -o add up */
	p = PARSE_OK("/mnt", "-o", "lowerdir=/l1", "-o", "upperdir=/u,workdir=/w", "-f");
	assert_lowers(&p->o, 1, (const char *const[]){ "/l1" });
	assert_string_equal(p->o.upper, "/u");
	assert_string_equal(p->o.work, "/w");
	assert_string_equal(p->o.mountpoint, "/mnt");
	assert_true(p->o.foreground);
	done(p);

	/* "mount" then only the mountpoint */
	p = PARSE_OK("mount", "-o", "lowerdir=/l1,upperdir=/u", "/mnt");
	assert_lowers(&p->o, 1, (const char *const[]){ "/l1" });
	assert_string_equal(p->o.mountpoint, "/mnt");
	done(p);

	/* "\," in an option value is a comma */
	p = PARSE_OK("-o", "lowerdir=/a\\,b:/c,upperdir=/u\\,v", "/mnt");
	assert_lowers(&p->o, 2, (const char *const[]){ "/a,b", "/c" });
	assert_string_equal(p->o.upper, "/u,v");
	done(p);

	/* a later lowerdir= replaces an earlier one */
	p = PARSE_OK("-o", "lowerdir=/x:/y,lowerdir=/z", "/mnt");
	assert_lowers(&p->o, 1, (const char *const[]){ "/z" });
	done(p);
}

static void test_parse_o_joined(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-olowerdir=/l1:/l2,upperdir=/u,workdir=/w", "/mnt");
	assert_lowers(&p->o, 2, (const char *const[]){ "/l1", "/l2" });
	assert_string_equal(p->o.upper, "/u");
	assert_string_equal(p->o.work, "/w");
	assert_string_equal(p->o.mountpoint, "/mnt");
	done(p);
}

static void test_parse_o_empty_entries(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-o", ",,lowerdir=/l1,,,upperdir=/u,,workdir=/w,,", "/mnt");
	assert_lowers(&p->o, 1, (const char *const[]){ "/l1" });
	assert_string_equal(p->o.upper, "/u");
	assert_string_equal(p->o.work, "/w");
	assert_int_equal(p->o.nwarnings, 0);
	done(p);

	p = PARSE_OK("-o", ",", "-o", "lowerdir=/l", "/mnt");
	assert_lowers(&p->o, 1, (const char *const[]){ "/l" });
	assert_int_equal(p->o.nwarnings, 0);
	done(p);
}

static void test_parse_leading_colon(void **state)
{
	(void)state;
	/* containers-storage hands "lowerdir=:/a:/b" */
	struct parsed *p = PARSE_OK("-o", "lowerdir=:/l1:/l2,upperdir=/u,workdir=/w", "/mnt");
	assert_lowers(&p->o, 2, (const char *const[]){ "/l1", "/l2" });
	done(p);
	p = PARSE_OK("-o", "lowerdir=::/l1", "/mnt");
	assert_lowers(&p->o, 1, (const char *const[]){ "/l1" });
	done(p);
	/* but an empty entry in the middle or at the end is an error */
	expect_usage_error("empty", "-o", "lowerdir=:/l1::/l2", "/mnt", NULL);
	expect_usage_error("empty", "-o", "lowerdir=/l1:", "/mnt", NULL);
	expect_usage_error(NULL, "-o", "lowerdir=", "/mnt", NULL);
	expect_usage_error(NULL, "-o", "lowerdir=:", "/mnt", NULL);
}

static void test_parse_unknown_options_warn(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-o", "lowerdir=/l,frobnicate,index=on,metacopy=off,xino=auto", "/mnt");
	assert_lowers(&p->o, 1, (const char *const[]){ "/l" });
	assert_string_equal(p->o.mountpoint, "/mnt");
	assert_int_equal(p->o.nwarnings, 4);
	const char *names[] = { "'frobnicate'", "'index=on'", "'metacopy=off'", "'xino=auto'" };
	for (size_t i = 0; i < 4; i++) {
		assert_non_null(p->o.warnings[i]);
		if (!strstr(p->o.warnings[i], names[i]))
			fail_msg("warning %zu '%s' does not name %s", i, p->o.warnings[i], names[i]);
		assert_non_null(strstr(p->o.warnings[i], "unknown option"));
		assert_null(strchr(p->o.warnings[i], '\n'));
	}
	done(p);

	/* fstab/mount(8) noise is silently accepted */
	p = PARSE_OK("-o", "lowerdir=/l,defaults,noauto,_netdev,noatime,relatime,exec,nofail,users,"
		     "x-systemd.automount,comment=x", "/mnt");
	assert_int_equal(p->o.nwarnings, 0);
	done(p);
}

static void test_parse_flags(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-o", "lowerdir=/l,upperdir=/u,workdir=/w,volatile,userxattr", "/mnt");
	assert_true(p->o.volatile_);
	assert_int_equal(p->o.xattr_ns, LFS_XNS_USER);
	assert_int_equal(p->o.nwarnings, 0);
	done(p);

	p = PARSE_OK("mount", "/l", "/u", "/mnt", "--volatile");
	assert_true(p->o.volatile_);
	done(p);

	p = PARSE_OK("-o", "lowerdir=/l,allow_other,default_permissions,suid,dev", "/mnt");
	assert_int_equal(p->o.allow_other, 1);
	assert_int_equal(p->o.default_permissions, 1);
	assert_true(p->o.suid);
	assert_true(p->o.dev);
	assert_false(p->o.nosuid);
	assert_false(p->o.nodev);
	done(p);

	p = PARSE_OK("-o", "lowerdir=/l,suid,nosuid,dev,nodev", "/mnt");
	assert_false(p->o.suid);
	assert_true(p->o.nosuid);
	assert_false(p->o.dev);
	assert_true(p->o.nodev);
	done(p);

	p = PARSE_OK("-o", "lowerdir=/l,xattr_namespace=trusted", "/mnt");
	assert_int_equal(p->o.xattr_ns, LFS_XNS_TRUSTED);
	done(p);
}

static void test_parse_redirect_dir(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-o", "lowerdir=/l,redirect_dir=off", "/mnt");
	assert_false(p->o.redirect_dir);
	done(p);
	p = PARSE_OK("-o", "lowerdir=/l,redirect_dir=off,redirect_dir=on", "/mnt");
	assert_true(p->o.redirect_dir);
	done(p);
	expect_usage_error("bad", "-o", "lowerdir=/l,redirect_dir=bad", "/mnt", NULL);
	expect_usage_error(NULL, "-o", "lowerdir=/l,redirect_dir=", "/mnt", NULL);
}

static void test_parse_threads(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-o", "lowerdir=/l,threads=8", "/mnt");
	assert_int_equal(p->o.threads, 8);
	done(p);
	p = PARSE_OK("-o", "lowerdir=/l,threads=1", "/mnt");
	assert_int_equal(p->o.threads, 1);
	done(p);
	expect_usage_error("threads", "-o", "lowerdir=/l,threads=bad", "/mnt", NULL);
	expect_usage_error("threads", "-o", "lowerdir=/l,threads=0", "/mnt", NULL);
	expect_usage_error("threads", "-o", "lowerdir=/l,threads=-3", "/mnt", NULL);
	expect_usage_error("threads", "-o", "lowerdir=/l,threads=8x", "/mnt", NULL);
	expect_usage_error("threads", "-o", "lowerdir=/l,threads=", "/mnt", NULL);
	expect_usage_error("threads", "-o", "lowerdir=/l,threads=100000", "/mnt", NULL);
}

static void test_parse_spin_passthrough(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-o", "lowerdir=/l", "/mnt");
	assert_int_equal(p->o.spin_us, 50);
	assert_false(p->o.no_passthrough);
	done(p);
	p = PARSE_OK("-o", "lowerdir=/l,spin=0,nopassthrough", "/mnt");
	assert_int_equal(p->o.spin_us, 0);
	assert_true(p->o.no_passthrough);
	done(p);
	p = PARSE_OK("-o", "lowerdir=/l,nopassthrough,passthrough,spin=10000", "/mnt");
	assert_int_equal(p->o.spin_us, 10000);
	assert_false(p->o.no_passthrough);
	done(p);
	expect_usage_error("spin", "-o", "lowerdir=/l,spin=10001", "/mnt", NULL);
	expect_usage_error("spin", "-o", "lowerdir=/l,spin=-1", "/mnt", NULL);
	expect_usage_error("spin", "-o", "lowerdir=/l,spin=", "/mnt", NULL);
	expect_usage_error("spin", "-o", "lowerdir=/l,spin=5us", "/mnt", NULL);
}

static void test_parse_umount(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("umount", "/mnt");
	assert_int_equal(p->o.command, LFS_CMD_UMOUNT);
	assert_string_equal(p->o.mountpoint, "/mnt");
	assert_int_equal(p->o.nlowers, 0);
	done(p);
	expect_usage_error("umount", "umount", NULL);
	expect_usage_error("umount", "umount", "/a", "/b", NULL);
}

static void test_parse_help_version(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("--help");
	assert_int_equal(p->o.command, LFS_CMD_HELP);
	done(p);
	p = PARSE_OK("-h");
	assert_int_equal(p->o.command, LFS_CMD_HELP);
	done(p);
	/* --help wins over an otherwise broken command line */
	p = PARSE_OK("mount", "--help");
	assert_int_equal(p->o.command, LFS_CMD_HELP);
	done(p);
	p = PARSE_OK("--version");
	assert_int_equal(p->o.command, LFS_CMD_VERSION);
	done(p);
	p = PARSE_OK("-V");
	assert_int_equal(p->o.command, LFS_CMD_VERSION);
	done(p);
}

static void test_parse_missing_pieces(void **state)
{
	(void)state;
	/* no mountpoint */
	expect_usage_error("mountpoint", "-o", "lowerdir=/l,upperdir=/u,workdir=/w", NULL);
	expect_usage_error(NULL, NULL);
	expect_usage_error(NULL, "mount", NULL);
	/* no lowers */
	expect_usage_error("lower", "/mnt", NULL);
	expect_usage_error("lower", "-o", "upperdir=/u,workdir=/w", "/mnt", NULL);
	/* too many positionals */
	expect_usage_error(NULL, "mount", "/l", "/u", "/mnt", "/extra", NULL);
	/* an unknown dash option is a usage error, naming it */
	expect_usage_error("--frob", "mount", "/l", "/u", "/mnt", "--frob", NULL);
	/* -o without its argument */
	expect_usage_error("-o", "/mnt", "-o", NULL);
	/* upperdir= with nothing */
	expect_usage_error("upperdir", "-o", "lowerdir=/l,upperdir=", "/mnt", NULL);
}

static void test_parse_debug_implies_foreground(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-d", "mount", "/l", "/u", "/mnt");
	assert_true(p->o.debug);
	assert_true(p->o.foreground);
	done(p);
	p = PARSE_OK("mount", "/l", "/u", "/mnt", "--debug");
	assert_true(p->o.debug);
	assert_true(p->o.foreground);
	done(p);
	p = PARSE_OK("mount", "/l", "/u", "/mnt", "-f");
	assert_false(p->o.debug);
	assert_true(p->o.foreground);
	done(p);
	p = PARSE_OK("mount", "/l", "/u", "/mnt", "--foreground");
	assert_true(p->o.foreground);
	done(p);
}

static void test_parse_ro(void **state)
{
	(void)state;
	struct parsed *p = PARSE_OK("-o", "ro,lowerdir=/l1:/l2", "/mnt");
	assert_true(p->o.read_only);
	assert_null(p->o.upper);
	assert_null(p->o.work);
	done(p);
	/* no upper at all: read-only even without ro */
	p = PARSE_OK("-o", "lowerdir=/l1:/l2", "/mnt");
	assert_true(p->o.read_only);
	done(p);
	/* ro with an upper: a read-only view of a stack with an upper */
	p = PARSE_OK("-o", "lowerdir=/l,upperdir=/u,workdir=/w,ro", "/mnt");
	assert_true(p->o.read_only);
	assert_string_equal(p->o.upper, "/u");
	done(p);
	p = PARSE_OK("-o", "lowerdir=/l,upperdir=/u,workdir=/w,ro,rw", "/mnt");
	assert_false(p->o.read_only);
	done(p);
}

static void test_parse_workdir_without_upper(void **state)
{
	(void)state;
	expect_usage_error("upper", "-o", "lowerdir=/l,workdir=/w", "/mnt", NULL);
	expect_usage_error("upper", "mount", "/l", "/mnt", "--workdir", "/w", NULL);
	expect_usage_error("upper", "mount", "/l", "/mnt", "--read-only", "--workdir=/w", NULL);
}

static void test_parse_mount_fuse3_form(void **state)
{
	(void)state;
	/* mount -t fuse.layerfs overlay /mnt -o lowerdir=...  runs
	 * "layerfs overlay /mnt -o rw,lowerdir=..."; SOURCE is a mere label. */
	struct parsed *p = parse("overlay", "/mnt", "-o", "rw,lowerdir=/l1:/l2,upperdir=/u,workdir=/w", NULL);
	if (p->rc != 0)
		fail_msg("mount.fuse3 form refused: %s", p->err);
	assert_int_equal(p->o.command, LFS_CMD_MOUNT);
	assert_string_equal(p->o.mountpoint, "/mnt");
	assert_lowers(&p->o, 2, (const char *const[]){ "/l1", "/l2" });
	assert_string_equal(p->o.upper, "/u");
	assert_string_equal(p->o.work, "/w");
	done(p);

	/* read-only variant, as fstab would give it */
	p = parse("layerfs", "/mnt", "-o", "ro,lowerdir=/l1", NULL);
	if (p->rc != 0)
		fail_msg("mount.fuse3 form refused: %s", p->err);
	assert_string_equal(p->o.mountpoint, "/mnt");
	assert_true(p->o.read_only);
	done(p);
}

static void test_parse_id_options(void **state)
{
	(void)state;
	/* what containers-storage hands a mount program */
	struct parsed *p = PARSE_OK("-o", "lowerdir=/l,upperdir=/u,workdir=/w,uidmapping=:0:100000:65536,"
				    "gidmapping=0:100000:1:1:200000:10,xattr_permissions=2", "/mnt");
	assert_int_equal(p->o.ids.uid.n, 1);
	assert_int_equal(p->o.ids.uid.ranges[0].shown, 100000);
	assert_int_equal(p->o.ids.gid.n, 2);
	assert_int_equal(p->o.ids.gid.ranges[1].stored, 1);
	assert_int_equal(p->o.xattr_permissions, 2);
	assert_int_equal(p->o.ids.squash_uid, -1);
	assert_false(p->o.ids.squash_root);
	assert_int_equal(p->o.nwarnings, 0);
	done(p);

	/* an empty mapping is no mapping; the last one given counts */
	p = PARSE_OK("-o", "lowerdir=/l,uidmapping=0:1:1,uidmapping=,gidmapping=", "/mnt");
	assert_int_equal(p->o.ids.uid.n, 0);
	assert_int_equal(p->o.ids.gid.n, 0);
	assert_false(lfs_idshift_active(&p->o.ids));
	done(p);

	p = PARSE_OK("-o", "lowerdir=/l,squash_to_uid=1000,squash_to_gid=0,squash_to_root", "/mnt");
	assert_int_equal(p->o.ids.squash_uid, 1000);
	assert_int_equal(p->o.ids.squash_gid, 0);
	assert_true(p->o.ids.squash_root);
	done(p);

	expect_usage_error("triples", "-o", "lowerdir=/l,uidmapping=0:1", "/mnt", NULL);
	expect_usage_error("overlap", "-o", "lowerdir=/l,gidmapping=0:5:2:1:9:1", "/mnt", NULL);
	expect_usage_error("squash_to_uid", "-o", "lowerdir=/l,squash_to_uid=-1", "/mnt", NULL);
	expect_usage_error("squash_to_gid", "-o", "lowerdir=/l,squash_to_gid=4294967295", "/mnt", NULL);
	expect_usage_error("squash_to_uid", "-o", "lowerdir=/l,squash_to_uid=", "/mnt", NULL);
	expect_usage_error("xattr_permissions", "-o", "lowerdir=/l,xattr_permissions=3", "/mnt", NULL);
	expect_usage_error("xattr_permissions", "-o", "lowerdir=/l,xattr_permissions=", "/mnt", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_plain),
		cmocka_unit_test(test_split_escapes),
		cmocka_unit_test(test_split_empty_entries),
		cmocka_unit_test(test_split_many),
		cmocka_unit_test(test_split_too_many),
		cmocka_unit_test(test_parse_short_form_upper),
		cmocka_unit_test(test_parse_short_form_read_only),
		cmocka_unit_test(test_parse_short_form_escapes),
		cmocka_unit_test(test_parse_workdir_forms),
		cmocka_unit_test(test_parse_o_form),
		cmocka_unit_test(test_parse_o_joined),
		cmocka_unit_test(test_parse_o_empty_entries),
		cmocka_unit_test(test_parse_leading_colon),
		cmocka_unit_test(test_parse_unknown_options_warn),
		cmocka_unit_test(test_parse_flags),
		cmocka_unit_test(test_parse_redirect_dir),
		cmocka_unit_test(test_parse_threads),
		cmocka_unit_test(test_parse_spin_passthrough),
		cmocka_unit_test(test_parse_umount),
		cmocka_unit_test(test_parse_help_version),
		cmocka_unit_test(test_parse_missing_pieces),
		cmocka_unit_test(test_parse_debug_implies_foreground),
		cmocka_unit_test(test_parse_ro),
		cmocka_unit_test(test_parse_workdir_without_upper),
		cmocka_unit_test(test_parse_mount_fuse3_form),
		cmocka_unit_test(test_parse_id_options),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
