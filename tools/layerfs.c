/* layerfs.c - main(): parse the command line, then mount, unmount, or
 * print help/version; `layerfs run` goes to the launcher (tools/run/). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../fs/fs.h"
#include "../layers/options.h"
#include "run/run_main.h"

#ifndef LAYERFS_VERSION
#define LAYERFS_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: layerfs mount LOWER1[:LOWER2...] UPPER MERGED [--workdir DIR] [options]\n"
		"       layerfs mount LOWER1[:LOWER2...] MERGED --read-only [options]\n"
		"       layerfs [-f] [-d] -o lowerdir=L1:L2[,upperdir=U,workdir=W][,opt...] MERGED\n"
		"       layerfs umount MERGED\n"
		"       layerfs run [options] LOWER1[:LOWER2...] [UPPER] -- COMMAND [ARG...]\n"
		"                             (see layerfs run --help)\n"
		"\n"
		"The leftmost lower is the top layer. Write '\\:' for a colon inside a path.\n"
		"\n"
		"options:\n"
		"  --workdir DIR         staging directory on the upper's filesystem; default:\n"
		"                        UPPER/../.layerfs-work.<name of UPPER>, created when needed\n"
		"  -r, --read-only       no upper: a read-only stack of lowers\n"
		"  -f, --foreground      stay in the foreground\n"
		"  -d, --debug           log every request to stderr (implies -f)\n"
		"  --volatile            do not fsync (as -o volatile)\n"
		"  -o OPT[,OPT...]       lowerdir=, upperdir=, workdir=, ro, volatile, userxattr,\n"
		"                        redirect_dir=on|off, xattr_namespace=trusted|user, writeback,\n"
		"                        nopassthrough, allow_other, default_permissions, suid, nosuid, dev,\n"
		"                        nodev, threads=N, spin=USEC; unknown options are ignored\n"
		"                        with a warning\n"
		"  -o uidmapping=C:H:L[:C:H:L...], gidmapping=...\n"
		"                        ids C..C+L-1 stored in the layers are shown as H..H+L-1,\n"
		"                        others as the overflow id (containers-storage's mapping)\n"
		"  -o squash_to_uid=N, squash_to_gid=N, squash_to_root\n"
		"                        show every file as owned by N (or by 0:0)\n"
		"  -o xattr_permissions=0|1|2\n"
		"                        keep owners and modes in security.* (1) or user.* (2)\n"
		"                        fuseoverlayfs.override_stat xattrs, as fuse-overlayfs\n"
		"  -V, --version         print the version\n"
		"  -h, --help            this text\n"
		"\n"
		"As root, allow_other,default_permissions,suid,dev are on by default.\n"
		"mount -t fuse.layerfs and fstab lines work through mount.fuse3; see layerfs(1),\n"
		"and layerfs(5) for the on-disk format.\n");
}

static int do_umount(const char *mountpoint)
{
	if (umount2(mountpoint, 0) == 0)
		return 0;
	if (errno == EPERM) {
		/* not privileged: the setuid helper unmounts user mounts */
		pid_t pid = fork();
		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-u", "--", mountpoint, (char *)NULL);
			_exit(127);
		}
		int status;
		if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return 0;
		fprintf(stderr, "layerfs: cannot unmount '%s'\n", mountpoint);
		return 1;
	}
	if (errno == EINVAL)
		fprintf(stderr, "layerfs: '%s' is not a mountpoint\n", mountpoint);
	else
		fprintf(stderr, "layerfs: cannot unmount '%s': %s\n", mountpoint, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	struct lfs_options o;
	char err[1024];

	/* its own command line, not the mount one */
	if (argc > 1 && strcmp(argv[1], "run") == 0)
		return lfs_run_main(argc - 1, argv + 1);
	if (lfs_parse_args(argc, argv, &o, err, sizeof err)) {
		fprintf(stderr, "layerfs: %s\n", err);
		lfs_options_free(&o);
		return 2;
	}
	int rc = 0;
	switch (o.command) {
	case LFS_CMD_HELP:
		usage(stdout);
		break;
	case LFS_CMD_VERSION:
		printf("layerfs %s (libfuse %d)\n", LAYERFS_VERSION, fuse_version());
		break;
	case LFS_CMD_UMOUNT:
		rc = do_umount(o.mountpoint);
		break;
	case LFS_CMD_MOUNT:
		rc = lfs_run(&o);
		break;
	}
	lfs_options_free(&o);
	return rc;
}
