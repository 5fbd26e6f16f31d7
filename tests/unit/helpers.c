/* helpers.c - see helpers.h. */
#define _GNU_SOURCE
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

char *tmpdir_new(void)
{
	char *t = strdup("/tmp/layerfs-unit.XXXXXX");
	if (!t || !mkdtemp(t))
		fail_msg("mkdtemp: %s", strerror(errno));
	return t;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void rm_rf(const char *path)
{
	/* lower files may be mode 0 or immutable-looking; we are root */
	nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void tmpdir_free(char *dir)
{
	if (!dir)
		return;
	rm_rf(dir);
	free(dir);
}

char *pjoin(const char *a, const char *b)
{
	char *out;
	if (asprintf(&out, "%s/%s", a, b) < 0)
		abort();
	return out;
}

char *mkdirs(const char *dir, const char *rel)
{
	char *full = pjoin(dir, rel);
	for (char *p = full + strlen(dir) + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(full, 0755) < 0 && errno != EEXIST)
				fail_msg("mkdir %s: %s", full, strerror(errno));
			*p = c;
			if (!c)
				break;
		}
	}
	return full;
}

static void make_parent(const char *dir, const char *rel)
{
	char *r = strdup(rel), *slash = strrchr(r, '/');
	if (slash) {
		*slash = '\0';
		free(mkdirs(dir, r));
	}
	free(r);
}

void put_file(const char *dir, const char *rel, const char *content)
{
	make_parent(dir, rel);
	char *full = pjoin(dir, rel);
	int fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_msg("create %s: %s", full, strerror(errno));
	size_t len = strlen(content);
	if (write(fd, content, len) != (ssize_t)len)
		fail_msg("write %s: %s", full, strerror(errno));
	close(fd);
	free(full);
}

char *slurp(const char *path, size_t *lenp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

void put_xattr(const char *dir, const char *rel, const char *name, const char *value)
{
	char *full = rel ? pjoin(dir, rel) : strdup(dir);
	if (lsetxattr(full, name, value, strlen(value), 0) < 0)
		fail_msg("setxattr %s %s: %s", full, name, strerror(errno));
	free(full);
}

void put_chr_whiteout(const char *dir, const char *rel)
{
	make_parent(dir, rel);
	char *full = pjoin(dir, rel);
	if (mknod(full, S_IFCHR | 0600, makedev(0, 0)) < 0)
		fail_msg("mknod %s: %s", full, strerror(errno));
	free(full);
}

int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ., .. and the DIR's own fd */
}

int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}
