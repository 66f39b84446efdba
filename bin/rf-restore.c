/*
 * rf-restore - rebuild a process from an image (rf-snap's output) on this host.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <jansson.h>
#include "rf_restore.h"

static void
usage(void)
{
	fprintf(stderr, "usage: rf-restore [-nSUw] [-C fd[=ourfd]] [-F fd[=ourfd]] [-i file] "
	    "[-T pid]\n");
	exit(RF_EX_USAGE);
}

static void
add_supply(struct rf_fd_supply **s, size_t *n, char *arg)
{
	const char *es;
	char *eq = strchr(arg, '=');
	int fd, from;

	if (eq)
		*eq++ = '\0';
	fd = strtonum(arg, 0, 1 << 20, &es);
	if (es)
		errx(RF_EX_USAGE, "-F %s: fd %s", arg, es);
	from = eq ? strtonum(eq, 0, INT32_MAX, &es) : fd;
	if (eq && es)
		errx(RF_EX_USAGE, "-F %s=%s: fd %s", arg, eq, es);
	if (fcntl(from, F_GETFD) == -1)
		errx(RF_EX_NOINPUT, "-F %d: our fd %d is not open", fd, from);
	if ((*s = reallocarray(*s, *n + 1, sizeof(**s))) == NULL)
		err(RF_EX_OSERR, NULL);
	(*s)[(*n)++] = (struct rf_fd_supply){ fd, from, 0 };
}

static int
print_reply(const struct rf_restore *rs)
{
	json_t *o, *a;
	size_t i;
	char *s;
	int r;

	a = json_array();
	for (i = 0; i < rs->nreplaced; i++)
		json_array_append_new(a, json_integer(rs->replaced[i]));
	o = json_pack("{s:i, s:o, s:b}", "pid", (int)rs->pid, "replaced", a,
	    "exe", rs->exe_set);
	if (o != NULL && rs->o.fwd)
		json_object_set_new(o, "listener", json_integer(rs->listener));
	if (o == NULL || (s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT)) == NULL)
		return -1;
	r = printf("%s\n", s) < 0 || fflush(stdout) == EOF ? -1 : 0;
	free(s);
	json_decref(o);
	return r;
}

int
main(int argc, char *argv[])
{
	struct rf_restore_opts o = { 0 };
	struct rf_fd_supply *supply = NULL;
	struct rf_restore rs;
	struct rf_proc p = { 0 };
	struct rf_imgr r;
	struct rf_err e = { 0 };
	struct rlimit rl;
	const char *in = NULL, *es;
	int ch, fd = 0, nflag = 0, wflag = 0, st;
	size_t i, nsupply = 0;
	char *json;

	while ((ch = getopt(argc, argv, "C:F:hi:nST:Uw")) != -1) {
		switch (ch) {
		case 'C':
			if (o.fwd)
				usage();
			o.fwd = 1;
			add_supply(&supply, &nsupply, optarg);
			break;
		case 'F':
			add_supply(&supply, &nsupply, optarg);
			break;
		case 'i':
			in = optarg;
			break;
		case 'n':
			nflag = 1;
			break;
		case 'S':
			o.leave_stopped = 1;
			break;
		case 'T':
			o.pid = strtonum(optarg, 2, INT32_MAX, &es);
			if (es)
				errx(RF_EX_USAGE, "-T %s: pid %s", optarg, es);
			o.sibling = 1;
			break;
		case 'U':
			o.no_root = 1;
			break;
		case 'w':
			wflag = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 0 || (nflag && (wflag || o.leave_stopped || nsupply || o.pid)) ||
	    (o.sibling && wflag))
		usage();
	o.supply = supply;
	o.nsupply = nsupply;

	if (in && (fd = open(in, O_RDONLY | O_CLOEXEC)) == -1)
		err(rf_errno_code(errno), "%s", in);
	signal(SIGPIPE, SIG_IGN);
	/* Room for the image's fds and our own beside them. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	if (rf_imgr_start(&r, fd, &p, &e) == -1)
		errx(e.code, "%s", e.msg);
	if (rf_restore_check(&rs, &p, &o, !nflag, &e) == -1)
		errx(e.code, "%s", e.msg);
	if (nflag) {
		r.lazy_ok = 1;	/* a post-copy image is checked, not restored */
		if (rf_restore_drain(&r, &e) == -1)
			errx(e.code, "%s", e.msg);
		if ((json = rf_meta_dump(&p, 2)) == NULL)
			err(RF_EX_SOFTWARE, "metadata");
		if (printf("%s\n", json) < 0 || fflush(stdout) == EOF)
			err(RF_EX_IOERR, "stdout");
		return RF_EX_OK;
	}
	if (rf_restore_run(&rs, &r, &e) == -1)
		errx(e.code, "%s", e.msg);
	for (i = 0; i < rs.nwarn; i++)
		warnx("%s", rs.warn[i]);
	/*
	 * The reply goes out while the process is still held: once let go it
	 * may take our CPU, and whoever waits for its pid would wait for it.
	 */
	if (print_reply(&rs) == -1) {
		rf_restore_abort(&rs);
		err(RF_EX_IOERR, "stdout");
	}
	if (rf_restore_release(&rs, &e) == -1)
		errx(e.code, "%s", e.msg);
	if (!wflag)
		return RF_EX_OK;
	/* Like system(3): a terminal's ^C is for the process, not for us. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(rs.pid, &st, 0) == -1)
		if (errno != EINTR)
			err(RF_EX_OSERR, "waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
