/* backend.c - the layer stack on the supervisor's private directory:
 * kernel overlay through the new mount API (one `lowerdir+` per layer, so
 * no path needs escaping; `userxattr` in a user namespace), or the layerfs
 * daemon, started as `layerfs mount` from our own executable so that it
 * returns once the mount is live; the daemon then is an orphan of the
 * supervisor (pid 1 of its namespace).  Also the way down: unmount, let
 * the daemon finish, kill it if it does not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

/* The kernel's messages about a failed fsconfig, joined into why. */
static void fs_log(int fs, char *why, size_t len)
{
	char buf[512];
	ssize_t n;
	size_t used = strlen(why);
	while ((n = read(fs, buf, sizeof buf - 1)) > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		const char *msg = n > 2 && buf[1] == ' ' ? buf + 2 : buf;
		used += (size_t)snprintf(why + used, used < len ? len - used : 0, "%s%s", used ? "; " : "", msg);
		if (used >= len)
			break;
	}
}

static int kernel_mount(struct run_opts *o, char *why, size_t len)
{
	why[0] = '\0';
	int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0) {
		snprintf(why, len, "fsopen(overlay): %s", strerror(errno));
		return -1;
	}
	int rc = -1;
	for (size_t k = 0; k < o->nlowers; k++) {
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", o->lowers[k], 0) == 0)
			continue;
		if (k == 0 && errno == EINVAL) {
			/* before Linux 6.8: one escaped list, as the daemon takes it */
			fs_log(fs, why, len);
			why[0] = '\0';
			if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", o->lower_spec, 0) == 0)
				break;
		}
		int e = errno;
		fs_log(fs, why, len);
		if (!why[0])
			snprintf(why, len, "lowerdir '%s': %s", o->lowers[k], strerror(e));
		goto out;
	}
	if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", o->upper, 0) ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "workdir", o->work, 0) ||
	    (o->userns && fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0)) ||
	    (o->throwaway && fsconfig(fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0)) ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0)) {
		int e = errno;
		fs_log(fs, why, len);
		if (!why[0])
			snprintf(why, len, "%s", strerror(e));
		goto out;
	}
	int mfd = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0) {
		snprintf(why, len, "fsmount: %s", strerror(errno));
		goto out;
	}
	if (move_mount(mfd, "", AT_FDCWD, o->root, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
		snprintf(why, len, "move_mount to '%s': %s", o->root, strerror(errno));
		close(mfd);
		goto out;
	}
	close(mfd);
	rc = 0;
out:
	close(fs);
	return rc;
}

/* /dev/fuse usable by us?  Say how to fix it when not. */
static int check_dev_fuse(const struct run_opts *o, const char *kernel_why)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	int e = errno;
	char also[700] = "";
	if (kernel_why)
		snprintf(also, sizeof also, "; kernel overlay did not mount either (%s)", kernel_why);
	if (e == ENOENT || e == ENODEV || e == ENXIO)
		run_err("/dev/fuse is missing: %s (load the module: modprobe fuse; in a container, pass "
			"the device in%s)%s", strerror(e), o->backend == BACKEND_FUSE ? ", or use --backend kernel" : "",
			also);
	else if (e == EACCES || e == EPERM)
		run_err("/dev/fuse is not accessible to uid %u: %s (as root: chmod 0666 /dev/fuse, the mode "
			"most distributions ship%s)%s", (unsigned)o->outer_uid, strerror(e),
			o->backend == BACKEND_FUSE ? ", or use --backend kernel" : "", also);
	else
		run_err("cannot open /dev/fuse: %s%s", strerror(e), also);
	return -1;
}

static int fuse_mount(struct run_opts *o)
{
	pid_t p = fork();
	if (p < 0) {
		run_err("fork: %s", strerror(errno));
		return -1;
	}
	if (p == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close_fds_from(3);
		char *argv[12];
		int n = 0;
		argv[n++] = "layerfs";
		argv[n++] = "mount";
		argv[n++] = o->lower_spec;
		argv[n++] = o->upper;
		argv[n++] = o->root;
		argv[n++] = "--workdir";
		argv[n++] = o->work;
		if (o->throwaway)
			argv[n++] = "--volatile";
		argv[n] = NULL;
		execv("/proc/self/exe", argv);
		run_err("cannot start the layerfs daemon: %s", strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	/* the daemon said why on stderr */
	run_err("the layerfs mount of the stack failed (%s %d)", WIFEXITED(st) ? "exit status" : "signal",
		WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return -1;
}

int stack_mount(struct run_opts *o, struct mounted_stack *m)
{
	char why[1024] = "";
	m->kernel = false;
	if (o->backend != BACKEND_FUSE) {
		if (kernel_mount(o, why, sizeof why) == 0) {
			m->kernel = true;
			run_note(o, "backend: kernel overlay%s", o->userns ? " (userxattr)" : "");
			return 0;
		}
		if (o->backend == BACKEND_KERNEL) {
			run_err("kernel overlay does not mount here: %s (try --backend fuse)", why);
			return -1;
		}
		run_note(o, "kernel overlay does not mount: %s", why);
	}
	if (check_dev_fuse(o, o->backend == BACKEND_AUTO ? why : NULL))
		return -1;
	if (fuse_mount(o))
		return -1;
	run_note(o, "backend: layerfs (FUSE)");
	return 0;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Reaps what is left (the daemon) for up to ms milliseconds; sfd is the
 * supervisor's signalfd for SIGCHLD.  True when nothing is left. */
static bool reap_all(int sfd, double ms)
{
	double end = now_ms() + ms;
	for (;;) {
		pid_t p;
		while ((p = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (p < 0 && errno == ECHILD)
			return true;
		double left = end - now_ms();
		if (left <= 0)
			return false;
		struct pollfd pfd = { .fd = sfd, .events = POLLIN };
		if (poll(&pfd, 1, (int)left + 1) > 0) {
			char buf[128 * 8];
			(void)!read(sfd, buf, sizeof buf);
		}
	}
}

void stack_unmount(struct run_opts *o, struct mounted_stack *m, int sfd)
{
	if (o->throwaway && !o->keep && !m->kernel) {
		/* nothing of a throw-away upper is kept: no need to let the
		 * daemon finish (we are pid 1, kill(-1) is the daemon alone now
		 * that the container is gone) */
		kill(-1, SIGKILL);
		(void)umount2(o->root, MNT_DETACH);
		reap_all(sfd, 2000);
		return;
	}
	if (umount2(o->root, 0) != 0 && errno != EINVAL && umount2(o->root, MNT_DETACH) != 0 && errno != EINVAL)
		run_err("cannot unmount '%s': %s", o->root, strerror(errno));
	if (m->kernel)
		return;
	/* a FUSE daemon sees the unmount and exits; one that hangs is
	 * asked, then made to */
	if (reap_all(sfd, 5000))
		return;
	kill(-1, SIGTERM);
	if (reap_all(sfd, 2000))
		return;
	kill(-1, SIGKILL);
	reap_all(sfd, 2000);
}
