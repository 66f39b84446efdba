/*
 * rf-snap - dump a stopped process to an image.
 * Usage: rf-snap [-lsuz] [-M] [-o FILE] PID
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include "rf_snap.h"

static void
usage(void)
{
	fprintf(stderr, "usage: rf-snap [-lsuUz] [-c addr:gen] [-M] [-o file] [-w seconds] pid\n");
	exit(RF_EX_USAGE);
}

/* Dump pid to fd: the image, or with meta only its metadata as JSON. */
static int
snap(pid_t pid, const struct rf_snap_opt *o, int meta, int fd, struct rf_err *e)
{
	struct rf_proc p;
	char *json = NULL;
	int ok;

	ok = rf_snap_take(pid, o, &p, meta ? -1 : fd, e) == 0;
	if (ok && meta) {
		if ((json = rf_meta_dump(&p, 2)) == NULL)
			ok = rf_errno(e, "metadata") == 0;
		else if (rf_writen(fd, json, strlen(json)) == -1 ||
		    rf_writen(fd, "\n", 1) == -1) {
			rf_errno(e, "write");
			e->code = RF_EX_IOERR;
			ok = 0;
		}
	}
	free(json);
	rf_proc_free(&p);
	return ok ? 0 : -1;
}

int
main(int argc, char *argv[])
{
	struct rf_err e = { 0 };
	const char *out = NULL, *errstr;
	struct rf_snap_opt o = { 0 };
	char *end;
	int ch, Mflag = 0, fd = STDOUT_FILENO, created = 0;
	pid_t pid;

	while ((ch = getopt(argc, argv, "c:hlMo:suUw:z")) != -1) {
		switch (ch) {
		case 'c':
			errno = 0;
			o.selfrec = strtoull(optarg, &end, 0);
			if (errno == 0 && *end == ':')
				o.selfgen = strtoull(end + 1, &end, 10);
			if (errno != 0 || *end != '\0' || o.selfrec == 0 || o.selfgen == 0)
				errx(RF_EX_USAGE, "-c %s: not addr:gen", optarg);
			break;
		case 'w':
			o.wait = strtonum(optarg, 1, 3600, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-w %s: %s", optarg, errstr);
			break;
		case 'l':
			o.lazy = 1;
			break;
		case 'M':
			Mflag = 1;
			break;
		case 'o':
			out = optarg;
			break;
		case 's':
			o.stop = 1;
			break;
		case 'u':
			o.flags |= RF_SNAP_FILTER_OK;
			break;
		case 'U':
			o.raw = 1;
			break;
		case 'z':
			o.keep_zero = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		usage();
	pid = (pid_t)strtonum(argv[0], 1, INT32_MAX, &errstr);
	if (errstr != NULL)
		errx(RF_EX_USAGE, "pid %s: %s", argv[0], errstr);

	/* a reader that goes away is a write error (74), not a silent death */
	signal(SIGPIPE, SIG_IGN);
	if (out != NULL) {
		/* remove only a file we made, never what was there (/dev/full) */
		if ((fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)) != -1)
			created = 1;
		else if (errno != EEXIST ||
		    (fd = open(out, O_WRONLY | O_TRUNC | O_CLOEXEC)) == -1)
			err(errno == EACCES || errno == EPERM ? RF_EX_NOPERM : RF_EX_IOERR,
			    "%s", out);
	}
	if (!Mflag && isatty(fd))
		errx(RF_EX_USAGE, "will not write an image to a terminal; use -o file"
		    " or a pipe");
	if (!Mflag)
		fcntl(fd, F_SETPIPE_SZ, 1 << 20);	/* fails on a file: fine */

	o.pagemap_read = getenv("RFORK_PAGEMAP") != NULL &&
	    strcmp(getenv("RFORK_PAGEMAP"), "read") == 0;
	if (snap(pid, &o, Mflag, fd, &e) == -1)
		goto fail;
	if (close(fd) == -1) {
		rf_errno(&e, "%s", out != NULL ? out : "stdout");
		e.code = RF_EX_IOERR;
		goto fail;
	}
	return RF_EX_OK;
fail:
	if (created)
		unlink(out);
	errx(e.code ? e.code : RF_EX_SOFTWARE, "%s", e.msg);
}
