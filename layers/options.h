/* options.h - the layerfs command line, parsed into one struct.
 *
 * Owns: the `mount LOWERS UPPER MERGED` short form, the containers-storage
 * `-o lowerdir=...,upperdir=...,workdir=...` form, `\:` escapes in layer
 * lists, the id options of fuse-overlayfs (uidmapping=, gidmapping=,
 * squash_to_*, xattr_permissions=).  It only parses; checking the
 * directories is stack.c's job.
 */
#ifndef LAYERFS_OPTIONS_H
#define LAYERFS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "idmap.h"

#define LFS_MAX_LOWERS 4096 /* the kernel allows 500; we go further */

enum lfs_command { LFS_CMD_MOUNT, LFS_CMD_UMOUNT, LFS_CMD_HELP, LFS_CMD_VERSION };
enum lfs_xattr_ns { LFS_XNS_AUTO, LFS_XNS_TRUSTED, LFS_XNS_USER };

struct lfs_options {
	enum lfs_command command;
	char **lowers;      /* top first, unescaped */
	size_t nlowers;
	char *upper;        /* NULL for a read-only stack */
	char *work;         /* NULL: default next to the upper */
	char *mountpoint;
	bool read_only;
	bool foreground;
	bool debug;
	bool volatile_;
	bool writeback;     /* -o writeback: the kernel caches writes */
	bool no_passthrough; /* -o nopassthrough: upper files' data through the daemon too */
	bool redirect_dir;  /* default on */
	enum lfs_xattr_ns xattr_ns;
	int allow_other;         /* -1: default (on as root) */
	int default_permissions; /* -1: default (on as root) */
	bool suid, dev, nosuid, nodev;
	unsigned threads;   /* 0: default */
	unsigned spin_us;   /* -o spin=: how long a reader polls before it sleeps */
	struct lfs_idshift ids;  /* uidmapping=, gidmapping=, squash_to_* */
	int xattr_permissions;   /* 0: off; 1: security.*, 2: user.* override xattr */
	char **warnings;    /* unknown options, one message each */
	size_t nwarnings;
};

/* Splits a colon-separated layer list; `\:` is a colon, `\\` a backslash.
 * Returns 0, or -1 with a message in err. Empty entries are an error. */
int lfs_split_layers(const char *spec, char ***out, size_t *n, char *err, size_t errlen);

/* Parses argv. Returns 0 on success, -1 on a usage error (message in err). */
int lfs_parse_args(int argc, char **argv, struct lfs_options *o, char *err, size_t errlen);

void lfs_options_free(struct lfs_options *o);

/* Writes a one-line message into err; returns -1, for "return lfs_errorf(...)". */
int lfs_errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
