/* loop.c - the request loop: one thread reads and serves, others stand by.
 *
 * libfuse's multi-threaded loop keeps several threads blocked in read()
 * on /dev/fuse, and the kernel hands each request to the one that has
 * waited longest: a program making one request after another has them
 * served by a different, cold thread each time, which costs a quarter
 * of the time of a small request here.  Here one thread at a time reads;
 * it serves what it read and goes back to read, so such a program
 * always meets the same thread.  A request that takes long (a copy-up,
 * an fsync, a slow disk) must not hold up the others: a watchdog that
 * sees the same request still being served a millisecond later wakes a
 * standby thread to read in its place, up to max_threads.  After each
 * request the reader polls for the next for a little while (-o spin=)
 * before it sleeps.
 */
#define _GNU_SOURCE
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_NS 1000000L   /* a request served longer than this gets a stand-in */
#define PARK_AFTER 200      /* idle watchdog rounds before it sleeps */

struct loop {
	struct fuse_session *se;
	pthread_mutex_t lock;
	pthread_cond_t standby;   /* threads with nothing to do */
	pthread_cond_t watch;     /* the watchdog, parked while all is idle */
	bool reading;             /* a thread holds the reader's turn */
	bool serving;             /* ...and is serving what it read */
	uint64_t turn;            /* counts the turns handed out */
	uint64_t seq;             /* requests read so far */
	bool watch_parked;
	unsigned nthreads, max_threads, nstandby;
	uint64_t spin_ns;         /* a reader polls this long before it sleeps */
	int error;
	sem_t done;
	pthread_t *threads;       /* every worker, for the cancel at exit */
	unsigned nalloc;
};

static void *worker(void *arg);

/* Workers take only this signal: at the end it gets one out of read(). */
#define WAKE_SIGNAL SIGUSR1

static void on_wake(int sig)
{
	(void)sig;
}

/* Called with lock held. */
static int start_worker(struct loop *lp)
{
	if (lp->nthreads == lp->nalloc) {
		unsigned n = lp->nalloc ? lp->nalloc * 2 : 8;
		pthread_t *t = realloc(lp->threads, n * sizeof *t);
		if (!t)
			return -ENOMEM;
		lp->threads = t;
		lp->nalloc = n;
	}
	/* the main thread takes the signals that end the mount */
	sigset_t mask, old;
	sigfillset(&mask);
	sigdelset(&mask, WAKE_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &mask, &old);
	int rc = pthread_create(&lp->threads[lp->nthreads], NULL, worker, lp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	lp->nthreads++;
	return 0;
}

/* Lets another thread read while this one serves (lock held). */
static void hand_over(struct loop *lp)
{
	if (lp->nstandby > 0)
		pthread_cond_signal(&lp->standby);
	else if (lp->nthreads < lp->max_threads)
		start_worker(lp);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* fuse_session_receive_buf, polling for spin_ns first.  Waking a sleeping
 * reader costs the request a wake-up of its CPU (on a VM, an exit to the
 * host: tens of microseconds), and a program working through many small
 * requests sends the next within microseconds of our reply; while we
 * poll, sched_yield lets anything else runnable here go first. */
static int receive(struct loop *lp, struct fuse_buf *buf)
{
	if (lp->spin_ns == 0)
		return fuse_session_receive_buf(lp->se, buf);
	uint64_t start = now_ns();
	for (;;) {
		int res = fuse_session_receive_buf(lp->se, buf);
		if (res != -EAGAIN)
			return res;
		if (now_ns() - start < lp->spin_ns) {
			sched_yield();
			continue;
		}
		struct pollfd p = { .fd = fuse_session_fd(lp->se), .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno == EINTR)
			return -EINTR;
		start = now_ns();
	}
}

static void *worker(void *arg)
{
	struct loop *lp = arg;
	struct fuse_buf buf = { .mem = NULL };

	pthread_mutex_lock(&lp->lock);
	for (;;) {
		while (lp->reading && !fuse_session_exited(lp->se)) {
			lp->nstandby++;
			pthread_cond_wait(&lp->standby, &lp->lock);
			lp->nstandby--;
		}
		if (fuse_session_exited(lp->se))
			break;
		lp->reading = true;
		uint64_t my_turn = ++lp->turn;
		pthread_mutex_unlock(&lp->lock);

		int res = receive(lp, &buf);

		pthread_mutex_lock(&lp->lock);
		if (res == -EINTR) {
			lp->reading = false;
			continue;
		}
		if (res <= 0) {
			/* ENODEV: unmounted, the normal end */
			if (res < 0 && res != -ENODEV)
				lp->error = res;
			fuse_session_exit(lp->se);
			lp->reading = false;
			break;
		}
		lp->seq++;
		lp->serving = true;
		if (lp->watch_parked)
			pthread_cond_signal(&lp->watch);
		pthread_mutex_unlock(&lp->lock);

		fuse_session_process_buf(lp->se, &buf);

		pthread_mutex_lock(&lp->lock);
		/* the turn is still ours unless the watchdog gave it away */
		if (lp->turn == my_turn) {
			lp->serving = false;
			lp->reading = false;
		}
	}
	pthread_cond_broadcast(&lp->standby);
	pthread_mutex_unlock(&lp->lock);
	free(buf.mem);
	sem_post(&lp->done);
	return NULL;
}

/* Hands the reading to a standby thread when one request has been served
 * for longer than WATCH_NS; sleeps while nothing is served. */
static void *watchdog(void *arg)
{
	struct loop *lp = arg;
	uint64_t last = 0;
	unsigned idle = 0;

	pthread_mutex_lock(&lp->lock);
	while (!fuse_session_exited(lp->se)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += WATCH_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&lp->watch, &lp->lock, &ts);
		if (lp->serving && lp->seq == last) {
			/* the same request, a whole round later */
			lp->serving = false;
			lp->reading = false;
			hand_over(lp);
			idle = 0;
		} else if (lp->seq == last && ++idle >= PARK_AFTER) {
			lp->watch_parked = true;
			while (lp->seq == last && !fuse_session_exited(lp->se))
				pthread_cond_wait(&lp->watch, &lp->lock);
			lp->watch_parked = false;
			idle = 0;
		} else if (lp->seq != last) {
			idle = 0;
		}
		last = lp->seq;
	}
	pthread_mutex_unlock(&lp->lock);
	return NULL;
}

int lfs_loop(struct fuse_session *se, unsigned max_threads, unsigned spin_us)
{
	struct loop lp = { .se = se, .max_threads = max_threads ? max_threads : 1,
			   .spin_ns = spin_us * 1000ull };
	pthread_condattr_t ca;
	pthread_t wd;
	int rc = 0;

	pthread_mutex_init(&lp.lock, NULL);
	pthread_cond_init(&lp.standby, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lp.watch, &ca);
	pthread_condattr_destroy(&ca);
	sem_init(&lp.done, 0, 0);
	/* polling reads need a non-blocking device */
	if (lp.spin_ns) {
		int fl = fcntl(fuse_session_fd(se), F_GETFL);
		if (fl < 0 || fcntl(fuse_session_fd(se), F_SETFL, fl | O_NONBLOCK) < 0)
			lp.spin_ns = 0;
	}
	struct sigaction sa = { .sa_handler = on_wake }; /* no SA_RESTART: read() returns */
	sigemptyset(&sa.sa_mask);
	sigaction(WAKE_SIGNAL, &sa, NULL);

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	bool have_wd = lp.max_threads > 1 && pthread_create(&wd, NULL, watchdog, &lp) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&lp.lock);
	rc = start_worker(&lp);
	pthread_mutex_unlock(&lp.lock);
	/* until a worker finds the session ended, or a signal ends it */
	while (rc == 0 && !fuse_session_exited(se))
		sem_wait(&lp.done);

	pthread_mutex_lock(&lp.lock);
	fuse_session_exit(se);
	pthread_cond_broadcast(&lp.standby);
	pthread_cond_broadcast(&lp.watch);
	unsigned n = lp.nthreads;
	pthread_mutex_unlock(&lp.lock);
	/* a worker blocked in read() is woken by the signal (again, in case
	 * it was just going in); one serving a request finishes it first.
	 * No pthread_cancel: its unwinding skips our frames' cleanup. */
	for (unsigned k = 0; k < n; k++) {
		for (;;) {
			pthread_kill(lp.threads[k], WAKE_SIGNAL);
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_timedjoin_np(lp.threads[k], NULL, &ts) == 0)
				break;
		}
	}
	if (have_wd)
		pthread_join(wd, NULL);
	free(lp.threads);
	sem_destroy(&lp.done);
	pthread_cond_destroy(&lp.watch);
	pthread_cond_destroy(&lp.standby);
	pthread_mutex_destroy(&lp.lock);
	fuse_session_reset(se);
	return rc ? rc : lp.error;
}
