/* idmap.h - uid/gid shifting between the ids stored in the layers and the
 * ids the mount shows, as fuse-overlayfs's uidmapping=/gidmapping= and
 * squash_to_* options define it.  Pure: no FUSE, no I/O.
 *
 * A mapping "C:H:L[:C:H:L...]" (containers-storage's ContainerID:HostID:Size)
 * says that the ids C..C+L-1 stored in the layers are shown as H..H+L-1.
 * A stored id outside every range is shown as the overflow id; an id coming
 * in (chown, the creator of a new file) is stored as its C, or as the
 * overflow id when no range holds it.  Squashing overrides what is shown
 * (squash_to_uid/gid first, then squash_to_root) and leaves storing alone.
 */
#ifndef LAYERFS_IDMAP_H
#define LAYERFS_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lfs_idrange {
	uint32_t stored;  /* C: the id in the layers */
	uint32_t shown;   /* H: the id the mount reports */
	uint32_t len;     /* L >= 1 */
};

struct lfs_idmap {
	struct lfs_idrange *ranges;  /* in the order given */
	size_t n;                    /* 0: no mapping, ids pass through */
};

/* What one mount does to ids: the uid and gid mappings, squashing and the
 * overflow ids.  squash_uid/squash_gid are -1 when not set. */
struct lfs_idshift {
	struct lfs_idmap uid, gid;
	int64_t squash_uid, squash_gid;
	bool squash_root;
	uint32_t overflow_uid, overflow_gid;
};

/* Parses a mapping value.  Empty entries are skipped (containers-storage
 * may write "uidmapping=:0:1000:1" or an empty value); the numbers must come
 * in whole triples, each range at least 1 long, inside 32 bits, and no two
 * ranges may overlap on either side (the mapping must be reversible, as a
 * user namespace's is).  Returns 0, or -1 with a one-line message in err;
 * m is left empty on failure. */
int lfs_idmap_parse(const char *spec, struct lfs_idmap *m, char *err, size_t errlen);
void lfs_idmap_free(struct lfs_idmap *m);

/* Looks id up on one side of the ranges.  Returns true and sets *out when a
 * range holds it. */
bool lfs_idmap_to_shown(const struct lfs_idmap *m, uint32_t stored, uint32_t *out);
bool lfs_idmap_to_stored(const struct lfs_idmap *m, uint32_t shown, uint32_t *out);

/* Sets s to "nothing shifted": no mapping, no squash, overflow ids 65534. */
void lfs_idshift_init(struct lfs_idshift *s);
void lfs_idshift_free(struct lfs_idshift *s);
/* True when s changes any id (the daemon skips the hooks otherwise). */
bool lfs_idshift_active(const struct lfs_idshift *s);

/* Stored id -> the id stat shows. */
uint32_t lfs_shown_uid(const struct lfs_idshift *s, uint32_t stored);
uint32_t lfs_shown_gid(const struct lfs_idshift *s, uint32_t stored);
/* Shown id (a caller's, a chown's) -> the id written to the layer; unmapped
 * ids become the overflow id, as fuse-overlayfs stores them.  The _strict
 * forms return false instead, for callers that would rather refuse. */
uint32_t lfs_stored_uid(const struct lfs_idshift *s, uint32_t shown);
uint32_t lfs_stored_gid(const struct lfs_idshift *s, uint32_t shown);
bool lfs_stored_uid_strict(const struct lfs_idshift *s, uint32_t shown, uint32_t *out);
bool lfs_stored_gid_strict(const struct lfs_idshift *s, uint32_t shown, uint32_t *out);

/* Maps the ids of the named user and group entries of a POSIX ACL xattr
 * value (system.posix_acl_access/_default, version 2) in place: stored ->
 * shown (overflow ids for unmapped ones) or shown -> stored.  Squashing
 * does not apply: it is about owners.  Returns 0; -EINVAL for a value that
 * is not an ACL; -EOVERFLOW when an id coming in has no range. */
int lfs_idmap_acl(const struct lfs_idshift *s, void *value, size_t len, bool to_stored);

/* Reads a number from /proc/sys/kernel/overflow[ug]id-style text; returns
 * fallback when text is NULL or not a number in 0..2^32-2. */
uint32_t lfs_parse_overflow_id(const char *text, uint32_t fallback);

#endif
