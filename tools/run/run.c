/* run.c - `layerfs run`: the command line, the launcher's own work (temp
 * dir, paths, which id mapping), and waiting for the supervisor while
 * passing signals on to it.  See run.h for the process layout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../layers/options.h"
#include "../../layers/stack.h"
#include "run.h"
#include "run_main.h"

void run_err(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	/* one write, so lines from the processes of a run do not mix */
	dprintf(2, "layerfs run: %s\n", buf);
}

static struct timespec t_start;

void run_note(const struct run_opts *o, const char *fmt, ...)
{
	if (!o->verbose)
		return;
	char buf[2048];
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double ms = (double)(now.tv_sec - t_start.tv_sec) * 1e3 + (double)(now.tv_nsec - t_start.tv_nsec) / 1e6;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	dprintf(2, "layerfs run: [%7.2f ms] %s\n", ms, buf);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: layerfs run [options] LOWER1[:LOWER2...] [UPPER] -- COMMAND [ARG...]\n"
		"\n"
		"Runs COMMAND in a container whose root is the layer stack (the leftmost\n"
		"lower on top; '\\:' is a colon inside a path). Without UPPER, writes go to a\n"
		"throw-away upper that is removed at exit.\n"
		"\n"
		"options:\n"
		"  --hostname NAME        host name inside (default: the host's)\n"
		"  --net none|host        none (default): own network namespace, only\n"
		"                         loopback, up; host: the host's network\n"
		"  --bind SRC:DST[:ro]    bind-mount host path SRC on DST inside\n"
		"  --tmpfs DST            a fresh tmpfs on DST inside\n"
		"  --env K=V              set K inside; --env K passes the caller's K\n"
		"  --cwd DIR              working directory inside (default /)\n"
		"  --user UID[:GID]       run COMMAND as UID (and GID) inside (default 0;\n"
		"                         GID from the image's /etc/passwd, else 0)\n"
		"  --map-root             user namespace: only the caller, mapped to 0\n"
		"  --subids               user namespace: the caller at 0 and its ranges from\n"
		"                         /etc/subuid and /etc/subgid above (newuidmap);\n"
		"                         the default for a non-root caller with an entry\n"
		"  --backend auto|fuse|kernel\n"
		"                         fuse: layerfs; kernel: kernel overlay; auto\n"
		"                         (default): kernel overlay when it mounts here,\n"
		"                         else layerfs\n"
		"  --keep                 keep the throw-away upper (its path is printed)\n"
		"  -v, --verbose          say what is set up, with times\n"
		"  -h, --help             this text\n"
		"\n"
		"A non-root caller always gets a user namespace (--subids when it has\n"
		"subordinate ids, else --map-root); root gets one only when asked. Namespaces:\n"
		"user, mount, pid, uts, ipc, and net unless --net host. The environment is\n"
		"cleared but for PATH, TERM and --env.\n"
		"\n"
		"Exit status: the command's, 128+N when it was killed by signal N; 125 when\n"
		"the launcher fails, 126 when COMMAND cannot be run, 127 when it is not found.\n");
}

enum {
	OPT_HOSTNAME = 256, OPT_NET, OPT_BIND, OPT_TMPFS, OPT_ENV, OPT_CWD, OPT_USER,
	OPT_MAP_ROOT, OPT_SUBIDS, OPT_BACKEND, OPT_KEEP,
};

static const struct option long_opts[] = {
	{ "hostname", required_argument, NULL, OPT_HOSTNAME },
	{ "net", required_argument, NULL, OPT_NET },
	{ "bind", required_argument, NULL, OPT_BIND },
	{ "tmpfs", required_argument, NULL, OPT_TMPFS },
	{ "env", required_argument, NULL, OPT_ENV },
	{ "cwd", required_argument, NULL, OPT_CWD },
	{ "user", required_argument, NULL, OPT_USER },
	{ "map-root", no_argument, NULL, OPT_MAP_ROOT },
	{ "subids", no_argument, NULL, OPT_SUBIDS },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "keep", no_argument, NULL, OPT_KEEP },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static bool parse_id(const char *s, unsigned long *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v >= 0xffffffffUL)
		return false;
	*out = v;
	return true;
}

static int add_bind(struct run_opts *o, const char *arg, bool tmpfs)
{
	struct run_bind b = { 0 };
	char *s = strdup(arg);
	if (tmpfs) {
		b.dst = s;
	} else {
		char *c = strchr(s, ':');
		if (!c || c == s || !c[1]) {
			run_err("--bind '%s': expected SRC:DST[:ro]", arg);
			free(s);
			return -1;
		}
		*c = '\0';
		char *d = c + 1, *m = strchr(d, ':');
		if (m) {
			*m = '\0';
			if (strcmp(m + 1, "ro") == 0)
				b.ro = true;
			else if (strcmp(m + 1, "rw") != 0) {
				run_err("--bind '%s': unknown mode '%s' (ro or rw)", arg, m + 1);
				free(s);
				return -1;
			}
		}
		b.src = realpath(s, NULL);
		if (!b.src) {
			run_err("--bind: source '%s': %s", s, strerror(errno));
			free(s);
			return -1;
		}
		b.dst = strdup(d);
		free(s);
	}
	b.tmpfs = tmpfs;
	if (b.dst[0] != '/') {
		run_err("--%s: '%s' is not an absolute path inside the container", tmpfs ? "tmpfs" : "bind", b.dst);
		free(b.src);
		free(b.dst);
		return -1;
	}
	o->binds = realloc(o->binds, (o->nbinds + 1) * sizeof *o->binds);
	o->binds[o->nbinds++] = b;
	return 0;
}

static int add_env(struct run_opts *o, const char *arg)
{
	char *kv;
	if (!arg[0] || arg[0] == '=') {
		run_err("--env '%s': expected K=V or K", arg);
		return -1;
	}
	if (strchr(arg, '=')) {
		kv = strdup(arg);
	} else {
		const char *v = getenv(arg);
		if (!v)
			return 0; /* as podman: an unset variable is not passed */
		if (asprintf(&kv, "%s=%s", arg, v) < 0)
			return -1;
	}
	o->env = realloc(o->env, (o->nenv + 1) * sizeof *o->env);
	o->env[o->nenv++] = kv;
	return 0;
}

/* Returns 0, or 1 for --help, or -1 after a message. */
static int parse_args(int argc, char **argv, struct run_opts *o)
{
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_HOSTNAME:
			if (!optarg[0] || strlen(optarg) > 64) {
				run_err("--hostname '%s': 1 to 64 characters", optarg);
				return -1;
			}
			o->hostname = optarg;
			break;
		case OPT_NET:
			if (strcmp(optarg, "none") == 0)
				o->net_host = false;
			else if (strcmp(optarg, "host") == 0)
				o->net_host = true;
			else {
				run_err("--net '%s': none or host", optarg);
				return -1;
			}
			break;
		case OPT_BIND:
		case OPT_TMPFS:
			if (add_bind(o, optarg, c == OPT_TMPFS))
				return -1;
			break;
		case OPT_ENV:
			if (add_env(o, optarg))
				return -1;
			break;
		case OPT_CWD:
			if (optarg[0] != '/') {
				run_err("--cwd '%s': not an absolute path", optarg);
				return -1;
			}
			o->cwd = optarg;
			break;
		case OPT_USER: {
			char *s = strdup(optarg), *colon = strchr(s, ':');
			unsigned long u, g = 0;
			if (colon)
				*colon = '\0';
			bool ok = parse_id(s, &u) && (!colon || parse_id(colon + 1, &g));
			free(s);
			if (!ok) {
				run_err("--user '%s': expected numeric UID[:GID]", optarg);
				return -1;
			}
			o->user_set = true;
			o->uid = (uid_t)u;
			o->gid = (gid_t)g;
			o->gid_set = colon != NULL;
			break;
		}
		case OPT_MAP_ROOT:
		case OPT_SUBIDS: {
			enum run_idmap m = c == OPT_MAP_ROOT ? IDMAP_ROOT : IDMAP_SUBIDS;
			if (o->idmap_asked && o->idmap != m) {
				run_err("--map-root and --subids exclude each other");
				return -1;
			}
			o->idmap = m;
			o->idmap_asked = true;
			break;
		}
		case OPT_BACKEND:
			if (strcmp(optarg, "auto") == 0)
				o->backend = BACKEND_AUTO;
			else if (strcmp(optarg, "fuse") == 0)
				o->backend = BACKEND_FUSE;
			else if (strcmp(optarg, "kernel") == 0)
				o->backend = BACKEND_KERNEL;
			else {
				run_err("--backend '%s': auto, fuse or kernel", optarg);
				return -1;
			}
			break;
		case OPT_KEEP:
			o->keep = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			return 1;
		case ':':
			run_err("option '%s' needs an argument", argv[optind - 1]);
			return -1;
		default:
			if (optopt && optopt < 256)
				run_err("unknown option '-%c' (see --help)", optopt);
			else
				run_err("unknown option '%s' (see --help)", argv[optind - 1]);
			return -1;
		}
	}
	/* LOWERS [UPPER] -- COMMAND... */
	int i = optind, npos = 0;
	if (i > 1 && strcmp(argv[i - 1], "--") == 0) {
		run_err("no lower layers given before '--' (see --help)");
		return -1;
	}
	char *pos[2] = { NULL, NULL };
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (npos == 2) {
			run_err("too many arguments before '--' (LOWERS [UPPER] -- COMMAND)");
			return -1;
		}
		pos[npos++] = argv[i];
	}
	if (npos == 0) {
		run_err("no lower layers given (see --help)");
		return -1;
	}
	if (i >= argc) {
		run_err("no '--' before the command (LOWERS [UPPER] -- COMMAND)");
		return -1;
	}
	if (i + 1 >= argc) {
		run_err("no command given after '--'");
		return -1;
	}
	o->lower_spec = strdup(pos[0]);
	o->upper = pos[1] ? strdup(pos[1]) : NULL;
	o->argv = argv + i + 1;
	return 0;
}

/* '\:' and '\\' as the daemon's layer list wants them */
static char *escape_layers(char **v, size_t n)
{
	size_t len = 1;
	for (size_t k = 0; k < n; k++)
		len += 2 * strlen(v[k]) + 1;
	char *out = malloc(len), *p = out;
	for (size_t k = 0; k < n; k++) {
		if (k)
			*p++ = ':';
		for (const char *s = v[k]; *s; s++) {
			if (*s == ':' || *s == '\\')
				*p++ = '\\';
			*p++ = *s;
		}
	}
	*p = '\0';
	return out;
}

static int resolve_paths(struct run_opts *o)
{
	char err[512];
	char **raw;
	size_t n;
	if (lfs_split_layers(o->lower_spec, &raw, &n, err, sizeof err)) {
		run_err("%s", err);
		return -1;
	}
	o->lowers = calloc(n, sizeof *o->lowers);
	o->nlowers = n;
	int rc = 0;
	for (size_t k = 0; k < n; k++) {
		struct stat st;
		o->lowers[k] = realpath(raw[k], NULL);
		if (!o->lowers[k] || stat(o->lowers[k], &st) != 0) {
			run_err("lower '%s': %s", raw[k], strerror(errno));
			rc = -1;
		} else if (!S_ISDIR(st.st_mode)) {
			run_err("lower '%s': %s", raw[k], strerror(ENOTDIR));
			rc = -1;
		}
	}
	for (size_t k = 0; k < n; k++)
		free(raw[k]);
	free(raw);
	if (rc)
		return -1;
	free(o->lower_spec);
	o->lower_spec = escape_layers(o->lowers, o->nlowers);
	if (o->upper) {
		char *u = realpath(o->upper, NULL);
		struct stat st;
		if (!u || stat(u, &st) != 0 || !S_ISDIR(st.st_mode)) {
			run_err("upper '%s': %s", o->upper, u ? strerror(ENOTDIR) : strerror(errno));
			free(u);
			return -1;
		}
		free(o->upper);
		o->upper = u;
		o->work = stack_default_workdir(u);
		if (mkdir(o->work, 0700) != 0 && errno != EEXIST) {
			run_err("cannot create workdir '%s': %s", o->work, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static bool in_path(const char *name)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save, *dir;
	bool found = false;
	for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		char *p;
		if (asprintf(&p, "%s/%s", dir, name) < 0)
			break;
		found = access(p, X_OK) == 0;
		free(p);
	}
	free(copy);
	return found;
}

/* What user namespace, if any: see --help. */
static int choose_idmap(struct run_opts *o)
{
	o->outer_uid = geteuid();
	o->outer_gid = getegid();
	bool root = o->outer_uid == 0;
	o->userns = !root || o->idmap_asked;
	if (!o->userns) {
		o->idmap = IDMAP_NONE;
		return 0;
	}
	bool have = subids_lookup(o->outer_uid, "/etc/subuid", &o->subuid) == 0 &&
		    subids_lookup(o->outer_uid, "/etc/subgid", &o->subgid) == 0;
	if (o->idmap_asked && o->idmap == IDMAP_SUBIDS) {
		if (!have) {
			struct passwd *pw = getpwuid(o->outer_uid);
			run_err("no subordinate ids for %s in /etc/subuid and /etc/subgid (add a range, e.g. "
				"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s; or use --map-root)",
				pw ? pw->pw_name : "this user", pw ? pw->pw_name : "USER");
			return -1;
		}
		return 0;
	}
	if (!o->idmap_asked) {
		o->idmap = have && !root ? IDMAP_SUBIDS : IDMAP_ROOT;
		if (o->idmap == IDMAP_SUBIDS && !(in_path("newuidmap") && in_path("newgidmap"))) {
			run_note(o, "no newuidmap/newgidmap (package uidmap): only the caller is mapped");
			o->idmap = IDMAP_ROOT;
		}
	}
	return 0;
}

static int make_tmp(struct run_opts *o)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&o->tmp, "%s/layerfs-run.XXXXXX", base) < 0)
		return -1;
	if (!mkdtemp(o->tmp)) {
		run_err("cannot create a temp dir in '%s': %s", base, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	if (asprintf(&o->root, "%s/root", o->tmp) < 0 || mkdir(o->root, 0755) != 0) {
		run_err("cannot create '%s/root': %s", o->tmp, strerror(errno));
		return -1;
	}
	if (!o->upper) {
		struct stat st;
		o->throwaway = true;
		if (asprintf(&o->upper, "%s/upper", o->tmp) < 0 || asprintf(&o->work, "%s/work", o->tmp) < 0)
			return -1;
		/* the merged root takes the upper root's mode: the top lower's */
		mode_t mode = stat(o->lowers[0], &st) == 0 ? st.st_mode & 07777 : 0755;
		if (mkdir(o->upper, 0700) != 0 || chmod(o->upper, mode) != 0 || mkdir(o->work, 0700) != 0) {
			run_err("cannot create '%s': %s", o->upper, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Everything in the temp dir that the supervisor did not remove. */
static void remove_tmp(struct run_opts *o)
{
	if (!o->tmp)
		return;
	if (o->keep && o->throwaway) {
		rmdir(o->root);
		run_err("upper kept in %s (workdir %s)", o->upper, o->work);
		return;
	}
	int fd = open(o->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		(void)unlinkat(fd, "root", AT_REMOVEDIR);
		/* left there only when the supervisor did not get to it */
		if (o->throwaway) {
			remove_tree_at(fd, "upper");
			remove_tree_at(fd, "work");
		}
		close(fd);
	}
	if (rmdir(o->tmp) != 0 && errno != ENOENT)
		run_err("could not remove the temp dir '%s': %s", o->tmp, strerror(errno));
}

static void run_opts_free(struct run_opts *o)
{
	for (size_t k = 0; k < o->nlowers; k++)
		free(o->lowers[k]);
	free(o->lowers);
	free(o->lower_spec);
	for (size_t k = 0; k < o->nbinds; k++) {
		free(o->binds[k].src);
		free(o->binds[k].dst);
	}
	free(o->binds);
	for (size_t k = 0; k < o->nenv; k++)
		free(o->env[k]);
	free(o->env);
	free(o->upper);
	free(o->work);
	free(o->root);
	free(o->tmp);
}

static volatile sig_atomic_t super_pid;

static void forward(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	/* a terminal signal went to the whole foreground group, the command
	 * included: passing it on would deliver it twice */
	if (si->si_code == SI_KERNEL)
		return;
	if (super_pid > 0)
		kill(super_pid, sig);
}

const int run_forwarded_signals[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, 0 };

static int run(struct run_opts *o, int argc, char **argv);

int lfs_run_main(int argc, char **argv)
{
	struct run_opts o = { 0 };
	int rc = run(&o, argc, argv);
	run_opts_free(&o);
	return rc;
}

static int run(struct run_opts *o, int argc, char **argv)
{
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	int rc = parse_args(argc, argv, o);
	if (rc == 1) {
		usage(stdout);
		return 0;
	}
	if (rc)
		return RUN_EXIT_ERROR;
	if (resolve_paths(o) || choose_idmap(o))
		return RUN_EXIT_ERROR;

	/* signals go to the supervisor from the moment it exists; until then
	 * they are held */
	sigset_t set, old;
	sigemptyset(&set);
	for (const int *s = run_forwarded_signals; *s; s++)
		sigaddset(&set, *s);
	sigprocmask(SIG_BLOCK, &set, &old);
	struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigfillset(&sa.sa_mask);
	for (const int *s = run_forwarded_signals; *s; s++)
		sigaction(*s, &sa, NULL);

	if (make_tmp(o)) {
		remove_tmp(o);
		return RUN_EXIT_ERROR;
	}
	run_note(o, "temp dir %s", o->tmp);
	pid_t pid = ns_spawn_supervisor(o, supervisor_main);
	if (pid < 0) {
		remove_tmp(o);
		return RUN_EXIT_ERROR;
	}
	super_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);

	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	super_pid = 0;
	if (WIFEXITED(st)) {
		rc = WEXITSTATUS(st);
	} else {
		run_err("internal error: the supervisor was killed by signal %d", WTERMSIG(st));
		rc = RUN_EXIT_ERROR;
	}
	remove_tmp(o);
	run_note(o, "done, exit status %d", rc);
	return rc;
}
