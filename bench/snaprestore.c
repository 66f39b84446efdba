/*
 * snaprestore [MIB...] - issue 2's benchmark: rf-snap and rf-restore times and
 * the image size for processes with MIB MiB touched (default 4 256 1024),
 * beside baselines measured in the same run: the same bytes through a pipe
 * into fresh memory, and memcpy into fresh memory.  Each restored copy checks
 * its own memory and must exit 0.  Run from the top of the tree (make bench).
 */
#include <err.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Spawn argv with stdin/stdout redirected to in/out (-1: inherit). */
static pid_t
spawn(char *const argv[], int in, int out)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	if (in != -1)
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	if (out != -1)
		posix_spawn_file_actions_adddup2(&fa, out, 1);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		err(71, "spawn %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static int
wait_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) == -1)
		err(71, "waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static pid_t
start_hog(size_t mib)
{
	char arg[32];
	char *argv[] = { "build/bench/hog", arg, NULL };
	pid_t pid;
	int st;

	snprintf(arg, sizeof(arg), "%zu", mib);
	pid = spawn(argv, -1, -1);
	if (waitpid(pid, &st, WUNTRACED) == -1 || !WIFSTOPPED(st))
		errx(70, "hog did not stop");
	return pid;
}

/* Read rf-restore's JSON line, return the restored pid. */
static pid_t
read_pid(int fd)
{
	char buf[4096], *p;
	ssize_t n = 0, r;

	while (n < (ssize_t)sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
		n += r;
		if (memchr(buf, '\n', n))
			break;
	}
	buf[n > 0 ? n : 0] = '\0';
	if ((p = strstr(buf, "\"pid\":")) == NULL)
		errx(70, "rf-restore printed no pid: %s", buf);
	return atoi(p + 6 + (p[6] == ' '));
}

/* Wait for a restored copy (our descendant, reparented to us) to finish. */
static void
reap_copy(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) == -1)
		err(71, "waitpid restored %d", pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		errx(70, "restored copy %d failed its memory check (status %#x)", pid, st);
}

static double
restore_from(const char *img, pid_t *pid)
{
	char *argv[] = { "build/bin/rf-restore", "-i", (char *)img, NULL };
	int pfd[2];
	double t0, t;
	pid_t rp;

	if (pipe2(pfd, O_CLOEXEC) == -1)
		err(71, "pipe");
	t0 = now();
	rp = spawn(argv, -1, pfd[1]);
	close(pfd[1]);
	*pid = read_pid(pfd[0]);
	t = now() - t0;
	close(pfd[0]);
	if (wait_status(rp) != 0)
		errx(70, "rf-restore failed");
	return t;
}

static double
baseline_pipe(size_t n)
{
	char *src, *dst;
	int pfd[2];
	double t0, t;
	size_t got = 0;
	pid_t w;

	src = malloc(1 << 20);
	memset(src, 7, 1 << 20);
	if (pipe2(pfd, O_CLOEXEC) == -1)
		err(71, "pipe");
	fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20);
	dst = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	t0 = now();
	if ((w = fork()) == 0) {
		size_t left = n;
		close(pfd[0]);
		while (left) {
			ssize_t r = write(pfd[1], src, left < (1 << 20) ? left : (1 << 20));
			if (r <= 0)
				_exit(1);
			left -= r;
		}
		_exit(0);
	}
	close(pfd[1]);
	while (got < n) {
		ssize_t r = read(pfd[0], dst + got, n - got < (1 << 20) ? n - got : (1 << 20));
		if (r <= 0)
			errx(70, "pipe baseline short");
		got += r;
	}
	t = now() - t0;
	close(pfd[0]);
	wait_status(w);
	munmap(dst, n);
	free(src);
	return t;
}

static double
baseline_memcpy(size_t n)
{
	char *src, *dst;
	double t0, t;

	src = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(src, 7, n);
	t0 = now();
	memcpy(dst, src, n);
	t = now() - t0;
	munmap(src, n);
	munmap(dst, n);
	return t;
}

int
main(int argc, char *argv[])
{
	size_t sizes[16] = { 4, 256, 1024 }, nsizes = 3, i, k;
	const char *img = "/dev/shm/rfork-bench.img";
	char pidarg[16];

	if (argc > 1)
		for (nsizes = 0; nsizes < 16 && nsizes + 1 < (size_t)argc; nsizes++)
			sizes[nsizes] = atol(argv[nsizes + 1]);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		err(71, "subreaper");
	printf("%-7s %9s %9s %9s %9s %11s %9s %9s %9s\n", "touched", "snap ms", "restore",
	    "snap|rest", "pipe->new", "ratio", "memcpy", "image MiB", "img/touch");
	for (i = 0; i < nsizes; i++) {
		size_t mib = sizes[i], n = mib << 20;
		double ts, tr, tp, tb, tm, trs[64], tsr;
		struct stat st;
		int fd, pfd[2], runs = mib <= 16 ? 50 : 3;
		pid_t hog, snap, rest, copy;

		hog = start_hog(mib);
		snprintf(pidarg, sizeof(pidarg), "%d", hog);
		char *sargv[] = { "build/bin/rf-snap", pidarg, NULL };
		/* Medians: the first touch of guest memory on these VMs is slow and
		   erratic, and a single large run mostly measures that. */
		for (k = 0; k < (size_t)runs; k++) {
			fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			trs[k] = now();
			snap = spawn(sargv, -1, fd);
			if (wait_status(snap) != 0)
				errx(70, "rf-snap failed");
			trs[k] = now() - trs[k];
			close(fd);
		}
		qsort(trs, runs, sizeof(double), cmp_double);
		ts = trs[runs / 2];
		stat(img, &st);

		for (k = 0; k < (size_t)runs; k++) {
			trs[k] = restore_from(img, &copy);
			reap_copy(copy);
		}
		qsort(trs, runs, sizeof(double), cmp_double);
		tr = trs[runs / 2];

		/* snap | restore as one pipeline, the way a migration runs */
		char *rargv[] = { "build/bin/rf-restore", NULL };
		int out[2];
		if (pipe2(pfd, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1)
			err(71, "pipe");
		tsr = now();
		snap = spawn(sargv, -1, pfd[1]);
		rest = spawn(rargv, pfd[0], out[1]);
		close(pfd[0]);
		close(pfd[1]);
		close(out[1]);
		copy = read_pid(out[0]);
		tsr = now() - tsr;
		close(out[0]);
		if (wait_status(snap) != 0 || wait_status(rest) != 0)
			errx(70, "snap | restore failed");
		reap_copy(copy);
		kill(hog, SIGKILL);
		wait_status(hog);

		tp = baseline_pipe(n);
		tb = tsr / tp;
		tm = baseline_memcpy(n);
		printf("%4zuMiB %9.2f %9.2f %9.2f %9.2f %10.2fx %9.2f %9.2f %9.4f\n", mib,
		    ts * 1e3, tr * 1e3, tsr * 1e3, tp * 1e3, tb, tm * 1e3,
		    st.st_size / 1048576.0, (double)st.st_size / n);
		fflush(stdout);
	}
	unlink(img);
	printf("snap, restore: medians of 50 runs (<= 16 MiB) or 3; snap|rest and baselines: one run;\n"
	    "ratio = (snap|restore) / (pipe->new), the issue's 1.5x target\n");
	return 0;
}
