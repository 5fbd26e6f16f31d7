/* rwlock.h - a reader-writer lock in four bytes, for the inode table.
 *
 * pthread_rwlock_t is 56 bytes, a third of an inode; this one is a word
 * and a futex.  Same policy as glibc's default (readers first, so a
 * thread holding a read lock may take it again), no owner checks.
 * Bits: WRITER held, WAITERS asleep on the word, the rest a reader count.
 */
#ifndef LAYERFS_RWLOCK_H
#define LAYERFS_RWLOCK_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

struct lfs_rwlock {
	_Atomic uint32_t state;
};

#define LFS_RW_WRITER 0x80000000u
#define LFS_RW_WAITERS 0x40000000u
#define LFS_RW_READERS 0x3fffffffu

static inline void lfs_rw_sleep(struct lfs_rwlock *l, uint32_t seen)
{
	/* returns at once if the word is no longer what we saw */
	syscall(SYS_futex, &l->state, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

/* Sets WAITERS and sleeps while the word stays as seen; returns at
 * once when it changed first (the caller looks again). */
static inline void lfs_rw_wait(struct lfs_rwlock *l, uint32_t s)
{
	if (!(s & LFS_RW_WAITERS) &&
	    !atomic_compare_exchange_weak_explicit(&l->state, &s, s | LFS_RW_WAITERS,
						   memory_order_relaxed, memory_order_relaxed))
		return;
	lfs_rw_sleep(l, s | LFS_RW_WAITERS);
}

static inline void lfs_rw_init(struct lfs_rwlock *l)
{
	atomic_init(&l->state, 0);
}

static inline void lfs_rw_rdlock(struct lfs_rwlock *l)
{
	for (;;) {
		uint32_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
		if (!(s & LFS_RW_WRITER)) {
			if (atomic_compare_exchange_weak_explicit(&l->state, &s, s + 1,
								  memory_order_acquire,
								  memory_order_relaxed))
				return;
			continue;
		}
		lfs_rw_wait(l, s);
	}
}

static inline int lfs_rw_trywrlock(struct lfs_rwlock *l)
{
	uint32_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
	if (s & ~LFS_RW_WAITERS)
		return EBUSY;
	return atomic_compare_exchange_strong_explicit(&l->state, &s, s | LFS_RW_WRITER,
						       memory_order_acquire, memory_order_relaxed)
		       ? 0 : EBUSY;
}

static inline void lfs_rw_wrlock(struct lfs_rwlock *l)
{
	for (;;) {
		uint32_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
		if (!(s & ~LFS_RW_WAITERS)) {
			if (atomic_compare_exchange_weak_explicit(&l->state, &s, s | LFS_RW_WRITER,
								  memory_order_acquire,
								  memory_order_relaxed))
				return;
			continue;
		}
		lfs_rw_wait(l, s);
	}
}

static inline void lfs_rw_unlock(struct lfs_rwlock *l)
{
	uint32_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
	if (s & LFS_RW_WRITER) {
		/* clears WAITERS too: whoever still has to wait sets it again */
		s = atomic_exchange_explicit(&l->state, 0, memory_order_release);
	} else {
		s = atomic_fetch_sub_explicit(&l->state, 1, memory_order_release) - 1;
		if (s != LFS_RW_WAITERS)
			return; /* readers left, or nobody waits */
		/* the last reader wakes the waiters, unless a reader came in
		 * meanwhile: then its unlock will */
		if (!atomic_compare_exchange_strong_explicit(&l->state, &s, 0, memory_order_relaxed,
							     memory_order_relaxed))
			return;
	}
	if (s & LFS_RW_WAITERS)
		syscall(SYS_futex, &l->state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

#endif
