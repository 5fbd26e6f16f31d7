/* ns.c - the supervisor's namespaces: one clone() makes the user (when
 * asked for), mount and pid namespaces; the launcher, still outside,
 * writes the id maps (itself for --map-root, newuidmap/newgidmap for
 * --subids) and only then lets the supervisor go on.  Also reads the
 * caller's ranges from /etc/subuid and /etc/subgid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

/* The first NAME:START:COUNT line for the user (by name or number). */
int subids_lookup(uid_t uid, const char *file, struct id_range *r)
{
	struct passwd *pw = getpwuid(uid);
	char num[32];
	snprintf(num, sizeof num, "%u", (unsigned)uid);
	FILE *f = fopen(file, "re");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int rc = -1;
	while (getline(&line, &cap, f) > 0) {
		char *save, *name = strtok_r(line, ":\n", &save);
		char *start = strtok_r(NULL, ":\n", &save), *count = strtok_r(NULL, ":\n", &save);
		if (!name || !start || !count)
			continue;
		if (strcmp(name, num) != 0 && !(pw && strcmp(name, pw->pw_name) == 0))
			continue;
		char *e1, *e2;
		unsigned long s = strtoul(start, &e1, 10), c = strtoul(count, &e2, 10);
		if (*e1 || *e2 || c == 0)
			continue;
		r->start = s;
		r->count = c;
		rc = 0;
		break;
	}
	free(line);
	fclose(f);
	return rc;
}

static int write_file(pid_t pid, const char *name, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		run_err("cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* newuidmap PID 0 OUTER 1 1 START COUNT (and newgidmap): both at once. */
static int run_newidmaps(struct run_opts *o, pid_t pid)
{
	const char *tool[2] = { "newuidmap", "newgidmap" };
	unsigned long outer[2] = { o->outer_uid, o->outer_gid };
	struct id_range *r[2] = { &o->subuid, &o->subgid };
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		char a[6][24];
		snprintf(a[0], sizeof a[0], "%d", (int)pid);
		snprintf(a[1], sizeof a[1], "%lu", outer[k]);
		snprintf(a[2], sizeof a[2], "%lu", r[k]->start);
		snprintf(a[3], sizeof a[3], "%lu", r[k]->count);
		kids[k] = fork();
		if (kids[k] == 0) {
			execlp(tool[k], tool[k], a[0], "0", a[1], "1", "1", a[2], a[3], (char *)NULL);
			run_err("cannot run %s: %s%s", tool[k], strerror(errno),
				errno == ENOENT ? " (install the uidmap package, or use --map-root)" : "");
			_exit(127);
		}
	}
	int rc = 0;
	for (int k = 0; k < 2; k++) {
		int st;
		if (kids[k] < 0 || waitpid(kids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (kids[k] > 0 && WIFEXITED(st) && WEXITSTATUS(st) != 127)
				run_err("%s failed (are the ranges in /etc/sub%cid this user's?)", tool[k], k ? 'g' : 'u');
			rc = -1;
		}
	}
	return rc;
}

static int write_maps(struct run_opts *o, pid_t pid)
{
	char buf[128];
	if (o->idmap == IDMAP_SUBIDS && o->outer_uid != 0) {
		if (run_newidmaps(o, pid))
			return -1;
		run_note(o, "id maps: 0 -> %u, 1-%lu -> %lu-%lu (uid), gid alike from %lu", (unsigned)o->outer_uid,
			  o->subuid.count, o->subuid.start, o->subuid.start + o->subuid.count - 1, o->subgid.start);
		return 0;
	}
	if (o->idmap == IDMAP_SUBIDS) {
		/* root may write any map itself */
		snprintf(buf, sizeof buf, "0 %u 1\n1 %lu %lu\n", (unsigned)o->outer_uid, o->subuid.start, o->subuid.count);
		if (write_file(pid, "uid_map", buf))
			return -1;
		snprintf(buf, sizeof buf, "0 %u 1\n1 %lu %lu\n", (unsigned)o->outer_gid, o->subgid.start, o->subgid.count);
		return write_file(pid, "gid_map", buf);
	}
	/* only the caller: an unprivileged process may map its own ids, and
	 * its gid only once setgroups is denied */
	if (write_file(pid, "setgroups", "deny"))
		return -1;
	snprintf(buf, sizeof buf, "0 %u 1\n", (unsigned)o->outer_uid);
	if (write_file(pid, "uid_map", buf))
		return -1;
	snprintf(buf, sizeof buf, "0 %u 1\n", (unsigned)o->outer_gid);
	if (write_file(pid, "gid_map", buf))
		return -1;
	run_note(o, "id maps: 0 -> %u (uid), 0 -> %u (gid), nothing else", (unsigned)o->outer_uid,
		  (unsigned)o->outer_gid);
	return 0;
}

static void explain_clone_error(const struct run_opts *o, int err)
{
	if (!o->userns) {
		run_err("cannot create the mount and pid namespaces: %s", strerror(err));
		return;
	}
	char val[32] = "";
	FILE *f = fopen("/proc/sys/user/max_user_namespaces", "re");
	if (f) {
		if (!fgets(val, sizeof val, f))
			val[0] = '\0';
		fclose(f);
		val[strcspn(val, "\n")] = '\0';
	}
	if (err == ENOSPC && strcmp(val, "0") == 0)
		run_err("cannot create a user namespace: user namespaces are disabled here "
			"(sysctl user.max_user_namespaces is 0; as root: sysctl -w user.max_user_namespaces=15000)");
	else if (err == ENOSPC)
		run_err("cannot create a user namespace: %s (the limit user.max_user_namespaces=%s is reached)",
			strerror(err), val);
	else if (err == EPERM)
		run_err("cannot create a user namespace: %s (unprivileged user namespaces are not allowed "
			"here: see sysctl kernel.unprivileged_userns_clone and "
			"kernel.apparmor_restrict_unprivileged_userns, or run as root)", strerror(err));
	else if (err == EINVAL)
		run_err("cannot create a user namespace: this kernel has no user namespaces (CONFIG_USER_NS)");
	else
		run_err("cannot create a user namespace: %s", strerror(err));
}

pid_t ns_spawn_supervisor(struct run_opts *o, int (*fn)(struct run_opts *))
{
	int go[2];
	if (pipe2(go, O_CLOEXEC) != 0) {
		run_err("pipe: %s", strerror(errno));
		return -1;
	}
	unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | SIGCHLD;
	if (o->userns)
		flags |= CLONE_NEWUSER;
	/* the raw system call: fork() semantics with the namespace flags */
	pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		explain_clone_error(o, errno);
		close(go[0]);
		close(go[1]);
		return -1;
	}
	if (pid == 0) {
		close(go[1]);
		/* the launcher going away (even by SIGKILL) ends the run; the
		 * signal is held until the supervisor reads it */
		sigset_t orphan;
		sigemptyset(&orphan);
		sigaddset(&orphan, RUN_SIG_ORPHANED);
		sigprocmask(SIG_BLOCK, &orphan, NULL);
		prctl(PR_SET_PDEATHSIG, RUN_SIG_ORPHANED);
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(RUN_EXIT_ERROR); /* the launcher failed or died */
		close(go[0]);
		if (o->userns && o->idmap == IDMAP_SUBIDS)
			(void)setgroups(0, NULL); /* the caller's groups are not mapped */
		_exit(fn(o));
	}
	close(go[0]);
	if (o->userns && write_maps(o, pid) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(go[1]);
		return -1;
	}
	if (write(go[1], "g", 1) != 1) {
		run_err("cannot start the supervisor: %s", strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(go[1]);
		return -1;
	}
	close(go[1]);
	return pid;
}
