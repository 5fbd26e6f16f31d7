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
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_GROUPS 64

int creds_enter(fuse_req_t req, struct saved_creds *saved)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[MAX_GROUPS];

	saved->switched = false;
	if (!lfs.can_switch_creds)
		return 0;
	int n = fuse_req_getgroups(req, MAX_GROUPS, groups);
	if (n < 0 || n > MAX_GROUPS)
		n = 0;
	/* in a user namespace with setgroups denied only the fs ids move */
	if (syscall(SYS_setgroups, n, groups) < 0 && errno != EPERM)
		return -errno;
	saved->gid = (gid_t)setfsgid(ctx->gid);
	saved->uid = (uid_t)setfsuid(ctx->uid);
	saved->switched = true;
	return 0;
}

void creds_leave(struct saved_creds *saved)
{
	if (!saved->switched)
		return;
	setfsuid(saved->uid);
	setfsgid(saved->gid);
	syscall(SYS_setgroups, 0, NULL);
}
