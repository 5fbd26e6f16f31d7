/* main.c - layer-tool's command line: the subcommands, their options,
 * --help and --version.  The work is in commit.c, diff.c, apply.c and
 * oci.c. */
#define _GNU_SOURCE
#include "lt.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *lt_usage_text =
	"Usage:\n"
	"  layer-tool diff UPPER [--lower L1:L2...] [--json]\n"
	"  layer-tool commit UPPER -o LAYER.tar[.gz|.zst|.lz4] [options]\n"
	"  layer-tool commit UPPER --image DIR[:TAG] [--from DIR:TAG] [options]\n"
	"  layer-tool apply LAYER DIR [--aufs]\n"
	"  layer-tool unpack DIR[:TAG] DEST\n"
	"  layer-tool --help | --version\n"
	"\n"
	"diff     list the changes an upper directory holds, as `docker diff`:\n"
	"         A (added), C (changed), D (deleted), sorted by path.\n"
	"         --lower L1:L2   compare with the lower layers (top first): tells A\n"
	"                         from C and leaves out unchanged copy-ups\n"
	"         --json          one JSON array of {\"path\", \"kind\"}\n"
	"commit   write the upper as an OCI image layer (deterministic pax tar).\n"
	"         -o, --output FILE   the layer; compression from the name (.tar,\n"
	"                             .tar.gz/.tgz, .tar.zst, .tar.lz4) or --compress;\n"
	"                             '-' is standard output\n"
	"         --image DIR[:TAG]   append the layer to an OCI image layout (made\n"
	"                             when absent; TAG defaults to 'latest')\n"
	"         --from DIR:TAG      base image for --image (default: DIR:TAG itself\n"
	"                             when it exists)\n"
	"         --compress none|gzip|zstd|lz4  (lz4 is not an OCI media type)\n"
	"         --lower L1:L2       lower layers, needed for renamed directories\n"
	"         --mtime SECONDS     clamp file times to SECONDS since the epoch\n"
	"                             (default: $SOURCE_DATE_EPOCH when set)\n"
	"         -q, --quiet         print nothing on success\n"
	"         Prints the diffID (sha256 of the tar) and the blob digest.\n"
	"apply    unpack a layer (any compression) into DIR, absent or empty, as a\n"
	"         lower layer for layerfs: whiteouts as 0/0 devices, opaque\n"
	"         directories as overlay xattrs.  --aufs keeps the .wh. files.\n"
	"         Hostile entries are refused and DIR is left as it was.\n"
	"unpack   every layer of an image into DEST/1, DEST/2, ... (base first) and\n"
	"         print the `layerfs mount` line that stacks them.\n";

static void usage_error(const char *fmt, const char *arg)
{
	fputs(LT_PROG ": ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see layer-tool --help)\n", stderr);
	exit(2);
}

static int parse_epoch(const char *s, time_t *out)
{
	char *end;
	if (*s == '@')
		s++;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	*out = (time_t)v;
	return 0;
}

static void clamp_from_env(struct commit_opts *o)
{
	const char *e = getenv("SOURCE_DATE_EPOCH");
	if (o->have_mtime || !e || !*e)
		return;
	if (parse_epoch(e, &o->mtime))
		usage_error("SOURCE_DATE_EPOCH='%s' is not a number of seconds", e);
	o->have_mtime = true;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static int compress_from_name(const char *name, enum lt_compress *c)
{
	if (ends_with(name, ".tar"))
		*c = LT_NONE;
	else if (ends_with(name, ".tar.gz") || ends_with(name, ".tgz"))
		*c = LT_GZIP;
	else if (ends_with(name, ".tar.zst") || ends_with(name, ".tar.zstd"))
		*c = LT_ZSTD;
	else if (ends_with(name, ".tar.lz4"))
		*c = LT_LZ4;
	else
		return -1;
	return 0;
}

static int commit_to_file(struct commit_opts *o)
{
	enum lt_compress c = o->compress;
	if (!o->compress_set && strcmp(o->output, "-") && compress_from_name(o->output, &c))
		usage_error("cannot tell the compression from the name '%s'; give --compress", o->output);
	char diffid[72], blob[72];
	uint64_t size = 0;
	if (!strcmp(o->output, "-")) {
		if (commit_layer(o, STDOUT_FILENO, c, diffid, blob, &size))
			return 1;
		if (!o->quiet)
			fprintf(stderr, "diff_id %s\ndigest %s\nsize %llu\n", diffid, blob, (unsigned long long)size);
		return 0;
	}
	/* written beside the target and renamed: no half layer on failure */
	char *dircopy = lt_xstrdup(o->output), *basecopy = lt_xstrdup(o->output);
	char *tmp = lt_xasprintf("%s/.%s.XXXXXX", dirname(dircopy), basename(basecopy));
	free(dircopy);
	free(basecopy);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		lt_err("cannot create '%s' (a temporary file beside it): %s", o->output, strerror(errno));
		free(tmp);
		return 1;
	}
	int rc = commit_layer(o, fd, c, diffid, blob, &size);
	if (rc == 0 && fchmod(fd, 0644) < 0)
		rc = lt_err("%s: chmod: %s", tmp, strerror(errno));
	if (close(fd) < 0 && rc == 0)
		rc = lt_err("%s: close: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, o->output) < 0)
		rc = lt_err("cannot rename '%s' to '%s': %s", tmp, o->output, strerror(errno));
	if (rc)
		unlink(tmp);
	free(tmp);
	if (rc)
		return 1;
	if (!o->quiet)
		printf("diff_id %s\ndigest %s\nsize %llu\n", diffid, blob, (unsigned long long)size);
	return 0;
}

int cmd_commit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "image", required_argument, NULL, 'i' },
		{ "from", required_argument, NULL, 'f' },
		{ "compress", required_argument, NULL, 'c' },
		{ "lower", required_argument, NULL, 'l' },
		{ "mtime", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct commit_opts o;
	memset(&o, 0, sizeof o);
	int ch;
	while ((ch = getopt_long(argc, argv, "o:q", opts, NULL)) != -1) {
		switch (ch) {
		case 'o': o.output = optarg; break;
		case 'i': o.image = optarg; break;
		case 'f': o.from = optarg; break;
		case 'q': o.quiet = true; break;
		case 'c':
			if (compress_parse(optarg, &o.compress))
				usage_error("unknown compression '%s' (none, gzip, zstd, lz4)", optarg);
			o.compress_set = true;
			break;
		case 'l':
			if (split_layer_list(optarg, &o.lowers, &o.nlowers))
				exit(2);
			break;
		case 'm':
			if (parse_epoch(optarg, &o.mtime))
				usage_error("--mtime '%s' is not a number of seconds since the epoch", optarg);
			o.have_mtime = true;
			break;
		default: usage_error("%s", "bad option for commit");
		}
	}
	if (optind + 1 != argc)
		usage_error("%s", "commit takes one UPPER directory");
	o.upper = argv[optind];
	if (!!o.output == !!o.image)
		usage_error("%s", "commit needs one of -o FILE or --image DIR[:TAG]");
	if (o.from && !o.image)
		usage_error("%s", "--from goes with --image");
	clamp_from_env(&o);
	int rc = o.output ? commit_to_file(&o) : (image_append(&o) ? 1 : 0);
	for (size_t i = 0; i < o.nlowers; i++)
		free(o.lowers[i]);
	free(o.lowers);
	return rc;
}

int cmd_apply(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "aufs", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct apply_opts ao = { 0 };
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'a')
			ao.aufs = true;
		else
			usage_error("%s", "bad option for apply");
	}
	if (optind + 2 != argc)
		usage_error("%s", "apply takes LAYER and DIR");
	const char *layer = argv[optind];
	int fd = strcmp(layer, "-") ? open(layer, O_RDONLY | O_CLOEXEC) : dup(STDIN_FILENO);
	if (fd < 0)
		return lt_err("cannot open layer '%s': %s", layer, strerror(errno)) ? 1 : 1;
	ao.what = layer;
	int rc = apply_layer_fd(fd, argv[optind + 1], &ao);
	close(fd);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	/* libarchive converts names with the locale's charset: UTF-8
	 * names must pass as they are, whatever the caller's locale */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	if (argc < 2)
		usage_error("%s", "a command is needed");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(lt_usage_text, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("layer-tool %s\n", LAYERFS_VERSION);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(lt_usage_text, stdout);
			return 0;
		}
	}
	argc--;
	argv++;
	if (!strcmp(cmd, "commit"))
		return cmd_commit(argc, argv);
	if (!strcmp(cmd, "diff"))
		return cmd_diff(argc, argv);
	if (!strcmp(cmd, "apply"))
		return cmd_apply(argc, argv);
	if (!strcmp(cmd, "unpack"))
		return cmd_unpack(argc, argv);
	usage_error("unknown command '%s'", cmd);
	return 2;
}
