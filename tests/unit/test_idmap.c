/* test_idmap.c - layers/idmap.c and the value format of layers/xperm.c:
 * mapping strings as containers-storage writes them, the two directions
 * of a mapping, the overflow id, squashing, and override_stat values. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "layers/idmap.h"
#include "layers/xperm.h"

static void map_ok(const char *spec, size_t n, const struct lfs_idrange *want)
{
	struct lfs_idmap m;
	char err[256] = "";
	if (lfs_idmap_parse(spec, &m, err, sizeof err) != 0)
		fail_msg("parse '%s' failed: %s", spec, err);
	assert_int_equal(m.n, n);
	for (size_t k = 0; k < n; k++) {
		assert_int_equal(m.ranges[k].stored, want[k].stored);
		assert_int_equal(m.ranges[k].shown, want[k].shown);
		assert_int_equal(m.ranges[k].len, want[k].len);
	}
	lfs_idmap_free(&m);
}

static void map_fails(const char *spec, const char *msg_part)
{
	struct lfs_idmap m;
	char err[256] = "";
	assert_int_equal(lfs_idmap_parse(spec, &m, err, sizeof err), -1);
	assert_int_equal(m.n, 0);
	assert_null(m.ranges);
	assert_true(err[0] != '\0');
	assert_null(strchr(err, '\n'));
	if (msg_part && !strstr(err, msg_part))
		fail_msg("message '%s' lacks '%s'", err, msg_part);
}

static void test_parse_forms(void **state)
{
	(void)state;
	map_ok("0:1000:1", 1, (struct lfs_idrange[]){ { 0, 1000, 1 } });
	map_ok("0:1000:1:1:100000:65536", 2,
	       (struct lfs_idrange[]){ { 0, 1000, 1 }, { 1, 100000, 65536 } });
	/* containers-storage writes "uidmapping=:0:1000:1:..." (its buffer
	 * already held the key) and empty values for empty maps */
	map_ok(":0:1000:1:1:100000:65536", 2,
	       (struct lfs_idrange[]){ { 0, 1000, 1 }, { 1, 100000, 65536 } });
	map_ok("", 0, NULL);
	map_ok(":", 0, NULL);
	map_ok("0::1000:1:", 1, (struct lfs_idrange[]){ { 0, 1000, 1 } });
	map_ok("0:4294967295:1", 1, (struct lfs_idrange[]){ { 0, 4294967295u, 1 } });
	map_ok("4294967294:0:2", 1, (struct lfs_idrange[]){ { 4294967294u, 0, 2 } });
}

static void test_parse_errors(void **state)
{
	(void)state;
	map_fails("0:1000", "triples");
	map_fails("0:1000:1:5", "triples");
	map_fails("0:x:1", "not an id");
	map_fails("-1:0:1", "not an id");
	map_fails("0:1000:1 ", "not an id");
	map_fails("0:4294967296:1", "not an id");
	map_fails("0:1000:0", "length 0");
	map_fails("4294967295:0:2", "2^32");
	map_fails("0:4294967295:2", "2^32");
	/* overlapping on either side: not reversible */
	map_fails("0:1000:10:5:2000:10", "overlap");
	map_fails("0:1000:10:100:1005:10", "overlap");
	map_fails("0:1000:1:0:1000:1", "overlap");
	/* adjacent ranges are fine */
	map_ok("0:1000:10:10:1010:10", 2, (struct lfs_idrange[]){ { 0, 1000, 10 }, { 10, 1010, 10 } });
}

static struct lfs_idshift shift_of(const char *uids, const char *gids)
{
	struct lfs_idshift s;
	char err[256];
	lfs_idshift_init(&s);
	if (uids && lfs_idmap_parse(uids, &s.uid, err, sizeof err))
		fail_msg("%s", err);
	if (gids && lfs_idmap_parse(gids, &s.gid, err, sizeof err))
		fail_msg("%s", err);
	return s;
}

static void test_directions(void **state)
{
	(void)state;
	/* the fuse-overlayfs man page example */
	struct lfs_idshift s = shift_of("0:1000:1:1:110000:65536", "0:1000:1:1:110000:65536");
	assert_true(lfs_idshift_active(&s));
	assert_int_equal(lfs_shown_uid(&s, 0), 1000);
	assert_int_equal(lfs_shown_uid(&s, 1), 110000);
	assert_int_equal(lfs_shown_uid(&s, 65536), 175535);
	assert_int_equal(lfs_shown_gid(&s, 2), 110001);
	/* past every range: the overflow id */
	assert_int_equal(lfs_shown_uid(&s, 65537), 65534);
	assert_int_equal(lfs_shown_gid(&s, 200000), 65534);
	/* and back */
	assert_int_equal(lfs_stored_uid(&s, 1000), 0);
	assert_int_equal(lfs_stored_uid(&s, 110000), 1);
	assert_int_equal(lfs_stored_gid(&s, 175535), 65536);
	assert_int_equal(lfs_stored_uid(&s, 0), 65534);
	uint32_t out = 7;
	assert_false(lfs_stored_uid_strict(&s, 999, &out));
	assert_int_equal(out, 7);
	assert_true(lfs_stored_uid_strict(&s, 1000, &out));
	assert_int_equal(out, 0);
	/* every stored id in range goes there and back unchanged */
	for (uint32_t id = 0; id < 65537; id += 97) {
		assert_true(lfs_stored_uid_strict(&s, lfs_shown_uid(&s, id), &out));
		assert_int_equal(out, id);
	}
	/* a different overflow id (from /proc/sys/kernel/overflowuid) */
	s.overflow_uid = 99;
	assert_int_equal(lfs_shown_uid(&s, 70000), 99);
	assert_int_equal(lfs_stored_uid(&s, 5), 99);
	lfs_idshift_free(&s);

	/* only uids mapped: gids pass through */
	s = shift_of("0:100000:65536", NULL);
	assert_int_equal(lfs_shown_gid(&s, 5), 5);
	assert_int_equal(lfs_stored_gid(&s, 5), 5);
	assert_int_equal(lfs_shown_uid(&s, 5), 100005);
	lfs_idshift_free(&s);

	s = shift_of(NULL, NULL);
	assert_false(lfs_idshift_active(&s));
	assert_int_equal(lfs_shown_uid(&s, 123), 123);
	assert_int_equal(lfs_stored_gid(&s, 4000000000u), 4000000000u);
	lfs_idshift_free(&s);
}

static void test_squash(void **state)
{
	(void)state;
	struct lfs_idshift s = shift_of("0:1000:1", "0:1000:1");
	s.squash_root = true;
	assert_true(lfs_idshift_active(&s));
	assert_int_equal(lfs_shown_uid(&s, 0), 0);
	assert_int_equal(lfs_shown_uid(&s, 12345), 0);
	assert_int_equal(lfs_shown_gid(&s, 12345), 0);
	/* squash_to_uid/gid win over squash_to_root */
	s.squash_uid = 42;
	assert_int_equal(lfs_shown_uid(&s, 7), 42);
	assert_int_equal(lfs_shown_gid(&s, 7), 0);
	s.squash_gid = 43;
	assert_int_equal(lfs_shown_gid(&s, 7), 43);
	/* squashing changes what is shown, not what is stored */
	assert_int_equal(lfs_stored_uid(&s, 1000), 0);
	assert_int_equal(lfs_stored_uid(&s, 5), 65534);
	lfs_idshift_free(&s);

	s = shift_of(NULL, NULL);
	s.squash_uid = 0;
	assert_true(lfs_idshift_active(&s));
	assert_int_equal(lfs_shown_uid(&s, 1000), 0);
	assert_int_equal(lfs_shown_gid(&s, 1000), 1000);
	lfs_idshift_free(&s);
}

static void test_overflow_text(void **state)
{
	(void)state;
	assert_int_equal(lfs_parse_overflow_id("65534\n", 1), 65534);
	assert_int_equal(lfs_parse_overflow_id("99", 1), 99);
	assert_int_equal(lfs_parse_overflow_id("", 7), 7);
	assert_int_equal(lfs_parse_overflow_id(NULL, 7), 7);
	assert_int_equal(lfs_parse_overflow_id("x", 7), 7);
	assert_int_equal(lfs_parse_overflow_id("4294967295", 7), 7);
}

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v)
{
	for (int k = 0; k < 4; k++)
		p[k] = (unsigned char)(v >> (8 * k));
}
static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_acl(void **state)
{
	(void)state;
	struct lfs_idshift s = shift_of("0:100000:65536", "0:200000:65536");
	/* version 2; user_obj, user 5, group_obj, group 7, mask, other */
	unsigned char acl[4 + 6 * 8];
	const unsigned tags[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20 };
	const uint32_t ids[] = { 0xffffffffu, 5, 0xffffffffu, 7, 0xffffffffu, 0xffffffffu };
	put32(acl, 2);
	for (int k = 0; k < 6; k++) {
		put16(acl + 4 + 8 * k, tags[k]);
		put16(acl + 6 + 8 * k, 6);
		put32(acl + 8 + 8 * k, ids[k]);
	}
	assert_int_equal(lfs_idmap_acl(&s, acl, sizeof acl, false), 0);
	assert_int_equal(get32(acl + 8 + 8), 100005);        /* named user */
	assert_int_equal(get32(acl + 8 + 24), 200007);       /* named group */
	assert_int_equal(get32(acl + 8), 0xffffffffu);       /* user_obj: no id */
	assert_int_equal(get32(acl + 8 + 32), 0xffffffffu);  /* mask */
	assert_int_equal(lfs_idmap_acl(&s, acl, sizeof acl, true), 0);
	assert_int_equal(get32(acl + 8 + 8), 5);
	assert_int_equal(get32(acl + 8 + 24), 7);
	/* unmapped: overflow going out, EOVERFLOW coming in */
	put32(acl + 8 + 8, 70000);
	assert_int_equal(lfs_idmap_acl(&s, acl, sizeof acl, false), 0);
	assert_int_equal(get32(acl + 8 + 8), 65534);
	put32(acl + 8 + 8, 5);
	assert_int_equal(lfs_idmap_acl(&s, acl, sizeof acl, true), -EOVERFLOW);
	/* not an ACL */
	assert_int_equal(lfs_idmap_acl(&s, acl, 7, false), -EINVAL);
	put32(acl, 1);
	assert_int_equal(lfs_idmap_acl(&s, acl, sizeof acl, false), -EINVAL);
	lfs_idshift_free(&s);
}

static void xperm_ok(const char *text, uint32_t uid, uint32_t gid, unsigned mode)
{
	struct xperm_value v;
	if (xperm_parse(text, strlen(text), &v) != 0)
		fail_msg("'%s' refused", text);
	assert_int_equal(v.uid, uid);
	assert_int_equal(v.gid, gid);
	assert_int_equal(v.mode, mode);
}

static void test_xperm_values(void **state)
{
	(void)state;
	xperm_ok("0:0:555", 0, 0, 0555);
	xperm_ok("0:0:0555", 0, 0, 0555);
	xperm_ok("1000:100:4755", 1000, 100, 04755);
	/* type bits, as fuse-overlayfs may write the whole st_mode */
	xperm_ok("5:6:100644", 5, 6, 0644);
	/* the extended form of newer writers carries a type field */
	xperm_ok("0:0:0644:file", 0, 0, 0644);
	xperm_ok("0:0:0666:char-1-3", 0, 0, 0666);
	struct xperm_value v;
	const char nul[] = "1:2:0755";
	assert_int_equal(xperm_parse(nul, sizeof nul, &v), 0); /* with its NUL */
	assert_int_equal(v.mode, 0755);
	const char *bad[] = { "", "0:0", "0:0:", ":0:755", "0:0:758", "a:0:755", "0:0:755x",
			      "4294967295:0:755", "0:0:1777777" };
	for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
		if (xperm_parse(bad[k], strlen(bad[k]), &v) == 0)
			fail_msg("'%s' accepted", bad[k]);

	char buf[64];
	struct xperm_value w = { 1000, 100, 02755 };
	int n = xperm_format(&w, buf, sizeof buf);
	assert_string_equal(buf, "1000:100:02755");
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(xperm_parse(buf, (size_t)n, &v), 0);
	assert_int_equal(v.mode, 02755);

	assert_string_equal(xperm_name(XPERM_USER), "user.fuseoverlayfs.override_stat");
	assert_string_equal(xperm_name(XPERM_PRIVILEGED), "security.fuseoverlayfs.override_stat");
	assert_string_equal(xperm_name(XPERM_CONTAINERS), "user.containers.override_stat");
	assert_null(xperm_name(XPERM_NONE));
	assert_int_equal(xperm_mode_of_option(1), XPERM_PRIVILEGED);
	assert_int_equal(xperm_mode_of_option(2), XPERM_USER);
	assert_int_equal(xperm_mode_of_option(0), XPERM_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_directions),
		cmocka_unit_test(test_squash),
		cmocka_unit_test(test_overflow_text),
		cmocka_unit_test(test_xperm_values),
		cmocka_unit_test(test_acl),
	};
	return cmocka_run_group_tests_name("idmap", tests, NULL, NULL);
}
