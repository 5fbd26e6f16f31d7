/* session.c - mount, serve, unmount: builds the libfuse session from the
 * options, detaches into the background once the mount is live, and runs
 * the request loop (loop.c) until unmounted or signalled.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct lfs lfs;

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	unsigned want = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_ATOMIC_O_TRUNC |
			FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_READDIRPLUS;
	/* ACLs are enforced by the kernel, as on kernel overlay; that needs
	 * default_permissions, which is our default as root */
	if (lfs.posix_acl)
		want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
	conn->want |= want & conn->capable;
	/* READDIRPLUS for every chunk of a listing, not just the first: a
	 * walk then costs a request per page of entries, not one per entry */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	lfs.kernel_skips_umask = (conn->want & FUSE_CAP_POSIX_ACL) != 0;
	/* locks stay in the kernel, as for any FUSE mount without lock ops */
	conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	/* -o writeback: writes are cached and sent in large pieces.  Off by
	 * default: the kernel then keeps mtime and ctime itself, so a
	 * truncate to the same size leaves mtime alone, unlike overlayfs. */
	if (lfs.opts->writeback && !lfs.stack.read_only && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	lfs.writeback = (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0;
	passthrough_init();
	conn->time_gran = 1;
}

/* Known inodes keep an fd per copy while they are in use; half of what
 * we may open goes to them, the rest to open files and the layers. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	long room = (long)rl.rlim_cur - 2L * lfs.stack.nlayers - 64;
	/* LAYERFS_FD_BUDGET: a smaller budget, for tests of the reload path */
	const char *env = getenv("LAYERFS_FD_BUDGET");
	inode_set_fd_budget(env ? atol(env) : room / 2);
}

static unsigned long layer_name_max(void)
{
	struct statvfs sv;
	char p[32];
	snprintf(p, sizeof p, "/proc/self/fd/%d", lfs.stack.layers[0].root_fd);
	if (statvfs(p, &sv) == 0 && sv.f_namemax > 0 && sv.f_namemax < 255)
		return sv.f_namemax;
	return 255;
}

static void add_opt(struct fuse_args *args, const char *opt)
{
	fuse_opt_add_arg(args, "-o");
	fuse_opt_add_arg(args, opt);
}

static void build_fuse_args(struct fuse_args *args, const struct lfs_options *o)
{
	bool privileged = geteuid() == 0;
	fuse_opt_add_arg(args, "layerfs");
	add_opt(args, "fsname=layerfs,subtype=layerfs");
	if (o->debug)
		fuse_opt_add_arg(args, "-d");
	if (o->allow_other == 1 || (o->allow_other == -1 && privileged))
		add_opt(args, "allow_other");
	if (o->default_permissions == 1 || (o->default_permissions == -1 && privileged)) {
		add_opt(args, "default_permissions");
		lfs.posix_acl = true;
	}
	/* a container root needs set-id programs and device nodes to work */
	if (o->nosuid)
		add_opt(args, "nosuid");
	else if (o->suid || privileged)
		add_opt(args, "suid");
	if (o->nodev)
		add_opt(args, "nodev");
	else if (o->dev || privileged)
		add_opt(args, "dev");
	if (o->read_only)
		add_opt(args, "ro");
}

int lfs_run(struct lfs_options *o)
{
	char err[1024];
	struct fuse_lowlevel_ops ops;
	int rc = 1;

	memset(&lfs, 0, sizeof lfs);
	lfs.opts = o;
	if (stack_open(&lfs.stack, o, err, sizeof err)) {
		fprintf(stderr, "layerfs: %s\n", err);
		return 1;
	}
	if (ids_init(err, sizeof err)) {
		fprintf(stderr, "layerfs: %s\n", err);
		stack_close(&lfs.stack);
		return 1;
	}
	for (size_t k = 0; k < o->nwarnings; k++)
		fprintf(stderr, "layerfs: warning: %s\n", o->warnings[k]);
	raise_fd_limit();
	umask(0); /* the kernel has applied the caller's umask already */
	lfs.timeout = 86400.0; /* only layerfs changes the tree */
	lfs.name_max = layer_name_max();
	lfs.can_switch_creds = geteuid() == 0;
	inode_table_init();
	lfs.root = make_root_inode();

	memset(&ops, 0, sizeof ops);
	ops.init = op_init;
	inode_ops_register(&ops);
	dir_ops_register(&ops);
	readdir_ops_register(&ops);
	file_ops_register(&ops);
	xattr_ops_register(&ops);

	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	build_fuse_args(&args, o);
	lfs.se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	fuse_opt_free_args(&args);
	if (!lfs.se) {
		fprintf(stderr, "layerfs: cannot start a FUSE session\n");
		goto out_stack;
	}
	if (fuse_set_signal_handlers(lfs.se) != 0) {
		fprintf(stderr, "layerfs: cannot install signal handlers\n");
		goto out_session;
	}
	if (fuse_session_mount(lfs.se, o->mountpoint) != 0) {
		fprintf(stderr, "layerfs: cannot mount on '%s' (is /dev/fuse there and usable?)\n",
			o->mountpoint);
		goto out_signals;
	}
	passthrough_attach(lfs.se);
	/* The mount is live now: the caller may go on.  fuse_daemonize()
	 * points stdin/stdout/stderr at /dev/null, so whoever waits for EOF
	 * on our stderr gets it. */
	if (fuse_daemonize(o->foreground) != 0) {
		fuse_session_unmount(lfs.se);
		goto out_signals;
	}
	rc = lfs_loop(lfs.se, o->threads ? o->threads : 16, o->spin_us) < 0;
	fuse_session_unmount(lfs.se);
out_signals:
	fuse_remove_signal_handlers(lfs.se);
out_session:
	fuse_session_destroy(lfs.se);
out_stack:
	stack_close(&lfs.stack);
	return rc;
}
