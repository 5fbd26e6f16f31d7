/* super.c - the supervisor: pid 1 of a pid namespace of its own, in the
 * run's user and mount namespaces.  Mounts the stack, starts the
 * container's init in the nested namespaces, passes the launcher's
 * signals on, notices the daemon dying, and takes everything down when
 * the container ends.  Its exit status is the launcher's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

static int status_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void remove_throwaway(struct run_opts *o)
{
	if (!o->throwaway || o->keep)
		return;
	int fd = open(o->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	/* here, as root of the user namespace, files the container made as
	 * any mapped id can go */
	int a = remove_tree_at(fd, "upper"), b = remove_tree_at(fd, "work");
	if ((a && a != -ENOENT) || (b && b != -ENOENT))
		run_err("could not remove all of the throw-away upper in '%s'", o->tmp);
	close(fd);
}

int supervisor_main(struct run_opts *o)
{
	/* nothing we mount goes back to the caller's namespace */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		run_err("cannot make the mounts private: %s", strerror(errno));
		return RUN_EXIT_ERROR;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (const int *s = run_forwarded_signals; *s; s++)
		sigaddset(&set, *s);
	sigaddset(&set, RUN_SIG_ORPHANED);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		run_err("signalfd: %s", strerror(errno));
		return RUN_EXIT_ERROR;
	}

	struct mounted_stack m;
	if (stack_mount(o, &m) != 0) {
		remove_throwaway(o);
		return RUN_EXIT_ERROR;
	}
	run_note(o, "stack mounted on %s", o->root);

	unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
	if (!o->net_host)
		flags |= CLONE_NEWNET;
	pid_t init = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (init < 0) {
		run_err("cannot create the container's namespaces: %s", strerror(errno));
		stack_unmount(o, &m, sfd);
		remove_throwaway(o);
		return RUN_EXIT_ERROR;
	}
	if (init == 0) {
		close(sfd);
		init_main(o);
	}

	int code = -1, terms = 0;
	bool daemon_dead = false, orphaned = false;
	while (code < 0) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof si);
		if (n != sizeof si) {
			if (n < 0 && errno == EINTR)
				continue;
			/* cannot happen; if it does, end the run rather than spin */
			run_err("signalfd read: %s", strerror(errno));
			kill(init, SIGKILL);
			int st;
			while (waitpid(init, &st, 0) < 0 && errno == EINTR)
				;
			code = status_code(st);
			break;
		}
		if (si.ssi_signo == SIGCHLD) {
			int st;
			pid_t p;
			while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
				if (p == init) {
					code = status_code(st);
				} else if (!m.kernel && !daemon_dead) {
					/* our only other child is the daemon */
					daemon_dead = true;
					run_err("the layerfs daemon died (%s %d): the container's root is gone",
						WIFEXITED(st) ? "exit status" : "signal",
						WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
				}
			}
			continue;
		}
		if ((int)si.ssi_signo == RUN_SIG_ORPHANED) {
			/* the launcher was killed: nobody waits for the command any
			 * more; stop it and clean up what the launcher would have */
			run_err("the launcher died: stopping the container");
			orphaned = true;
			kill(init, SIGKILL);
			continue;
		}
		if (si.ssi_code == SI_KERNEL)
			continue; /* from the terminal: the command got it too */
		kill(init, (int)si.ssi_signo);
		/* a second SIGINT/SIGTERM: the command had its chance */
		if ((si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) && ++terms >= 2) {
			run_note(o, "second termination signal: killing the container");
			kill(init, SIGKILL);
		}
	}
	run_note(o, "container ended, status %d", code);
	stack_unmount(o, &m, sfd);
	remove_throwaway(o);
	run_note(o, "stack unmounted");
	close(sfd);
	if (orphaned && !o->keep) {
		(void)rmdir(o->root);
		(void)rmdir(o->tmp);
	}
	if (daemon_dead && code == 0)
		code = 1;
	return code;
}
