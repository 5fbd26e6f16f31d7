/* init.c - the container's pid 1: sets up the namespaces it was born in
 * (host name, loopback, the root file system, the security limits), runs
 * the command as its child, passes signals on to it, reaps every orphan,
 * and exits with the command's status (128+N for signal N) once the
 * command is gone; the kernel then kills whatever else is left in the
 * pid namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The GID of UID in the image's /etc/passwd (we are inside the new root
 * by now), 0 when it has none. */
static gid_t passwd_gid(uid_t uid)
{
	FILE *f = fopen("/etc/passwd", "re");
	gid_t gid = 0;
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		char *save, *f0 = strtok_r(line, ":", &save);
		char *f1 = f0 ? strtok_r(NULL, ":", &save) : NULL;
		char *f2 = f1 ? strtok_r(NULL, ":", &save) : NULL;
		char *f3 = f2 ? strtok_r(NULL, ":", &save) : NULL;
		if (f3 && strtoul(f2, NULL, 10) == uid) {
			gid = (gid_t)strtoul(f3, NULL, 10);
			break;
		}
	}
	free(line);
	fclose(f);
	return gid;
}

static void set_env(struct run_opts *o)
{
	const char *term = getenv("TERM");
	char *t = term ? strdup(term) : NULL;
	clearenv();
	setenv("PATH", DEFAULT_PATH, 1);
	if (t)
		setenv("TERM", t, 1);
	free(t);
	for (size_t k = 0; k < o->nenv; k++)
		putenv(o->env[k]);
}

/* In the command's process, after fork: never returns. */
static void exec_command(struct run_opts *o, const sigset_t *old)
{
	/* a fresh process: default dispositions, nothing blocked */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, old, NULL);
	set_env(o);
	if (o->user_set) {
		gid_t gid = o->gid_set ? o->gid : passwd_gid(o->uid);
		if (setgroups(1, &gid) != 0 && errno != EPERM) {
			run_err("setgroups(%u): %s", (unsigned)gid, strerror(errno));
			_exit(RUN_EXIT_ERROR);
		}
		if (setresgid(gid, gid, gid) != 0 || setresuid(o->uid, o->uid, o->uid) != 0) {
			int e = errno;
			run_err("cannot switch to uid %u gid %u: %s%s", (unsigned)o->uid, (unsigned)gid, strerror(e),
				e == EINVAL ? " (not mapped in the user namespace: use --subids)" : "");
			_exit(RUN_EXIT_ERROR);
		}
	} else {
		(void)setgroups(0, NULL); /* EPERM where setgroups is denied: nothing to drop */
	}
	const char *cwd = o->cwd ? o->cwd : "/";
	if (chdir(cwd) != 0) {
		run_err("--cwd '%s': %s", cwd, strerror(errno));
		_exit(RUN_EXIT_ERROR);
	}
	close_fds_from(3);
	execvp(o->argv[0], o->argv);
	int e = errno;
	if (e == ENOENT)
		run_err("'%s': command not found in the image (PATH=%s)", o->argv[0],
			strchr(o->argv[0], '/') ? "not used" : getenv("PATH"));
	else
		run_err("cannot run '%s': %s", o->argv[0], strerror(e));
	_exit(e == ENOENT ? RUN_EXIT_NOT_FOUND : RUN_EXIT_CANNOT_EXEC);
}

void init_main(struct run_opts *o)
{
	/* held from the start: as pid 1 without handlers we would lose the
	 * signals the supervisor passes on before the command runs */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	/* the supervisor going away takes the container with it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close_fds_from(3);
	if (o->hostname && sethostname(o->hostname, strlen(o->hostname)) != 0) {
		run_err("--hostname '%s': %s", o->hostname, strerror(errno));
		_exit(RUN_EXIT_ERROR);
	}
	if (!o->net_host && net_loopback_up() != 0)
		_exit(RUN_EXIT_ERROR);
	if (rootfs_setup(o) != 0)
		_exit(RUN_EXIT_ERROR);
	if (caps_restrict() != 0)
		_exit(RUN_EXIT_ERROR);
	/* not ptrace-able, and its /proc entries not the container's to read */
	prctl(PR_SET_DUMPABLE, 0);
	run_note(o, "container ready, running '%s'", o->argv[0]);

	sigemptyset(&old); /* the command starts with nothing blocked */
	pid_t cmd = fork();
	if (cmd < 0) {
		run_err("fork: %s", strerror(errno));
		_exit(RUN_EXIT_ERROR);
	}
	if (cmd == 0)
		exec_command(o, &old);

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			int st;
			pid_t p;
			while ((p = waitpid(-1, &st, WNOHANG)) > 0)
				if (p == cmd)
					_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			continue;
		}
		/* from the terminal: it went to the command's group too */
		if (si.si_code == SI_KERNEL)
			continue;
		if (sig == SIGTTIN || sig == SIGTTOU || sig == SIGTSTP)
			continue;
		kill(cmd, sig);
	}
}
