/* run.h - `layerfs run`: the namespace launcher.  What the launcher's
 * parts share: the parsed command line and the entry points of each part.
 *
 * Processes (each box a pid namespace):
 *
 *   launcher (caller's namespaces): options, temp dir, id maps, signals
 *   └─ supervisor: pid 1 of a new pid ns, in the new user+mount ns;
 *      mounts the stack on a private dir, owns the daemon, tears down
 *      ├─ layerfs daemon (when the backend is FUSE)
 *      └─ init: pid 1 of the container's pid ns, in a nested mount ns
 *         (pivot_root there, so the daemon's root never moves); reaps,
 *         forwards signals
 *         └─ COMMAND
 *
 * The supervisor being pid 1 of its own pid namespace means the kernel
 * kills the daemon and the container with it whatever way it ends, and
 * the mount namespace (and with it every mount) goes with the last of
 * them.
 */
#ifndef LAYERFS_RUN_H
#define LAYERFS_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <sys/types.h>

#include "../../cow/workdir.h" /* remove_tree_at */

/* launcher errors (bad usage, setup failures), as podman run */
#define RUN_EXIT_ERROR 125
#define RUN_EXIT_CANNOT_EXEC 126
#define RUN_EXIT_NOT_FOUND 127

/* what the supervisor gets when the launcher dies (PR_SET_PDEATHSIG) */
#define RUN_SIG_ORPHANED (SIGRTMIN + 2)

enum run_backend { BACKEND_AUTO, BACKEND_FUSE, BACKEND_KERNEL };
enum run_idmap { IDMAP_NONE, IDMAP_ROOT, IDMAP_SUBIDS };

struct run_bind {
	char *src;      /* absolute host path */
	char *dst;      /* absolute path inside the container */
	bool ro;
	bool tmpfs;     /* --tmpfs DST: src unused */
};

struct id_range {
	unsigned long start, count;
};

struct run_opts {
	/* command line */
	char *lower_spec;      /* as given, with \: escapes: handed to the daemon */
	char **lowers;         /* split, absolute */
	size_t nlowers;
	char *upper;           /* absolute; NULL: throw-away upper in tmp */
	char *hostname;
	bool net_host;
	struct run_bind *binds;
	size_t nbinds;
	char **env;            /* K=V, in order */
	size_t nenv;
	char *cwd;
	bool user_set;
	uid_t uid;
	gid_t gid;
	bool gid_set;
	enum run_idmap idmap;  /* after defaults: what will be done */
	bool idmap_asked;
	enum run_backend backend;
	bool keep;
	bool verbose;
	char **argv;           /* the command */

	/* worked out by the launcher */
	char *tmp;             /* private temp dir */
	char *root;            /* tmp/root: where the stack is mounted */
	char *work;            /* workdir for the upper */
	bool throwaway;        /* upper and work are in tmp */
	bool userns;           /* a user namespace is made */
	uid_t outer_uid;
	gid_t outer_gid;
	struct id_range subuid, subgid;
};

/* run.c */
extern const int run_forwarded_signals[]; /* 0-terminated */
void run_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void run_note(const struct run_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ns.c: the supervisor process and its namespaces */
int subids_lookup(uid_t uid, const char *file, struct id_range *r);
/* Forks the supervisor in its new namespaces with the id maps written;
 * returns its pid (in the caller's pid ns) or -1 after a message. */
pid_t ns_spawn_supervisor(struct run_opts *o, int (*fn)(struct run_opts *));

/* super.c: runs in the supervisor; returns the exit status */
int supervisor_main(struct run_opts *o);

/* backend.c: the layer stack on o->root */
struct mounted_stack {
	bool kernel;
};
int stack_mount(struct run_opts *o, struct mounted_stack *m);
/* sfd: the supervisor's signalfd (SIGCHLD), to wait for the daemon */
void stack_unmount(struct run_opts *o, struct mounted_stack *m, int sfd);

/* rootfs.c: in the container's init: the mounts, then pivot_root */
int rootfs_setup(struct run_opts *o);

/* init.c: the container's pid 1; never returns */
void init_main(struct run_opts *o) __attribute__((noreturn));

/* caps.c */
int caps_restrict(void);
int net_loopback_up(void);

/* util.c */
int close_fds_from(int first);

#endif
