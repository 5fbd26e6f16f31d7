/* stack.c - open and check the layer roots and the workdir (see stack.h).
 *
 * Every check a user can trip over gives one line naming the path: a
 * missing directory, a file where a directory belongs, a directory used
 * twice, an upper or workdir nested in another layer, a mountpoint inside
 * a layer, a workdir on another filesystem than the upper.
 */
#define _GNU_SOURCE
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../cow/workdir.h"

/* One directory the user named, with its role for messages. */
struct named_dir {
	const char *role;
	const char *path;
	int fd;
	dev_t dev;
	ino_t ino;
};

static int open_dir(struct named_dir *d, char *err, size_t errlen)
{
	struct stat st;

	d->fd = open(d->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->fd < 0) {
		int e = errno;
		if (e == ENOTDIR)
			return lfs_errorf(err, errlen, "%s '%s' is not a directory", d->role, d->path);
		return lfs_errorf(err, errlen, "%s '%s': %s", d->role, d->path, strerror(e));
	}
	if (fstat(d->fd, &st) < 0)
		return lfs_errorf(err, errlen, "%s '%s': %s", d->role, d->path, strerror(errno));
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	return 0;
}

/* Is b at or below a?  Walks b's ".." chain by fd, so symlinks and bind
 * mounts in the spelled paths do not matter. */
static bool is_at_or_below(const struct named_dir *a, const struct named_dir *b)
{
	int fd = dup(b->fd);
	bool found = false;

	for (int depth = 0; fd >= 0 && depth < 4096; depth++) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			break;
		if (st.st_dev == a->dev && st.st_ino == a->ino) {
			found = true;
			break;
		}
		int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		struct stat ust;
		if (up < 0 || fstat(up, &ust) < 0 ||
		    (ust.st_dev == st.st_dev && ust.st_ino == st.st_ino)) {
			if (up >= 0)
				close(up);
			break;
		}
		close(fd);
		fd = up;
	}
	if (fd >= 0)
		close(fd);
	return found;
}

static int check_overlaps(struct named_dir *dirs, size_t n, char *err, size_t errlen)
{
	/* dirs: lowers..., then upper, work, mountpoint (those present).
	 * Lowers may nest in each other, as the kernel allows; nothing else
	 * may nest in or equal anything. */
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			if (i == j)
				continue;
			bool both_lower = !strcmp(dirs[i].role, "lower directory") &&
					  !strcmp(dirs[j].role, "lower directory");
			if (dirs[i].dev == dirs[j].dev && dirs[i].ino == dirs[j].ino) {
				if (i < j)
					return lfs_errorf(err, errlen, "%s '%s' and %s '%s' are the same directory",
						    dirs[i].role, dirs[i].path, dirs[j].role, dirs[j].path);
				continue;
			}
			if (both_lower)
				continue;
			if (is_at_or_below(&dirs[i], &dirs[j]))
				return lfs_errorf(err, errlen, "%s '%s' is inside %s '%s'",
					    dirs[j].role, dirs[j].path, dirs[i].role, dirs[i].path);
		}
	}
	return 0;
}

char *stack_default_workdir(const char *upper)
{
	char *a = strdup(upper), *b = strdup(upper), *out = NULL;
	size_t len = strlen(a);

	while (len > 1 && a[len - 1] == '/') {
		len--;
		a[len] = b[len] = '\0';
	}
	const char *dir = dirname(a);
	if (asprintf(&out, "%s%s.layerfs-work.%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", basename(b)) < 0)
		abort();
	free(a);
	free(b);
	return out;
}

const char *stack_xattr_prefix(const struct layer_stack *s)
{
	return s->userxattr ? "user.overlay." : "trusted.overlay.";
}

static bool can_set_trusted_xattr(int dir_fd)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", dir_fd);
	if (setxattr(p, "trusted.overlay.layerfs-probe", "", 0, 0) < 0)
		return false;
	removexattr(p, "trusted.overlay.layerfs-probe");
	return true;
}

static bool can_mknod_whiteout(int work_fd)
{
	if (mknodat(work_fd, "whiteout-probe", S_IFCHR | 0, makedev(0, 0)) < 0)
		return false;
	unlinkat(work_fd, "whiteout-probe", 0);
	return true;
}

int stack_open(struct layer_stack *s, const struct lfs_options *o, char *err, size_t errlen)
{
	size_t n = o->nlowers + 3, nd = 0;
	struct named_dir *dirs = calloc(n, sizeof *dirs);
	char *workpath = NULL;
	bool made_workdir = false;
	int rc = -1;

	memset(s, 0, sizeof *s);
	s->work_fd = s->workroot_fd = -1;
	if (!dirs)
		abort();
	if (o->nlowers > LFS_MAX_LOWERS) {
		lfs_errorf(err, errlen, "too many lower layers: %zu (at most %d)", o->nlowers, LFS_MAX_LOWERS);
		goto out;
	}

	for (size_t i = 0; i < o->nlowers; i++) {
		dirs[nd] = (struct named_dir){ "lower directory", o->lowers[i], -1, 0, 0 };
		if (open_dir(&dirs[nd++], err, errlen))
			goto out;
	}
	size_t upper_i = 0, work_i = 0;
	if (o->upper) {
		upper_i = nd;
		dirs[nd] = (struct named_dir){ "upper directory", o->upper, -1, 0, 0 };
		if (open_dir(&dirs[nd++], err, errlen))
			goto out;
		workpath = o->work ? strdup(o->work) : stack_default_workdir(o->upper);
		if (!o->work) {
			if (mkdir(workpath, 0700) == 0)
				made_workdir = true;
			else if (errno != EEXIST) {
				lfs_errorf(err, errlen, "cannot create workdir '%s': %s", workpath, strerror(errno));
				goto out;
			}
		}
		work_i = nd;
		dirs[nd] = (struct named_dir){ "workdir", workpath, -1, 0, 0 };
		if (open_dir(&dirs[nd++], err, errlen))
			goto out;
		if (dirs[work_i].dev != dirs[upper_i].dev) {
			lfs_errorf(err, errlen, "workdir '%s' is not on the same filesystem as upper directory '%s'",
			     workpath, o->upper);
			goto out;
		}
	}
	if (o->mountpoint) {
		dirs[nd] = (struct named_dir){ "mountpoint", o->mountpoint, -1, 0, 0 };
		if (open_dir(&dirs[nd++], err, errlen))
			goto out;
	}
	if (check_overlaps(dirs, nd, err, errlen))
		goto out;

	s->has_upper = o->upper != NULL;
	s->read_only = o->read_only;
	s->volatile_ = o->volatile_;
	s->redirect_dir = o->redirect_dir;
	s->nlayers = (unsigned)o->nlowers + (s->has_upper ? 1 : 0);
	s->layers = calloc(s->nlayers, sizeof *s->layers);
	if (!s->layers)
		abort();
	for (unsigned l = 0; l < s->nlayers; l++) {
		struct named_dir *d = s->has_upper ? (l == 0 ? &dirs[upper_i] : &dirs[l - 1]) : &dirs[l];
		struct layer *ly = &s->layers[l];
		ly->root_fd = d->fd;
		ly->handle_fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		d->fd = -1; /* owned by the stack now */
		ly->dev = d->dev;
		ly->root_ino = d->ino;
		ly->path = strdup(d->path);
		ly->fs_index = s->nfs;
		for (unsigned k = 0; k < l; k++) {
			if (s->layers[k].dev == ly->dev) {
				ly->fs_index = s->layers[k].fs_index;
				break;
			}
		}
		if (ly->fs_index == s->nfs)
			s->nfs++;
	}
	s->same_fs = s->nfs == 1;

	if (s->has_upper) {
		s->workroot_fd = dirs[work_i].fd;
		dirs[work_i].fd = -1;
		s->work_path = workpath;
		workpath = NULL;
		if (o->xattr_ns == LFS_XNS_USER)
			s->userxattr = true;
		else if (o->xattr_ns == LFS_XNS_TRUSTED)
			s->userxattr = false;
		else
			s->userxattr = !can_set_trusted_xattr(s->layers[0].root_fd);
		if (!s->read_only) {
			s->work_fd = workdir_prepare(s->workroot_fd, err, errlen, s->work_path);
			if (s->work_fd < 0)
				goto out;
			s->can_mknod_whiteout = can_mknod_whiteout(s->work_fd);
		}
	} else {
		s->userxattr = o->xattr_ns == LFS_XNS_USER;
	}
	rc = 0;
out:
	for (size_t i = 0; i < nd; i++)
		if (dirs[i].fd >= 0)
			close(dirs[i].fd);
	free(dirs);
	if (rc && made_workdir)
		rmdir(workpath ? workpath : s->work_path);
	free(workpath);
	if (rc)
		stack_close(s);
	return rc;
}

void stack_close(struct layer_stack *s)
{
	for (unsigned l = 0; l < s->nlayers; l++) {
		if (s->layers[l].root_fd >= 0)
			close(s->layers[l].root_fd);
		if (s->layers[l].handle_fd >= 0)
			close(s->layers[l].handle_fd);
		free(s->layers[l].path);
	}
	free(s->layers);
	if (s->work_fd >= 0)
		close(s->work_fd);
	if (s->workroot_fd >= 0)
		close(s->workroot_fd);
	free(s->work_path);
	memset(s, 0, sizeof *s);
	s->work_fd = s->workroot_fd = -1;
}
