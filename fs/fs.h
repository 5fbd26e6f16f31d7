/* fs.h - the FUSE side of layerfs: the daemon state, the inode table and
 * the helpers the op files share.  The op files stay thin: lookups go to
 * layers/, copy-up to cow/.
 *
 * Locking, outermost first:
 *   inode->rw  (one per inode) guards its copies; readers use the fds
 *              under the read lock, copy-up/rename/unlink write-lock.
 *              A parent's lock is never taken while holding a child's.
 *   tree_lock  (global mutex) guards every inode's parent/name; held only
 *              for pointer updates and name matching, never across I/O.
 *   table_lock (global mutex) guards the hash table and reference counts;
 *              taken after tree_lock when both are needed.
 */
#ifndef LAYERFS_FS_H
#define LAYERFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rwlock.h"
#include "../layers/dirlist.h"
#include "../layers/lookup.h"
#include "../layers/options.h"
#include "../layers/stack.h"

struct lfs_inode {
	uint64_t st_ino;          /* what stat shows; the table key */
	struct lfs_inode *hnext;
	uint64_t nlookup;         /* kernel references (table_lock) */
	uint32_t refs;            /* children pointing here + transient holds (table_lock) */
	uint32_t type;            /* S_IFMT of the object */
	struct lfs_rwlock rw;
	struct layer_copy one;    /* storage when there is a single copy */
	/* top first: copies[0] is the upper once copied up.  The fds are a
	 * cache: an idle inode gives them back (copies[0].fd == -1) and the
	 * next inode_rdlock() finds them again from the parent and name. */
	struct layer_copy *copies;
	uint32_t ncopies;
	uint32_t top_layer;       /* copies[0].layer, readable without the lock */
	dev_t top_dev;            /* the top object's real identity, to check */
	ino_t top_ino;            /*   a reload found the same object */
	_Atomic bool recent;      /* used since the last eviction sweep */
	bool pinned;              /* no name leads to it any more: keep the fds */
	_Atomic uint32_t data_gen;/* bumped when copies[0] changes to a new object */
	/* a deep directory's lower names (dirlist.h), made at its first
	 * lookup; lowers never change, so it lives as long as the inode */
	_Atomic(struct name_index *) lower_index;
	struct lfs_inode *parent; /* tree_lock */
	char *name;               /* tree_lock */
};

/* An open file: the real fd, and which copy it is of (data_gen); a
 * read-only handle opened before a copy-up moves to the new copy. */
struct lfs_handle {
	int fd;
	uint32_t gen;
	int flags;
	int32_t backing_id;       /* > 0: passthrough (passthrough.c); 0: cached; -1: neither counted */
	pthread_mutex_t lock;
	struct lfs_inode *inode;
};

static inline struct lfs_handle *fi_handle(const struct fuse_file_info *fi)
{
	return (struct lfs_handle *)(uintptr_t)fi->fh;
}

struct lfs {
	struct layer_stack stack;
	struct lfs_options *opts;
	struct lfs_inode *root;
	double timeout;           /* entry/attr cache lifetime handed to the kernel */
	bool can_switch_creds;    /* may create files as the caller */
	bool posix_acl;           /* default_permissions: let the kernel enforce ACLs */
	bool kernel_skips_umask;  /* POSIX ACLs negotiated: we apply the caller's umask */
	bool writeback;           /* the kernel caches writes (FUSE_CAP_WRITEBACK_CACHE) */
	unsigned long name_max;
	struct fuse_session *se;
};

extern struct lfs lfs;

/* ---- inode table (inode.c) ---- */
void inode_table_init(void);
struct lfs_inode *ino_to_inode(fuse_ino_t ino);
/* The number the kernel knows the inode by (the root is FUSE_ROOT_ID). */
fuse_ino_t inode_to_ino(const struct lfs_inode *i);
/* Drops the kernel's cached attributes of i (never waits on a request). */
void inode_inval_attrs(const struct lfs_inode *i);
/* Finds or makes the inode for a lookup result (consumes r's fds); adds
 * one kernel reference; the inode's parent/name are set when new. */
struct lfs_inode *inode_from_lookup(struct lfs_inode *parent, const char *name,
				    struct lookup_result *r, uint64_t st_ino, bool *fresh);
void inode_forget(struct lfs_inode *i, uint64_t n);
/* The known inode with that number, held (inode_release), or NULL;
 * preferring the one known under that parent and name: the names of a
 * lower hard link are separate inodes until copied up. */
struct lfs_inode *inode_find_named(uint64_t st_ino, struct lfs_inode *parent, const char *name);
void inode_add_lookup(struct lfs_inode *i);
/* Take i->rw with the copies' fds present (reloaded if they were given
 * back); release with lfs_rw_unlock().  If the object cannot be
 * found again the copies stay closed (fd -1) and calls on them fail. */
void inode_rdlock(struct lfs_inode *i);
void inode_wrlock(struct lfs_inode *i);
/* Gives back the fds of idle inodes when over the budget. */
void inode_evict_idle(void);
/* Keeps an inode's fds: its name no longer leads to it. */
void inode_pin(struct lfs_inode *i);
/* Sets how many fds the copies of idle inodes may hold. */
void inode_set_fd_budget(long budget);
/* Gives an inode a new number (a hard-linked lower file after copy-up). */
void inode_rekey(struct lfs_inode *i, uint64_t st_ino);
void inode_release(struct lfs_inode *i);
struct lfs_inode *make_root_inode(void);
/* Replaces the copies with a single new top object (after copy-up or create). */
void inode_set_upper(struct lfs_inode *i, int upper_fd);
/* Moves an inode under a new parent/name (tree_lock taken inside). */
void inode_set_name(struct lfs_inode *i, struct lfs_inode *parent, const char *name);
/* Copies parent and name under tree_lock; the caller releases the parent. */
struct lfs_inode *inode_get_parent(struct lfs_inode *i, char **name);

/* ---- attributes and lookup (inode_ops.c) ---- */
int stat_inode(struct lfs_inode *i, struct stat *st); /* caller holds i->rw */
/* Turns the top copy's stat into what the merged inode shows. */
void merged_stat(const struct lfs_inode *i, struct stat *st);
int do_lookup(struct lfs_inode *parent, const char *name, struct fuse_entry_param *e);
/* do_lookup for a name a listing of the parent saw (see name_hint). */
int do_lookup_hinted(struct lfs_inode *parent, const char *name, const struct name_hint *hint,
		     struct fuse_entry_param *e);
/* The entry for an object just made in the upper, from its O_PATH fd
 * (consumed): what do_lookup would find, without looking again. */
int new_upper_entry(struct lfs_inode *parent, const char *name, int path_fd, struct fuse_entry_param *e);
void fill_entry_times(struct fuse_entry_param *e);

/* ---- upper handling (upper.c) ---- */
static inline bool inode_is_upper(const struct lfs_inode *i)
{
	return lfs.stack.has_upper && i->top_layer == 0;
}
/* Copies the inode (and its parents first) up.  0 or -errno. */
int copy_up(struct lfs_inode *i, unsigned flags);
/* The upper directory fd of a (copied-up) directory inode, dup'ed. */
int upper_dir_fd(struct lfs_inode *dir);
/* Marks an upper directory as holding entries with origins (kernel "impure"). */
void mark_impure(int dirfd);
/* Does name exist in any lower copy of dir?  (whiteout needed on removal) */
bool name_in_lower(struct lfs_inode *dir, const char *name);

/* ---- files (file.c) ---- */
/* Opens the inode's top copy for I/O and wraps it in a handle in fi. */
int handle_open(struct lfs_inode *i, int flags, struct fuse_file_info *fi);
/* The flags a real fd of an open file gets (see file.c). */
int handle_flags(int flags);
/* Wraps an fd already open on the inode's top copy (a create's) in a handle. */
int handle_wrap(struct lfs_inode *i, int fd, int flags, struct fuse_file_info *fi);

/* ---- caller credentials (creds.c) ---- */
struct saved_creds { uid_t uid; gid_t gid; bool switched; bool umask_set; };
int creds_enter(fuse_req_t req, struct saved_creds *saved);
void creds_leave(struct saved_creds *saved);

/* ---- id options (ids.c): uidmapping=, squash_to_*, xattr_permissions= ---- */
int ids_init(char *err, size_t errlen);          /* after stack_open */
void ids_stat_out(const struct lfs_inode *i, struct stat *st); /* stored -> shown */
/* chmod through an override xattr: 1 when recorded there, 0 when the
 * caller should chmod the inode, or -errno. */
int ids_chmod(int fd, mode_t mode);
/* chown of an upper object to shown ids ((uid_t)-1: unchanged); 0 or -errno. */
int ids_chown(int fd, uid_t uid, gid_t gid);
/* The caller's ids and groups as the layers store them (in place). */
int ids_caller(fuse_req_t req, uid_t *uid, gid_t *gid, gid_t *groups, int *ngroups);
/* A new object NAME in dirfd: records its owner and mode when the upper
 * keeps them in an xattr.  0 or -errno. */
int ids_record_new(fuse_req_t req, int dirfd, const char *name, mode_t mode);
/* After a copy-up from src_layer: carries the override owner and mode over. */
int ids_copy_up(unsigned src_layer, int src_fd, int dst_fd);
/* POSIX ACL values hold ids too: mapped in place on the way out; on the
 * way in, *out is a mapped copy to store instead (free it) or NULL. */
void ids_acl_out(const char *name, void *buf, size_t len);
int ids_acl_in(const char *name, const void *value, size_t len, void **out);

/* ---- op tables of the other files ---- */
void inode_ops_register(struct fuse_lowlevel_ops *ops);
void dir_ops_register(struct fuse_lowlevel_ops *ops);
void readdir_ops_register(struct fuse_lowlevel_ops *ops);
void file_ops_register(struct fuse_lowlevel_ops *ops);

void xattr_ops_register(struct fuse_lowlevel_ops *ops);

/* ---- passthrough of upper files' data (passthrough.c) ---- */
/* After the mount, before the first request: hooks the session's io. */
void passthrough_attach(struct fuse_session *se);
/* From the INIT handler: ask for passthrough if the kernel offers it. */
void passthrough_init(void);
/* For a new handle (from handle_wrap): passthrough or not, counted. */
void passthrough_open(struct lfs_inode *i, struct lfs_handle *h);
void passthrough_release(struct lfs_handle *h);
/* fuse_reply_open/create, carrying the handle's backing file if any. */
void passthrough_reply_open(fuse_req_t req, const struct fuse_file_info *fi);
void passthrough_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
			      const struct fuse_file_info *fi);

/* ---- the mount (session.c) ---- */
int lfs_run(struct lfs_options *o);

/* ---- the request loop (loop.c) ---- */
/* Serves se until it ends; up to max_threads serve at once.  0 or -errno. */
int lfs_loop(struct fuse_session *se, unsigned max_threads, unsigned spin_us);


#endif
