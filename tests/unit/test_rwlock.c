/* test_rwlock.c - fs/rwlock.h under contention: writers exclude everyone,
 * readers share, a reader may take the lock again, trywrlock fails while
 * held, and nobody sleeps forever (the test is bounded by meson's timeout). */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/rwlock.h"

static struct lfs_rwlock lock;
static long counter;          /* changed only under the write lock */
static _Atomic int readers_in, writers_in, violations;

#define ROUNDS 20000

static void *writer(void *arg)
{
	(void)arg;
	for (int k = 0; k < ROUNDS; k++) {
		lfs_rw_wrlock(&lock);
		if (atomic_fetch_add(&writers_in, 1) != 0 || atomic_load(&readers_in) != 0)
			atomic_fetch_add(&violations, 1);
		counter++;
		atomic_fetch_sub(&writers_in, 1);
		lfs_rw_unlock(&lock);
	}
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	for (int k = 0; k < ROUNDS; k++) {
		lfs_rw_rdlock(&lock);
		atomic_fetch_add(&readers_in, 1);
		if (atomic_load(&writers_in) != 0)
			atomic_fetch_add(&violations, 1);
		if (k % 64 == 0) {
			lfs_rw_rdlock(&lock); /* again, as glibc's default allows */
			lfs_rw_unlock(&lock);
		}
		atomic_fetch_sub(&readers_in, 1);
		lfs_rw_unlock(&lock);
	}
	return NULL;
}

static void test_contention(void **state)
{
	(void)state;
	pthread_t t[8];
	lfs_rw_init(&lock);
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, i % 2 ? writer : reader, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&violations), 0);
	assert_int_equal(counter, 4L * ROUNDS);
	assert_int_equal(atomic_load(&lock.state), 0);
}

static void test_trywrlock(void **state)
{
	(void)state;
	struct lfs_rwlock l;
	lfs_rw_init(&l);
	lfs_rw_rdlock(&l);
	assert_int_equal(lfs_rw_trywrlock(&l), EBUSY);
	lfs_rw_unlock(&l);
	assert_int_equal(lfs_rw_trywrlock(&l), 0);
	assert_int_equal(lfs_rw_trywrlock(&l), EBUSY);
	lfs_rw_unlock(&l);
	assert_int_equal(atomic_load(&l.state), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contention),
		cmocka_unit_test(test_trywrlock),
	};
	return cmocka_run_group_tests_name("rwlock", tests, NULL, NULL);
}
