/*
 * forkwire [-L] -i IMG -s SOCK -p PPID -c CPID -k K RESTORE: the remote side of
 * a remote fork on this host, for tests (docs/FORK.md step 6): a pid
 * namespace whose proxy has pid PPID spawns "RESTORE -C K=fd -T CPID -i
 * IMG", takes the restored child's seccomp listener, prints "ready", accepts
 * the stub's connection on the unix socket SOCK and serves the child until
 * it ends.  Exits with the proxy's status.  -L: no rf-restore program; the
 * proxy restores in-process with the library (rf_restore_run with a pid),
 * as a server can, which also works in a user namespace (an exec'd
 * rf-restore would lose the capabilities set_tid needs there).
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include "rf_fwd.h"
#include "rf_restore.h"

static const char ctlmsg[] = "remote child";

struct wire {
	const char *img, *restore;
	int lsock, k, inproc;
	pid_t cpid;
};

/* The library's way: the proxy is the parent; returns the listener's number. */
static int
restore_here(struct wire *w, int ctlfd)
{
	struct rf_fd_supply sup = { w->k, ctlfd, 0 };
	struct rf_restore_opts ro = { .supply = &sup, .nsupply = 1, .fwd = 1,
	    .pid = w->cpid };
	struct rf_restore rs;
	struct rf_proc p = { 0 };
	struct rf_imgr r;
	struct rf_err e = { 0 };
	size_t i;
	int fd;

	if ((fd = open(w->img, O_RDONLY | O_CLOEXEC)) == -1)
		err(RF_EX_NOINPUT, "%s", w->img);
	if (rf_imgr_start(&r, fd, &p, &e) == -1 || rf_restore_check(&rs, &p, &ro, 1, &e) == -1 ||
	    rf_restore_run(&rs, &r, &e) == -1 || rf_restore_release(&rs, &e) == -1)
		errx(e.code, "restore: %s", e.msg);
	for (i = 0; i < rs.nwarn; i++)
		warnx("%s", rs.warn[i]);
	fprintf(stderr, "forkwire: restored in-process: pid %d listener %d\n", (int)rs.pid,
	    rs.listener);
	close(fd);
	return rs.listener;
}

static int
proxy_main(void *arg)
{
	struct wire *w = arg;
	struct rf_proxy_opts o;
	struct rf_fwd_io io;
	struct rf_err e;
	char buf[512], carg[32], tid[16], *l;
	int ctl[2], out[2], st, lfd, pidfd, conn;
	size_t len = 0;
	ssize_t n;
	siginfo_t si;
	pid_t r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) == -1 ||
	    pipe2(out, O_CLOEXEC) == -1)
		err(RF_EX_OSERR, "socketpair");
	if (w->inproc) {
		lfd = restore_here(w, ctl[1]);
		close(ctl[1]);
		goto stopped;
	}
	if ((r = fork()) == -1)
		err(RF_EX_OSERR, "fork");
	if (r == 0) {
		dup2(out[1], 1);
		fcntl(ctl[1], F_SETFD, 0);
		snprintf(carg, sizeof(carg), "%d=%d", w->k, ctl[1]);
		snprintf(tid, sizeof(tid), "%d", (int)w->cpid);
		execl(w->restore, "rf-restore", "-C", carg, "-T", tid, "-i", w->img,
		    (char *)NULL);
		err(RF_EX_OSERR, "%s", w->restore);
	}
	close(out[1]);
	close(ctl[1]);
	while (len < sizeof(buf) - 1 && (n = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	buf[len] = '\0';
	if (waitpid(r, &st, 0) == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		errx(WIFEXITED(st) ? WEXITSTATUS(st) : RF_EX_SOFTWARE, "rf-restore failed");
	fprintf(stderr, "forkwire: rf-restore: %s", buf);
	if ((l = strstr(buf, "\"listener\":")) == NULL)
		errx(RF_EX_PROTOCOL, "rf-restore: no listener in its reply");
	lfd = atoi(l + strlen("\"listener\":"));
stopped:
	if (waitid(P_PID, w->cpid, &si, WSTOPPED | WEXITED) == -1)
		err(RF_EX_OSERR, "waitid");
	if (si.si_code != CLD_STOPPED)
		errx(RF_EX_SOFTWARE, "the restored child ended (code %d status %d)",
		    si.si_code, si.si_status);
	if ((pidfd = syscall(SYS_pidfd_open, w->cpid, 0)) == -1 ||
	    (lfd = syscall(SYS_pidfd_getfd, pidfd, lfd, 0)) == -1)
		err(RF_EX_OSERR, "pidfd_getfd");
	close(pidfd);
	printf("ready\n");
	fflush(stdout);
	if ((conn = accept4(w->lsock, NULL, NULL, SOCK_CLOEXEC)) == -1)
		err(RF_EX_OSERR, "accept");
	close(w->lsock);
	kill(w->cpid, SIGCONT);
	memset(&o, 0, sizeof(o));
	o.lfd = lfd;
	o.connfd = conn;
	o.child = w->cpid;
	o.ctlfd = w->k;
	o.ctlmsg = ctlmsg;
	o.ctlmsglen = sizeof(ctlmsg);
	o.verbose = getenv("RF_FWD_VERBOSE") != NULL;
	rf_fwd_io_fd(&io, &conn);
	memset(&e, 0, sizeof(e));
	if (rf_proxy_serve(&io, &o, &st, &e) == -1) {
		warnx("proxy: %s", e.msg);
		return e.code ? e.code : RF_EX_SOFTWARE;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: forkwire [-L] -i img -s sock -p ppid -c cpid -k fd "
	    "[rf-restore]\n");
	exit(RF_EX_USAGE);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct wire w = { 0 };
	const char *sock = NULL, *es = NULL;
	pid_t ppid = 0, init;
	int ch, st, userns;

	while ((ch = getopt(argc, argv, "c:i:k:Lp:s:")) != -1) {
		switch (ch) {
		case 'c':
			w.cpid = strtonum(optarg, 2, INT32_MAX, &es);
			break;
		case 'i':
			w.img = optarg;
			break;
		case 'k':
			w.k = strtonum(optarg, 0, 1 << 20, &es);
			break;
		case 'L':
			w.inproc = 1;
			break;
		case 'p':
			ppid = strtonum(optarg, 2, INT32_MAX, &es);
			break;
		case 's':
			sock = optarg;
			break;
		default:
			usage();
		}
		if (es)
			usage();
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 || (!w.inproc && argc != 1) || !w.img || !sock || !ppid || !w.cpid)
		usage();
	w.restore = argc ? argv[0] : NULL;
	strlcpy(a.sun_path, sock, sizeof(a.sun_path));
	if ((w.lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(w.lsock, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(w.lsock, 1) == -1)
		err(RF_EX_OSERR, "%s", sock);
	fflush(stdout);
	if ((init = rf_fwdns_spawn(ppid, proxy_main, &w, &userns)) == -1)
		err(RF_EX_OSERR, "pid namespace");
	if (userns)
		fprintf(stderr, "forkwire: in a new user namespace\n");
	close(w.lsock);
	if (waitpid(init, &st, 0) == -1)
		err(RF_EX_OSERR, "waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
