/* idmap.c - uid/gid mappings and squashing (see idmap.h). */
#define _GNU_SOURCE
#include "idmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define OVERFLOW_DEFAULT 65534u

/* One decimal number of 1..10 digits that fits in 32 bits. */
static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return (uint64_t)a < (uint64_t)b + blen && (uint64_t)b < (uint64_t)a + alen;
}

static int check_range(const struct lfs_idmap *m, const struct lfs_idrange *r, const char *spec,
		       char *err, size_t errlen)
{
	if (r->len == 0)
		return lfs_errorf(err, errlen, "bad id mapping '%s': a range of length 0", spec);
	if ((uint64_t)r->stored + r->len > (uint64_t)UINT32_MAX + 1 ||
	    (uint64_t)r->shown + r->len > (uint64_t)UINT32_MAX + 1)
		return lfs_errorf(err, errlen, "bad id mapping '%s': range %u:%u:%u goes past 2^32",
				  spec, r->stored, r->shown, r->len);
	for (size_t k = 0; k < m->n; k++) {
		const struct lfs_idrange *o = &m->ranges[k];
		if (overlaps(o->stored, o->len, r->stored, r->len) ||
		    overlaps(o->shown, o->len, r->shown, r->len))
			return lfs_errorf(err, errlen, "bad id mapping '%s': ranges %u:%u:%u and %u:%u:%u overlap",
					  spec, o->stored, o->shown, o->len, r->stored, r->shown, r->len);
	}
	return 0;
}

int lfs_idmap_parse(const char *spec, struct lfs_idmap *m, char *err, size_t errlen)
{
	uint32_t field[3];
	unsigned nf = 0;
	const char *p = spec;

	memset(m, 0, sizeof *m);
	while (*p) {
		size_t len = strcspn(p, ":");
		if (len > 0) {
			if (!parse_u32(p, len, &field[nf])) {
				lfs_idmap_free(m);
				return lfs_errorf(err, errlen, "bad id mapping '%s': '%.*s' is not an id",
						  spec, (int)(len > 20 ? 20 : len), p);
			}
			if (++nf == 3) {
				struct lfs_idrange r = { field[0], field[1], field[2] };
				if (check_range(m, &r, spec, err, errlen)) {
					lfs_idmap_free(m);
					return -1;
				}
				struct lfs_idrange *nr = realloc(m->ranges, (m->n + 1) * sizeof *nr);
				if (!nr)
					abort();
				nr[m->n++] = r;
				m->ranges = nr;
				nf = 0;
			}
		}
		p += len;
		if (*p == ':')
			p++;
	}
	if (nf != 0) {
		lfs_idmap_free(m);
		return lfs_errorf(err, errlen,
				  "bad id mapping '%s': ids come in triples STORED:SHOWN:LENGTH", spec);
	}
	return 0;
}

void lfs_idmap_free(struct lfs_idmap *m)
{
	free(m->ranges);
	m->ranges = NULL;
	m->n = 0;
}

bool lfs_idmap_to_shown(const struct lfs_idmap *m, uint32_t stored, uint32_t *out)
{
	for (size_t k = 0; k < m->n; k++) {
		const struct lfs_idrange *r = &m->ranges[k];
		if (stored >= r->stored && stored - r->stored < r->len) {
			*out = r->shown + (stored - r->stored);
			return true;
		}
	}
	return false;
}

bool lfs_idmap_to_stored(const struct lfs_idmap *m, uint32_t shown, uint32_t *out)
{
	for (size_t k = 0; k < m->n; k++) {
		const struct lfs_idrange *r = &m->ranges[k];
		if (shown >= r->shown && shown - r->shown < r->len) {
			*out = r->stored + (shown - r->shown);
			return true;
		}
	}
	return false;
}

void lfs_idshift_init(struct lfs_idshift *s)
{
	memset(s, 0, sizeof *s);
	s->squash_uid = -1;
	s->squash_gid = -1;
	s->overflow_uid = OVERFLOW_DEFAULT;
	s->overflow_gid = OVERFLOW_DEFAULT;
}

void lfs_idshift_free(struct lfs_idshift *s)
{
	lfs_idmap_free(&s->uid);
	lfs_idmap_free(&s->gid);
}

bool lfs_idshift_active(const struct lfs_idshift *s)
{
	return s->uid.n || s->gid.n || s->squash_uid >= 0 || s->squash_gid >= 0 || s->squash_root;
}

static uint32_t shown_id(const struct lfs_idmap *m, int64_t squash, bool squash_root,
			 uint32_t overflow, uint32_t stored)
{
	if (squash >= 0)
		return (uint32_t)squash;
	if (squash_root)
		return 0;
	if (m->n == 0)
		return stored;
	uint32_t out;
	return lfs_idmap_to_shown(m, stored, &out) ? out : overflow;
}

uint32_t lfs_shown_uid(const struct lfs_idshift *s, uint32_t stored)
{
	return shown_id(&s->uid, s->squash_uid, s->squash_root, s->overflow_uid, stored);
}

uint32_t lfs_shown_gid(const struct lfs_idshift *s, uint32_t stored)
{
	return shown_id(&s->gid, s->squash_gid, s->squash_root, s->overflow_gid, stored);
}

static bool stored_id(const struct lfs_idmap *m, uint32_t shown, uint32_t *out)
{
	if (m->n == 0) {
		*out = shown;
		return true;
	}
	return lfs_idmap_to_stored(m, shown, out);
}

bool lfs_stored_uid_strict(const struct lfs_idshift *s, uint32_t shown, uint32_t *out)
{
	return stored_id(&s->uid, shown, out);
}

bool lfs_stored_gid_strict(const struct lfs_idshift *s, uint32_t shown, uint32_t *out)
{
	return stored_id(&s->gid, shown, out);
}

uint32_t lfs_stored_uid(const struct lfs_idshift *s, uint32_t shown)
{
	uint32_t out;
	return stored_id(&s->uid, shown, &out) ? out : s->overflow_uid;
}

uint32_t lfs_stored_gid(const struct lfs_idshift *s, uint32_t shown)
{
	uint32_t out;
	return stored_id(&s->gid, shown, &out) ? out : s->overflow_gid;
}

/* The kernel's posix_acl_xattr layout: a 4-byte version, then entries of
 * tag (2), perm (2), id (4), all little-endian. */
#define ACL_XATTR_VERSION 2
#define ACL_TAG_USER 0x02
#define ACL_TAG_GROUP 0x08

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

int lfs_idmap_acl(const struct lfs_idshift *s, void *value, size_t len, bool to_stored)
{
	unsigned char *v = value;
	if (len < 4 || (len - 4) % 8 != 0 || get_le32(v) != ACL_XATTR_VERSION)
		return -EINVAL;
	for (size_t off = 4; off < len; off += 8) {
		unsigned tag = (unsigned)v[off] | (unsigned)v[off + 1] << 8;
		const struct lfs_idmap *m = tag == ACL_TAG_USER ? &s->uid : tag == ACL_TAG_GROUP ? &s->gid : NULL;
		if (!m || m->n == 0)
			continue;
		uint32_t id = get_le32(v + off + 4), out;
		if (to_stored) {
			if (!lfs_idmap_to_stored(m, id, &out))
				return -EOVERFLOW;
		} else if (!lfs_idmap_to_shown(m, id, &out)) {
			out = tag == ACL_TAG_USER ? s->overflow_uid : s->overflow_gid;
		}
		put_le32(v + off + 4, out);
	}
	return 0;
}

uint32_t lfs_parse_overflow_id(const char *text, uint32_t fallback)
{
	uint32_t v;
	if (!text)
		return fallback;
	size_t len = strcspn(text, " \t\n");
	if (!parse_u32(text, len, &v) || v == UINT32_MAX)
		return fallback;
	return v;
}
