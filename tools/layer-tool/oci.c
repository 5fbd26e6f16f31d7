/* oci.c - OCI image layouts (image-spec v1): `commit --image` appends a
 * layer (blob, config with rootfs.diff_ids and a history entry that has
 * "created", manifest, index.json entry tagged with the
 * org.opencontainers.image.ref.name annotation); `unpack` applies every
 * layer of a tagged image into its own lower directory.
 *
 * JSON is read and written with jansson, keys sorted, so the same input
 * gives the same bytes.  Blobs are written beside their final name and
 * renamed; index.json likewise.  Blob names come from digests that are
 * checked to be sha256:<64 hex> and are opened beneath the layout.
 */
#define _GNU_SOURCE
#include "lt.h"

#include "cow/workdir.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define REF_ANNOTATION "org.opencontainers.image.ref.name"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar"
#define JSON_MAX (64 << 20)

struct imgref {
	char *dir;
	char *tag;
};

/* DIR[:TAG]: the tag is after the last ':' that follows the last '/'. */
static int parse_ref(const char *s, struct imgref *r, bool tag_required)
{
	const char *slash = strrchr(s, '/');
	const char *colon = strrchr(slash ? slash : s, ':');
	if (colon) {
		r->dir = strndup(s, (size_t)(colon - s));
		r->tag = lt_xstrdup(colon + 1);
	} else {
		r->dir = lt_xstrdup(s);
		r->tag = tag_required ? lt_xstrdup("latest") : NULL;
	}
	if (!*r->dir)
		return lt_err("'%s': no image directory", s);
	if (r->tag && !*r->tag)
		return lt_err("'%s': empty tag", s);
	return 0;
}

static void ref_free(struct imgref *r)
{
	free(r->dir);
	free(r->tag);
}

static void sha256_hex(const void *data, size_t len, char out[72])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL);
	strcpy(out, "sha256:");
	for (unsigned i = 0; i < dl; i++)
		sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

static char *blob_rel(const char *digest)
{
	return lt_xasprintf("blobs/sha256/%s", digest + 7);
}

/* Opens a blob of the layout for reading; -1 with the error printed. */
static int open_blob(int lfd, const char *dir, const char *digest)
{
	if (!digest_valid(digest))
		return lt_err("%s: bad digest '%s'", dir, digest);
	char *rel = blob_rel(digest);
	int fd = open_beneath(lfd, rel, O_RDONLY, 0);
	if (fd < 0)
		lt_err("%s/%s: %s", dir, rel, strerror(-fd));
	free(rel);
	return fd < 0 ? -1 : fd;
}

/* Reads a JSON file beneath the layout.  want_digest checks its content. */
static json_t *read_json(int lfd, const char *dir, const char *rel, const char *want_digest)
{
	int fd = open_beneath(lfd, rel, O_RDONLY, 0);
	if (fd < 0) {
		lt_err("%s/%s: %s", dir, rel, strerror(-fd));
		return NULL;
	}
	struct lt_buf b = { 0 };
	buf_set_len(&b, 0);
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			lt_err("%s/%s: read: %s", dir, rel, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > JSON_MAX) {
			lt_err("%s/%s: larger than %d MiB", dir, rel, JSON_MAX >> 20);
			goto fail;
		}
		size_t old = b.len;
		buf_set_len(&b, old + (size_t)n);
		memcpy(b.s + old, chunk, (size_t)n);
	}
	close(fd);
	fd = -1;
	if (want_digest) {
		char got[72];
		sha256_hex(b.s, b.len, got);
		if (strcmp(got, want_digest)) {
			lt_err("%s/%s: digest mismatch: the content is %s", dir, rel, got);
			goto fail;
		}
	}
	json_error_t je;
	json_t *j = json_loadb(b.s, b.len, 0, &je);
	if (!j || !json_is_object(j)) {
		lt_err("%s/%s: not a JSON object%s%s", dir, rel, j ? "" : ": ", j ? "" : je.text);
		json_decref(j);
		goto fail;
	}
	buf_free(&b);
	return j;
fail:
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	return NULL;
}

/* Writes data as rel beneath the layout: a temporary name, then rename. */
static int write_file_at(int lfd, const char *dir, const char *rel, const void *data, size_t len)
{
	char *tmp = lt_xasprintf("%s.tmp-%d", rel, (int)getpid());
	int fd = open_beneath(lfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int rc = 0;
	if (fd < 0)
		rc = lt_err("%s/%s: %s", dir, tmp, strerror(-fd));
	else {
		int w = write_all(fd, data, len);
		if (close(fd) < 0 && !w)
			w = -errno;
		if (w)
			rc = lt_err("%s/%s: write: %s", dir, tmp, strerror(-w));
		else if (renameat(lfd, tmp, lfd, rel) < 0)
			rc = lt_err("%s/%s: rename: %s", dir, rel, strerror(errno));
		if (rc)
			unlinkat(lfd, tmp, 0);
	}
	free(tmp);
	return rc;
}

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	if (!s) {
		lt_err("out of memory");
		exit(1);
	}
	return s;
}

/* Writes a JSON blob; fills the digest and size. */
static int write_json_blob(int lfd, const char *dir, json_t *j, char digest[72], size_t *size)
{
	char *s = dump(j);
	*size = strlen(s);
	sha256_hex(s, *size, digest);
	char *rel = blob_rel(digest);
	int rc = write_file_at(lfd, dir, rel, s, *size);
	free(rel);
	free(s);
	return rc;
}

static int mkdir_p(const char *path)
{
	char *p = lt_xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			lt_err("%s: mkdir: %s", p, strerror(e));
			free(p);
			return -1;
		}
		*s = '/';
	}
	int rc = 0;
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		rc = lt_err("%s: mkdir: %s", p, strerror(errno));
	free(p);
	return rc;
}

/* Opens a layout directory, creating its skeleton when asked. */
static int open_layout(const char *dir, bool create)
{
	if (create && mkdir_p(dir))
		return -1;
	int lfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0)
		return lt_err("%s: %s", dir, strerror(errno));
	if (!create) {
		struct stat st;
		if (fstatat(lfd, "oci-layout", &st, 0) < 0 || fstatat(lfd, "index.json", &st, 0) < 0) {
			close(lfd);
			return lt_err("%s: not an OCI image layout (no oci-layout or index.json)", dir);
		}
		return lfd;
	}
	if (mkdirat(lfd, "blobs", 0755) < 0 && errno != EEXIST)
		goto fail;
	if (mkdirat(lfd, "blobs/sha256", 0755) < 0 && errno != EEXIST)
		goto fail;
	struct stat st;
	if (fstatat(lfd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) < 0) {
		const char *s = "{\"imageLayoutVersion\":\"1.0.0\"}";
		if (write_file_at(lfd, dir, "oci-layout", s, strlen(s))) {
			close(lfd);
			return -1;
		}
	}
	return lfd;
fail:
	lt_err("%s/blobs/sha256: mkdir: %s", dir, strerror(errno));
	close(lfd);
	return -1;
}

static json_t *load_index(int lfd, const char *dir, bool may_be_absent)
{
	struct stat st;
	if (may_be_absent && fstatat(lfd, "index.json", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		json_t *ix = json_object();
		json_object_set_new(ix, "schemaVersion", json_integer(2));
		json_object_set_new(ix, "mediaType", json_string(MT_INDEX));
		json_object_set_new(ix, "manifests", json_array());
		return ix;
	}
	json_t *ix = read_json(lfd, dir, "index.json", NULL);
	if (ix && !json_is_array(json_object_get(ix, "manifests"))) {
		lt_err("%s/index.json: no manifests array", dir);
		json_decref(ix);
		return NULL;
	}
	return ix;
}

static const char *desc_ref(json_t *desc)
{
	return json_string_value(json_object_get(json_object_get(desc, "annotations"), REF_ANNOTATION));
}

/* The manifest descriptor of a tag (or the only manifest when tag is NULL);
 * NULL when not there (*err set when that is an error already printed). */
static json_t *find_desc(json_t *ix, const char *dir, const char *tag, bool quiet_absent)
{
	json_t *ms = json_object_get(ix, "manifests"), *d;
	size_t i;
	if (!tag) {
		if (json_array_size(ms) == 1)
			return json_array_get(ms, 0);
		tag = "latest";
	}
	json_array_foreach(ms, i, d) {
		const char *r = desc_ref(d);
		if (r && !strcmp(r, tag))
			return d;
	}
	if (!quiet_absent)
		lt_err("%s: no image tagged '%s' in index.json", dir, tag);
	return NULL;
}

struct image {
	json_t *manifest, *config;
};

static int load_image(int lfd, const char *dir, json_t *desc, struct image *im)
{
	im->manifest = im->config = NULL;
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));
	const char *dg = json_string_value(json_object_get(desc, "digest"));
	if (mt && strcmp(mt, MT_MANIFEST))
		return lt_err("%s: the tag names a '%s', not an image manifest", dir, mt);
	if (!dg || !digest_valid(dg))
		return lt_err("%s: index.json: bad manifest digest", dir);
	char *rel = blob_rel(dg);
	im->manifest = read_json(lfd, dir, rel, dg);
	free(rel);
	if (!im->manifest)
		return -1;
	json_t *cd = json_object_get(im->manifest, "config");
	const char *cdg = json_string_value(json_object_get(cd, "digest"));
	if (!cdg || !digest_valid(cdg) || !json_is_array(json_object_get(im->manifest, "layers")))
		return lt_err("%s: manifest %s: no config digest or layers", dir, dg);
	rel = blob_rel(cdg);
	im->config = read_json(lfd, dir, rel, cdg);
	free(rel);
	return im->config ? 0 : -1;
}

static void image_free(struct image *im)
{
	json_decref(im->manifest);
	json_decref(im->config);
}

/* Copies a blob from one layout to another (when not there already). */
static int copy_blob(int from, const char *fdir, int to, const char *tdir, const char *digest)
{
	char *rel = blob_rel(digest);
	struct stat st;
	int rc = 0;
	if (fstatat(to, rel, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		free(rel);
		return 0;
	}
	int in = open_blob(from, fdir, digest);
	if (in < 0) {
		free(rel);
		return -1;
	}
	char *tmp = lt_xasprintf("%s.tmp-%d", rel, (int)getpid());
	int out = open_beneath(to, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		rc = lt_err("%s/%s: %s", tdir, tmp, strerror(-out));
	} else {
		char buf[65536];
		ssize_t n;
		while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
			if (n < 0)
				rc = lt_err("%s/%s: read: %s", fdir, rel, strerror(errno));
			else if (write_all(out, buf, (size_t)n))
				rc = lt_err("%s/%s: write: %s", tdir, tmp, strerror(errno));
		}
		close(out);
		if (rc == 0 && renameat(to, tmp, to, rel) < 0)
			rc = lt_err("%s/%s: rename: %s", tdir, rel, strerror(errno));
		if (rc)
			unlinkat(to, tmp, 0);
	}
	close(in);
	free(tmp);
	free(rel);
	return rc;
}

static const char *oci_arch(void)
{
	struct utsname u;
	static char m[65];
	if (uname(&u) < 0)
		return "amd64";
	if (!strcmp(u.machine, "x86_64"))
		return "amd64";
	if (!strcmp(u.machine, "aarch64"))
		return "arm64";
	if (!strncmp(u.machine, "armv7", 5))
		return "arm";
	if (!strcmp(u.machine, "i686") || !strcmp(u.machine, "i386"))
		return "386";
	snprintf(m, sizeof m, "%s", u.machine);
	return m;
}

static json_t *descriptor(const char *mt, const char *digest, uint64_t size)
{
	json_t *d = json_object();
	json_object_set_new(d, "mediaType", json_string(mt));
	json_object_set_new(d, "digest", json_string(digest));
	json_object_set_new(d, "size", json_integer((json_int_t)size));
	return d;
}

int image_append(const struct commit_opts *o)
{
	struct imgref ir = { 0 }, fr = { 0 };
	struct image base = { 0 };
	json_t *ix = NULL, *fix = NULL;
	int lfd = -1, ffd = -1, rc = -1, blobfd = -1;
	char *tmp = NULL;

	enum lt_compress comp = o->compress_set ? o->compress : LT_GZIP;
	if (comp == LT_LZ4) {
		lt_err("lz4 has no OCI layer media type; use --compress gzip, zstd or none with --image");
		goto out;
	}
	if (parse_ref(o->image, &ir, true))
		goto out;
	if (o->from && parse_ref(o->from, &fr, true))
		goto out;
	if (o->from) {
		/* the base first: a bad --from must not leave a new layout */
		ffd = open_layout(fr.dir, false);
		if (ffd < 0)
			goto out;
		fix = load_index(ffd, fr.dir, false);
		json_t *d = fix ? find_desc(fix, fr.dir, fr.tag, false) : NULL;
		if (!d || load_image(ffd, fr.dir, d, &base))
			goto out;
	}
	lfd = open_layout(ir.dir, true);
	if (lfd < 0)
		goto out;
	ix = load_index(lfd, ir.dir, true);
	if (!ix)
		goto out;
	if (!o->from) {
		json_t *d = find_desc(ix, ir.dir, ir.tag, true);
		if (d && load_image(lfd, ir.dir, d, &base))
			goto out;
	}

	/* the layer blob */
	tmp = lt_xasprintf("blobs/sha256/.layer.tmp-%d", (int)getpid());
	blobfd = open_beneath(lfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (blobfd < 0) {
		lt_err("%s/%s: %s", ir.dir, tmp, strerror(-blobfd));
		goto out;
	}
	char diffid[72], blob[72];
	uint64_t bsize;
	struct commit_opts co = *o;
	co.output = NULL;
	if (commit_layer(&co, blobfd, comp, diffid, blob, &bsize)) {
		unlinkat(lfd, tmp, 0);
		goto out;
	}
	close(blobfd);
	blobfd = -1;
	char *brel = blob_rel(blob);
	int r = renameat(lfd, tmp, lfd, brel);
	if (r < 0)
		lt_err("%s/%s: rename: %s", ir.dir, brel, strerror(errno));
	free(brel);
	if (r < 0) {
		unlinkat(lfd, tmp, 0);
		goto out;
	}

	/* base layers, copied when they come from another layout */
	json_t *layers = json_array();
	if (base.manifest) {
		json_t *l;
		size_t i;
		json_array_foreach(json_object_get(base.manifest, "layers"), i, l) {
			const char *dg = json_string_value(json_object_get(l, "digest"));
			if (!dg || !digest_valid(dg)) {
				lt_err("%s: base manifest: bad layer digest", o->from ? fr.dir : ir.dir);
				json_decref(layers);
				goto out;
			}
			if (o->from && copy_blob(ffd, fr.dir, lfd, ir.dir, dg)) {
				json_decref(layers);
				goto out;
			}
			json_array_append(layers, l);
		}
	}
	const char *lmt = comp == LT_GZIP ? MT_LAYER "+gzip" : comp == LT_ZSTD ? MT_LAYER "+zstd" : MT_LAYER;
	json_array_append_new(layers, descriptor(lmt, blob, bsize));

	/* the config */
	char created[40];
	time_t now = o->have_mtime ? o->mtime : time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *cfg = base.config ? json_deep_copy(base.config) : json_object();
	if (!json_object_get(cfg, "architecture"))
		json_object_set_new(cfg, "architecture", json_string(oci_arch()));
	if (!json_object_get(cfg, "os"))
		json_object_set_new(cfg, "os", json_string("linux"));
	if (!json_is_object(json_object_get(cfg, "config")))
		json_object_set_new(cfg, "config", json_object());
	json_t *rootfs = json_object_get(cfg, "rootfs");
	if (!json_is_object(rootfs) || !json_is_array(json_object_get(rootfs, "diff_ids"))) {
		rootfs = json_object();
		json_object_set_new(rootfs, "type", json_string("layers"));
		json_object_set_new(rootfs, "diff_ids", json_array());
		json_object_set_new(cfg, "rootfs", rootfs);
	}
	json_array_append_new(json_object_get(rootfs, "diff_ids"), json_string(diffid));
	if (!json_is_array(json_object_get(cfg, "history")))
		json_object_set_new(cfg, "history", json_array());
	json_t *h = json_object();
	json_object_set_new(h, "created", json_string(created));
	json_object_set_new(h, "created_by", json_string("layer-tool commit"));
	json_array_append_new(json_object_get(cfg, "history"), h);
	json_object_set_new(cfg, "created", json_string(created));
	char cdigest[72], mdigest[72];
	size_t csize, msize;
	r = write_json_blob(lfd, ir.dir, cfg, cdigest, &csize);
	json_decref(cfg);
	if (r) {
		json_decref(layers);
		goto out;
	}

	/* the manifest */
	json_t *m = json_object();
	json_object_set_new(m, "schemaVersion", json_integer(2));
	json_object_set_new(m, "mediaType", json_string(MT_MANIFEST));
	json_object_set_new(m, "config", descriptor(MT_CONFIG, cdigest, csize));
	json_object_set_new(m, "layers", layers);
	r = write_json_blob(lfd, ir.dir, m, mdigest, &msize);
	json_decref(m);
	if (r)
		goto out;

	/* index.json: the tag moves to the new manifest */
	json_t *ms = json_object_get(ix, "manifests");
	for (size_t i = json_array_size(ms); i-- > 0;) {
		const char *rn = desc_ref(json_array_get(ms, i));
		if (rn && !strcmp(rn, ir.tag))
			json_array_remove(ms, i);
	}
	json_t *d = descriptor(MT_MANIFEST, mdigest, msize);
	json_t *ann = json_object();
	json_object_set_new(ann, REF_ANNOTATION, json_string(ir.tag));
	json_object_set_new(d, "annotations", ann);
	json_array_append_new(ms, d);
	char *s = dump(ix);
	r = write_file_at(lfd, ir.dir, "index.json", s, strlen(s));
	free(s);
	if (r)
		goto out;
	if (!o->quiet)
		printf("diff_id %s\ndigest %s\nsize %llu\nmanifest %s\nimage %s:%s\n", diffid, blob,
		       (unsigned long long)bsize, mdigest, ir.dir, ir.tag);
	rc = 0;
out:
	if (blobfd >= 0)
		close(blobfd);
	free(tmp);
	image_free(&base);
	json_decref(ix);
	json_decref(fix);
	if (lfd >= 0)
		close(lfd);
	if (ffd >= 0)
		close(ffd);
	ref_free(&ir);
	ref_free(&fr);
	return rc;
}

static bool layer_type_ok(const char *mt)
{
	static const char *ok[] = {
		MT_LAYER, MT_LAYER "+gzip", MT_LAYER "+zstd", MT_LAYER "+lz4",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
		if (!strcmp(mt, ok[i]))
			return true;
	return false;
}

/* A path as one entry of a layerfs lower list: ':' and '\' escaped. */
static void print_escaped(const char *p)
{
	for (; *p; p++) {
		if (*p == ':' || *p == '\\')
			putchar('\\');
		putchar(*p);
	}
}

int cmd_unpack(int argc, char **argv)
{
	static const struct option opts[] = { { NULL, 0, NULL, 0 } };
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		fprintf(stderr, LT_PROG ": bad option for unpack (see layer-tool --help)\n");
		return 2;
	}
	if (optind + 2 != argc) {
		fprintf(stderr, LT_PROG ": unpack takes DIR[:TAG] and DEST (see layer-tool --help)\n");
		return 2;
	}
	struct imgref ir = { 0 };
	struct image im = { 0 };
	json_t *ix = NULL;
	int lfd = -1, rc = 1;
	const char *dest = argv[optind + 1];
	size_t nl = 0;

	if (parse_ref(argv[optind], &ir, false))
		goto out;
	lfd = open_layout(ir.dir, false);
	if (lfd < 0)
		goto out;
	ix = load_index(lfd, ir.dir, false);
	json_t *d = ix ? find_desc(ix, ir.dir, ir.tag, false) : NULL;
	if (!d || load_image(lfd, ir.dir, d, &im))
		goto out;
	json_t *layers = json_object_get(im.manifest, "layers"), *l;
	size_t i;
	nl = json_array_size(layers);
	if (nl == 0) {
		lt_err("%s: the image has no layers", ir.dir);
		goto out;
	}
	json_array_foreach(layers, i, l) {
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		if (!mt || !layer_type_ok(mt)) {
			lt_err("%s: layer %zu: media type '%s' is not a tar layer", ir.dir, i + 1, mt ? mt : "");
			goto out;
		}
	}
	bool made_dest = mkdir(dest, 0755) == 0;
	if (!made_dest && errno != EEXIST) {
		lt_err("%s: mkdir: %s", dest, strerror(errno));
		goto out;
	}
	size_t done = 0;
	json_array_foreach(layers, i, l) {
		const char *dg = json_string_value(json_object_get(l, "digest"));
		int bfd = dg ? open_blob(lfd, ir.dir, dg) : lt_err("%s: layer %zu: no digest", ir.dir, i + 1);
		if (bfd < 0)
			goto out;
		char *ldir = lt_xasprintf("%s/%zu", dest, i + 1);
		char *what = lt_xasprintf("%s: layer %zu (%s)", ir.dir, i + 1, dg);
		struct apply_opts ao = { .want_digest = dg, .what = what };
		int r = apply_layer_fd(bfd, ldir, &ao);
		close(bfd);
		free(ldir);
		free(what);
		if (r) {
			/* all or nothing: the layers made so far go too */
			for (size_t k = done; k > 0; k--) {
				char *d = lt_xasprintf("%s/%zu", dest, k);
				remove_tree_at(AT_FDCWD, d);
				free(d);
			}
			if (made_dest)
				rmdir(dest);
			goto out;
		}
		done++;
	}
	printf("layerfs mount ");
	for (size_t k = nl; k > 0; k--) {
		char *ldir = lt_xasprintf("%s/%zu", dest, k);
		print_escaped(ldir);
		free(ldir);
		if (k > 1)
			putchar(':');
	}
	printf(" UPPER MERGED\n");
	rc = 0;
out:
	image_free(&im);
	json_decref(ix);
	if (lfd >= 0)
		close(lfd);
	ref_free(&ir);
	return rc;
}
