/* creds.c - create objects as the caller, not as the daemon.
 *
 * fsuid/fsgid and the supplementary groups are per-thread in the kernel;
 * glibc's setgroups() would change every thread, so the raw syscalls are
 * used.  The upper filesystem then applies the caller's ids, setgid
 * directories and default ACLs itself.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_GROUPS 64

/* With POSIX ACLs on, the kernel leaves the umask to us: the upper
 * filesystem applies it, or a default ACL instead, when it creates the
 * object, so each worker thread gets a umask of its own (CLONE_FS). */
static void set_thread_umask(mode_t mask)
{
	static __thread bool own_fs;
	if (!own_fs) {
		if (unshare(CLONE_FS) < 0)
			return;
		own_fs = true;
	}
	umask(mask);
}

int creds_enter(fuse_req_t req, struct saved_creds *saved)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[MAX_GROUPS];

	saved->switched = false;
	saved->umask_set = false;
	if (lfs.kernel_skips_umask) {
		set_thread_umask(ctx->umask);
		saved->umask_set = true;
	}
	if (!lfs.can_switch_creds)
		return 0;
	int n = fuse_req_getgroups(req, MAX_GROUPS, groups);
	if (n < 0 || n > MAX_GROUPS)
		n = 0;
	uid_t uid;
	gid_t gid;
	ids_caller(req, &uid, &gid, groups, &n); /* as the layers store them */
	/* in a user namespace with setgroups denied only the fs ids move */
	if (syscall(SYS_setgroups, n, groups) < 0 && errno != EPERM)
		return -errno;
	saved->gid = (gid_t)setfsgid(gid);
	saved->uid = (uid_t)setfsuid(uid);
	saved->switched = true;
	return 0;
}

void creds_leave(struct saved_creds *saved)
{
	if (saved->umask_set)
		set_thread_umask(0);
	if (!saved->switched)
		return;
	setfsuid(saved->uid);
	setfsgid(saved->gid);
	syscall(SYS_setgroups, 0, NULL);
}
