/* tarw.c - the deterministic tar writer of layer-tool commit.
 *
 * libarchive writes the tar (pax, no atime/ctime, no user or group
 * names) into a callback that hashes it (the diffID) and feeds it to a
 * second libarchive writer in "raw" format, whose filter compresses
 * (gzip without a timestamp, zstd, lz4) and whose callback hashes the
 * result (the blob digest) and writes it out.  Nothing is buffered but
 * libarchive's blocks and a small ring, so memory does not grow with the
 * layer.  The diffID is hashed in a second thread fed from that ring:
 * sha256 of the tar would otherwise be most of commit's CPU time.
 */
#define _GNU_SOURCE
#include "lt.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* few, large slots: each hand-over is a wake-up of the other thread */
#define RING_SLOTS 4
#define SLOT_SIZE (1 << 20)

/* sha256 in a thread of its own, fed by copies of the tar's blocks. */
struct hasher {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv_data, cv_room;
	char *slots[RING_SLOTS];
	size_t lens[RING_SLOTS];
	unsigned head, tail, count;
	size_t fill; /* bytes in the producer's slot (head), not yet handed over */
	bool have_slot, done, started;
	EVP_MD_CTX *md;
};

static void *hasher_main(void *arg)
{
	struct hasher *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->count == 0 && !h->done)
			pthread_cond_wait(&h->cv_data, &h->mu);
		if (h->count == 0)
			break;
		unsigned t = h->tail;
		pthread_mutex_unlock(&h->mu);
		EVP_DigestUpdate(h->md, h->slots[t], h->lens[t]);
		pthread_mutex_lock(&h->mu);
		h->tail = (t + 1) % RING_SLOTS;
		h->count--;
		pthread_cond_signal(&h->cv_room);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static int hasher_start(struct hasher *h, EVP_MD_CTX *md)
{
	memset(h, 0, sizeof *h);
	h->md = md;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv_data, NULL);
	pthread_cond_init(&h->cv_room, NULL);
	for (unsigned i = 0; i < RING_SLOTS; i++)
		h->slots[i] = lt_xmalloc(SLOT_SIZE);
	if (pthread_create(&h->th, NULL, hasher_main, h))
		return -1;
	h->started = true;
	return 0;
}

/* Hands the producer's slot, when it holds something, to the thread. */
static void hasher_publish(struct hasher *h)
{
	if (!h->have_slot || h->fill == 0)
		return;
	pthread_mutex_lock(&h->mu);
	h->lens[h->head] = h->fill;
	h->head = (h->head + 1) % RING_SLOTS;
	h->count++;
	h->have_slot = false;
	h->fill = 0;
	pthread_cond_signal(&h->cv_data);
	pthread_mutex_unlock(&h->mu);
}

static void hasher_push(struct hasher *h, const char *buf, size_t len)
{
	if (!h->started) {
		EVP_DigestUpdate(h->md, buf, len);
		return;
	}
	while (len) {
		if (!h->have_slot) {
			/* the slot at head is the producer's until count says otherwise */
			pthread_mutex_lock(&h->mu);
			while (h->count == RING_SLOTS)
				pthread_cond_wait(&h->cv_room, &h->mu);
			pthread_mutex_unlock(&h->mu);
			h->have_slot = true;
			h->fill = 0;
		}
		size_t n = SLOT_SIZE - h->fill;
		if (n > len)
			n = len;
		memcpy(h->slots[h->head] + h->fill, buf, n);
		h->fill += n;
		buf += n;
		len -= n;
		if (h->fill == SLOT_SIZE)
			hasher_publish(h);
	}
}

/* Waits for every block to be hashed and ends the thread. */
static void hasher_stop(struct hasher *h)
{
	if (h->started) {
		hasher_publish(h);
		pthread_mutex_lock(&h->mu);
		h->done = true;
		pthread_cond_signal(&h->cv_data);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->th, NULL);
		h->started = false;
	}
	for (unsigned i = 0; i < RING_SLOTS; i++) {
		free(h->slots[i]);
		h->slots[i] = NULL;
	}
}

struct tarw {
	struct hasher hash;
	struct archive *tar, *raw;
	EVP_MD_CTX *diff_md, *blob_md;
	int out_fd;
	uint64_t tar_bytes, blob_bytes;
	int werr; /* errno of a failed write */
	const char *what;
};

const char *compress_name(enum lt_compress c)
{
	switch (c) {
	case LT_GZIP: return "gzip";
	case LT_ZSTD: return "zstd";
	case LT_LZ4: return "lz4";
	default: return "none";
	}
}

int compress_parse(const char *s, enum lt_compress *c)
{
	if (!strcmp(s, "none") || !strcmp(s, "tar"))
		*c = LT_NONE;
	else if (!strcmp(s, "gzip") || !strcmp(s, "gz"))
		*c = LT_GZIP;
	else if (!strcmp(s, "zstd") || !strcmp(s, "zst"))
		*c = LT_ZSTD;
	else if (!strcmp(s, "lz4"))
		*c = LT_LZ4;
	else
		return -1;
	return 0;
}

static la_ssize_t out_cb(struct archive *a, void *cd, const void *buf, size_t len)
{
	struct tarw *w = cd;
	(void)a;
	int rc = write_all(w->out_fd, buf, len);
	if (rc) {
		w->werr = -rc;
		archive_set_error(a, -rc, "write: %s", strerror(-rc));
		return -1;
	}
	/* uncompressed, the blob is the tar: its digest is the diffID */
	if (w->raw)
		EVP_DigestUpdate(w->blob_md, buf, len);
	w->blob_bytes += len;
	return (la_ssize_t)len;
}

static la_ssize_t tar_cb(struct archive *a, void *cd, const void *buf, size_t len)
{
	struct tarw *w = cd;
	hasher_push(&w->hash, buf, len);
	w->tar_bytes += len;
	if (!w->raw)
		return out_cb(a, cd, buf, len);
	la_ssize_t n = archive_write_data(w->raw, buf, len);
	if (n < 0 || (size_t)n != len) {
		archive_set_error(a, EIO, "%s", archive_error_string(w->raw) ? archive_error_string(w->raw) : "compression failed");
		return -1;
	}
	return (la_ssize_t)len;
}

static int la_fail(struct tarw *w, struct archive *a, const char *op)
{
	const char *m = archive_error_string(a);
	return lt_err("%s: %s: %s", w->what, op, m ? m : (w->werr ? strerror(w->werr) : "failed"));
}

static void unblock(struct archive *a)
{
	/* no padding beyond the tar's own end blocks; writes of 1 MiB */
	archive_write_set_bytes_per_block(a, 1 << 20);
	archive_write_set_bytes_in_last_block(a, 1);
}

struct tarw *tarw_open(int out_fd, enum lt_compress c, const char *what)
{
	struct tarw *w = calloc(1, sizeof *w);
	if (!w) {
		lt_err("out of memory");
		return NULL;
	}
	w->out_fd = out_fd;
	w->what = what;
	w->diff_md = EVP_MD_CTX_new();
	w->blob_md = EVP_MD_CTX_new();
	if (!w->diff_md || !w->blob_md || !EVP_DigestInit_ex(w->diff_md, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(w->blob_md, EVP_sha256(), NULL)) {
		lt_err("sha256: cannot initialise OpenSSL digest");
		goto fail;
	}
	if (hasher_start(&w->hash, w->diff_md)) {
		lt_err("cannot start the hashing thread");
		goto fail;
	}
	if (c != LT_NONE) {
		w->raw = archive_write_new();
		archive_write_set_format_raw(w->raw);
		int r = ARCHIVE_OK;
		if (c == LT_GZIP) {
			r = archive_write_add_filter_gzip(w->raw);
			/* the gzip header's mtime would differ on every run */
			if (r == ARCHIVE_OK)
				r = archive_write_set_filter_option(w->raw, "gzip", "timestamp", NULL);
		} else if (c == LT_ZSTD) {
			r = archive_write_add_filter_zstd(w->raw);
		} else if (c == LT_LZ4) {
			r = archive_write_add_filter_lz4(w->raw);
		}
		if (r != ARCHIVE_OK) {
			la_fail(w, w->raw, compress_name(c));
			goto fail;
		}
		unblock(w->raw);
		if (archive_write_open2(w->raw, w, NULL, out_cb, NULL, NULL) != ARCHIVE_OK) {
			la_fail(w, w->raw, "open");
			goto fail;
		}
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, "layer.tar");
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		r = archive_write_header(w->raw, e);
		archive_entry_free(e);
		if (r != ARCHIVE_OK) {
			la_fail(w, w->raw, "header");
			goto fail;
		}
	}
	w->tar = archive_write_new();
	if (archive_write_set_format_pax(w->tar) != ARCHIVE_OK ||
	    archive_write_set_format_option(w->tar, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK) {
		la_fail(w, w->tar, "pax format");
		goto fail;
	}
	unblock(w->tar);
	if (archive_write_open2(w->tar, w, NULL, tar_cb, NULL, NULL) != ARCHIVE_OK) {
		la_fail(w, w->tar, "open");
		goto fail;
	}
	return w;
fail:
	tarw_abort(w);
	return NULL;
}

int tarw_header(struct tarw *w, struct archive_entry *e)
{
	int r = archive_write_header(w->tar, e);
	/* ARCHIVE_WARN: a name that is no UTF-8, written as raw bytes
	 * (hdrcharset=BINARY), which is what the file is called */
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return la_fail(w, w->tar, archive_entry_pathname(e));
	return 0;
}

int tarw_data(struct tarw *w, const void *buf, size_t len)
{
	la_ssize_t n = archive_write_data(w->tar, buf, len);
	if (n < 0 || (size_t)n != len)
		return la_fail(w, w->tar, "write");
	return 0;
}

uint64_t tarw_tar_bytes(const struct tarw *w)
{
	return w->tar_bytes;
}

static void hex_digest(EVP_MD_CTX *md, char out[72])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	EVP_DigestFinal_ex(md, d, &dl);
	strcpy(out, "sha256:");
	for (unsigned i = 0; i < dl; i++)
		sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

int tarw_close(struct tarw *w, char diffid[72], char blob[72], uint64_t *blob_size)
{
	int rc = 0;
	if (archive_write_close(w->tar) != ARCHIVE_OK)
		rc = la_fail(w, w->tar, "close");
	if (rc == 0 && w->raw) {
		if (archive_write_finish_entry(w->raw) != ARCHIVE_OK || archive_write_close(w->raw) != ARCHIVE_OK)
			rc = la_fail(w, w->raw, "close");
	}
	hasher_stop(&w->hash);
	if (rc == 0) {
		hex_digest(w->diff_md, diffid);
		if (w->raw)
			hex_digest(w->blob_md, blob);
		else
			strcpy(blob, diffid);
		*blob_size = w->blob_bytes;
	}
	tarw_abort(w);
	return rc;
}

void tarw_abort(struct tarw *w)
{
	if (!w)
		return;
	if (w->tar)
		archive_write_free(w->tar);
	if (w->raw)
		archive_write_free(w->raw);
	hasher_stop(&w->hash);
	EVP_MD_CTX_free(w->diff_md);
	EVP_MD_CTX_free(w->blob_md);
	free(w);
}
