/* options.c - parse the layerfs command line (see options.h). */
#define _GNU_SOURCE
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lfs_errorf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static void push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof **v);
	if (!nv)
		abort();
	nv[(*n)++] = s;
	*v = nv;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int lfs_split_layers(const char *spec, char ***out, size_t *n, char *err, size_t errlen)
{
	char **v = NULL;
	size_t count = 0, len = strlen(spec);
	char *cur = malloc(len + 1);
	size_t cl = 0;

	if (!cur)
		abort();
	for (size_t i = 0;; i++) {
		char c = spec[i];
		if (c == '\\' && (spec[i + 1] == ':' || spec[i + 1] == '\\')) {
			cur[cl++] = spec[++i];
			continue;
		}
		if (c == ':' || c == '\0') {
			if (cl == 0) {
				free(cur);
				free_list(v, count);
				return lfs_errorf(err, errlen, "empty entry in layer list '%s'", spec);
			}
			cur[cl] = '\0';
			push(&v, &count, strdup(cur));
			cl = 0;
			if (c == '\0')
				break;
			if (count >= LFS_MAX_LOWERS) {
				free(cur);
				free_list(v, count);
				return lfs_errorf(err, errlen, "too many layers (at most %d)", LFS_MAX_LOWERS);
			}
			continue;
		}
		cur[cl++] = c;
	}
	free(cur);
	*out = v;
	*n = count;
	return 0;
}

static bool is_flag(const char *opt, const char *name)
{
	return strcmp(opt, name) == 0;
}

/* A uid or gid: decimal, below (uid_t)-1, which means "no id" to chown. */
static int parse_id(const char *val, int64_t *out)
{
	char *end;
	if (val[0] < '0' || val[0] > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(val, &end, 10);
	if (errno || *end || v >= UINT32_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* A decimal count in [min, max] for option NAME. */
static int parse_count(const char *val, long min, long max, const char *name, unsigned *out,
		       char *err, size_t errlen)
{
	char *end;
	long t = strtol(val, &end, 10);
	if (!*val || *end || t < min || t > max)
		return lfs_errorf(err, errlen, "bad value '%s' for %s (%ld-%ld)", val, name, min, max);
	*out = (unsigned)t;
	return 0;
}

/* One -o entry. Keys we do not know are warned about and ignored, as
 * containers-storage passes options meant for other mount programs. */
static int parse_one_option(struct lfs_options *o, char *opt, char *err, size_t errlen)
{
	char *val = strchr(opt, '=');
	if (val)
		*val++ = '\0';

	if (is_flag(opt, "lowerdir") && val) {
		/* containers-storage may hand a leading ':' */
		while (*val == ':')
			val++;
		if (o->lowers) {
			free_list(o->lowers, o->nlowers);
			o->lowers = NULL;
		}
		return lfs_split_layers(val, &o->lowers, &o->nlowers, err, errlen);
	}
	if ((is_flag(opt, "upperdir") || is_flag(opt, "workdir")) && val) {
		char **slot = opt[0] == 'u' ? &o->upper : &o->work;
		if (!*val)
			return lfs_errorf(err, errlen, "option '%s' needs a directory", opt);
		free(*slot);
		*slot = strdup(val);
		return 0;
	}
	if (is_flag(opt, "ro") && !val) { o->read_only = true; return 0; }
	if (is_flag(opt, "rw") && !val) { o->read_only = false; return 0; }
	if (is_flag(opt, "volatile") && !val) { o->volatile_ = true; return 0; }
	if (is_flag(opt, "writeback") && !val) { o->writeback = true; return 0; }
	if (is_flag(opt, "nowriteback") && !val) { o->writeback = false; return 0; }
	if (is_flag(opt, "passthrough") && !val) { o->no_passthrough = false; return 0; }
	if (is_flag(opt, "nopassthrough") && !val) { o->no_passthrough = true; return 0; }
	if (is_flag(opt, "userxattr") && !val) { o->xattr_ns = LFS_XNS_USER; return 0; }
	if (is_flag(opt, "allow_other") && !val) { o->allow_other = 1; return 0; }
	if (is_flag(opt, "noallow_other") && !val) { o->allow_other = 0; return 0; }
	if (is_flag(opt, "default_permissions") && !val) { o->default_permissions = 1; return 0; }
	if (is_flag(opt, "nodefault_permissions") && !val) { o->default_permissions = 0; return 0; }
	if (is_flag(opt, "suid") && !val) { o->suid = true; o->nosuid = false; return 0; }
	if (is_flag(opt, "nosuid") && !val) { o->nosuid = true; o->suid = false; return 0; }
	if (is_flag(opt, "dev") && !val) { o->dev = true; o->nodev = false; return 0; }
	if (is_flag(opt, "nodev") && !val) { o->nodev = true; o->dev = false; return 0; }
	if (is_flag(opt, "debug") && !val) { o->debug = true; return 0; }
	if (is_flag(opt, "redirect_dir") && val) {
		if (is_flag(val, "on") || is_flag(val, "follow"))
			o->redirect_dir = true;
		else if (is_flag(val, "off") || is_flag(val, "nofollow"))
			o->redirect_dir = false;
		else
			return lfs_errorf(err, errlen, "bad value '%s' for redirect_dir (on|off)", val);
		return 0;
	}
	if (is_flag(opt, "xattr_namespace") && val) {
		if (is_flag(val, "trusted"))
			o->xattr_ns = LFS_XNS_TRUSTED;
		else if (is_flag(val, "user"))
			o->xattr_ns = LFS_XNS_USER;
		else
			return lfs_errorf(err, errlen, "bad value '%s' for xattr_namespace (trusted|user)", val);
		return 0;
	}
	if (is_flag(opt, "threads") && val)
		return parse_count(val, 1, 1024, "threads", &o->threads, err, errlen);
	if (is_flag(opt, "spin") && val)
		return parse_count(val, 0, 10000, "spin", &o->spin_us, err, errlen);
	if ((is_flag(opt, "uidmapping") || is_flag(opt, "gidmapping")) && val) {
		struct lfs_idmap *m = opt[0] == 'u' ? &o->ids.uid : &o->ids.gid;
		lfs_idmap_free(m);
		return lfs_idmap_parse(val, m, err, errlen);
	}
	if ((is_flag(opt, "squash_to_uid") || is_flag(opt, "squash_to_gid")) && val) {
		int64_t id;
		if (parse_id(val, &id))
			return lfs_errorf(err, errlen, "bad value '%s' for %s (an id, 0-4294967294)", val, opt);
		*(opt[10] == 'u' ? &o->ids.squash_uid : &o->ids.squash_gid) = id;
		return 0;
	}
	if (is_flag(opt, "squash_to_root") && !val) { o->ids.squash_root = true; return 0; }
	if (is_flag(opt, "xattr_permissions") && val) {
		if (strlen(val) != 1 || val[0] < '0' || val[0] > '2')
			return lfs_errorf(err, errlen, "bad value '%s' for xattr_permissions (0|1|2)", val);
		o->xattr_permissions = val[0] - '0';
		return 0;
	}
	/* mount(8) and fstab pass these; they mean nothing to us. */
	if (is_flag(opt, "defaults") || is_flag(opt, "auto") || is_flag(opt, "noauto") ||
	    is_flag(opt, "user") || is_flag(opt, "nouser") || is_flag(opt, "_netdev") ||
	    is_flag(opt, "exec") || is_flag(opt, "noexec") || is_flag(opt, "atime") ||
	    is_flag(opt, "noatime") || is_flag(opt, "relatime") || is_flag(opt, "nofail") ||
	    is_flag(opt, "users") || is_flag(opt, "owner") || is_flag(opt, "group") ||
	    strncmp(opt, "x-", 2) == 0 || strncmp(opt, "comment=", 8) == 0 || is_flag(opt, "comment"))
		return 0;

	char *msg;
	if (asprintf(&msg, "ignoring unknown option '%s%s%s'", opt, val ? "=" : "", val ? val : "") < 0)
		abort();
	push(&o->warnings, &o->nwarnings, msg);
	return 0;
}

static int parse_option_list(struct lfs_options *o, const char *list, char *err, size_t errlen)
{
	char *copy = strdup(list), *p = copy;
	int rc = 0;

	/* Split on commas, but not inside a lowerdir value: a comma there
	 * can be escaped as "\," (as the kernel does). */
	while (p && rc == 0) {
		char *q = p, *w = p;
		while (*q && *q != ',') {
			if (*q == '\\' && q[1] == ',') {
				*w++ = ',';
				q += 2;
				continue;
			}
			*w++ = *q++;
		}
		char *next = *q ? q + 1 : NULL;
		*w = '\0';
		if (*p)
			rc = parse_one_option(o, p, err, errlen);
		p = next;
	}
	free(copy);
	return rc;
}

static void set_defaults(struct lfs_options *o)
{
	memset(o, 0, sizeof *o);
	lfs_idshift_init(&o->ids);
	o->redirect_dir = true;
	o->allow_other = -1;
	o->default_permissions = -1;
	o->spin_us = 50;
}

int lfs_parse_args(int argc, char **argv, struct lfs_options *o, char *err, size_t errlen)
{
	char **pos = NULL;
	size_t npos = 0;
	int rc = -1;

	set_defaults(o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (is_flag(a, "-h") || is_flag(a, "--help")) {
			o->command = LFS_CMD_HELP;
			free(pos);
			return 0;
		}
		if (is_flag(a, "-V") || is_flag(a, "--version")) {
			o->command = LFS_CMD_VERSION;
			free(pos);
			return 0;
		}
		if (is_flag(a, "-f") || is_flag(a, "--foreground")) {
			o->foreground = true;
		} else if (is_flag(a, "-d") || is_flag(a, "--debug")) {
			o->debug = true;
			o->foreground = true;
		} else if (is_flag(a, "-r") || is_flag(a, "--read-only")) {
			o->read_only = true;
		} else if (is_flag(a, "--volatile")) {
			o->volatile_ = true;
		} else if (is_flag(a, "-o") || is_flag(a, "--workdir")) {
			if (i + 1 >= argc) {
				lfs_errorf(err, errlen, "option '%s' needs an argument", a);
				goto out;
			}
			if (a[1] == 'o') {
				if (parse_option_list(o, argv[++i], err, errlen))
					goto out;
			} else {
				free(o->work);
				o->work = strdup(argv[++i]);
			}
		} else if (strncmp(a, "-o", 2) == 0) {
			if (parse_option_list(o, a + 2, err, errlen))
				goto out;
		} else if (strncmp(a, "--workdir=", 10) == 0) {
			free(o->work);
			o->work = strdup(a + 10);
		} else if (is_flag(a, "--")) {
			for (i++; i < argc; i++)
				push(&pos, &npos, argv[i]);
		} else if (a[0] == '-' && a[1]) {
			lfs_errorf(err, errlen, "unknown option '%s' (see --help)", a);
			goto out;
		} else {
			push(&pos, &npos, argv[i]);
		}
	}

	size_t first = 0;
	if (npos > 0 && (is_flag(pos[0], "umount") || is_flag(pos[0], "unmount"))) {
		if (npos != 2) {
			lfs_errorf(err, errlen, "usage: layerfs umount MERGED");
			goto out;
		}
		o->command = LFS_CMD_UMOUNT;
		o->mountpoint = strdup(pos[1]);
		rc = 0;
		goto out;
	}
	if (npos > 0 && is_flag(pos[0], "mount"))
		first = 1;
	o->command = LFS_CMD_MOUNT;

	size_t rest = npos - first;
	if (first == 1 && rest >= 2 && !o->lowers) {
		/* short form: LOWERS [UPPER] MERGED */
		if (lfs_split_layers(pos[first], &o->lowers, &o->nlowers, err, errlen))
			goto out;
		if (rest == 3) {
			o->upper = strdup(pos[first + 1]);
		} else if (rest != 2) {
			lfs_errorf(err, errlen, "usage: layerfs mount LOWER1[:LOWER2...] [UPPER] MERGED");
			goto out;
		}
		o->mountpoint = strdup(pos[npos - 1]);
	} else if (rest == 1) {
		/* -o lowerdir=... form */
		o->mountpoint = strdup(pos[first]);
	} else if (rest == 2 && !first && o->lowers) {
		/* mount.fuse3 calls "layerfs SOURCE MERGED -o ..."; SOURCE is a label */
		o->mountpoint = strdup(pos[1]);
	} else {
		lfs_errorf(err, errlen, npos == 0 ? "no mountpoint given (see --help)"
					    : "wrong number of arguments (see --help)");
		goto out;
	}
	if (!o->lowers || o->nlowers == 0) {
		lfs_errorf(err, errlen, "no lower directory given (lowerdir=... or LOWER1:LOWER2)");
		goto out;
	}
	if (!o->upper && o->work) {
		lfs_errorf(err, errlen, "a workdir needs an upperdir");
		goto out;
	}
	if (!o->upper)
		o->read_only = true;
	rc = 0;
out:
	free(pos);
	return rc;
}

void lfs_options_free(struct lfs_options *o)
{
	free_list(o->lowers, o->nlowers);
	free_list(o->warnings, o->nwarnings);
	free(o->upper);
	free(o->work);
	free(o->mountpoint);
	lfs_idshift_free(&o->ids);
	memset(o, 0, sizeof *o);
}
