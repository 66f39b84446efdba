/*
 * metaparse FILE [N [warm|fork]] - time rf_meta_load on the metadata in FILE (JSON as
 * rf-snap -M prints it; it is re-dumped compact, as an image carries it).
 *   warm  N loads in a loop in this process
 *   fork  N times: fork, then one load in the child, as rf-server's
 *         handler does; the child's first writes to heap pages fault
 * Prints the median and minimum microseconds and the page faults of a load.
 */
#include <err.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../lib/rf_image.h"
#include "bench.h"

struct sample {
	double us;
	long minflt;
};

static struct sample
one(const char *json, size_t len)
{
	struct rusage r0, r1;
	struct rf_proc p;
	struct rf_err e;
	struct sample s;
	double t;

	getrusage(RUSAGE_SELF, &r0);
	t = now();
	if (rf_meta_load(json, len, &p, &e) == -1)
		errx(1, "%s", e.msg);
	s.us = (now() - t) * 1e6;
	getrusage(RUSAGE_SELF, &r1);
	s.minflt = r1.ru_minflt - r0.ru_minflt;
	rf_proc_free(&p);
	return s;
}

static void
report(const char *what, struct sample *s, int n)
{
	double us[n], flt = 0;
	int i;

	for (i = 0; i < n; i++) {
		us[i] = s[i].us;
		flt += s[i].minflt;
	}
	qsort(us, n, sizeof(*us), cmpd);
	printf("%-5s n=%d median %.1f us  min %.1f us  faults %.1f\n", what, n,
	    us[n / 2], us[0], flt / n);
}

int
main(int argc, char **argv)
{
	struct rf_proc p;
	struct rf_err e;
	struct sample *s;
	char *buf, *json;
	size_t len;
	ssize_t r;
	const char *only;
	int fd, n, i, pfd[2];

	if (argc < 2)
		errx(2, "usage: metaparse file [n [warm|fork]]");
	n = argc > 2 ? atoi(argv[2]) : 200;
	only = argc > 3 ? argv[3] : "";
	if ((fd = open(argv[1], O_RDONLY)) == -1)
		err(1, "%s", argv[1]);
	if ((buf = malloc(RF_META_MAX)) == NULL)
		err(1, NULL);
	for (len = 0; (r = read(fd, buf + len, RF_META_MAX - len)) > 0; len += r)
		;
	if (r == -1)
		err(1, "%s", argv[1]);
	if (rf_meta_load(buf, len, &p, &e) == -1)
		errx(1, "%s", e.msg);
	if ((json = rf_meta_dump(&p, 0)) == NULL)
		err(1, "dump");
	rf_proc_free(&p);
	len = strlen(json);
	printf("%zu bytes\n", len);
	if ((s = calloc(n, sizeof(*s))) == NULL)
		err(1, NULL);

	for (i = 0; i < n; i++)
		s[i] = one(json, len);
	report("warm", s, n);
	if (strcmp(only, "warm") == 0)
		return 0;

	if (pipe(pfd) == -1)
		err(1, "pipe");
	for (i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == -1)
			err(1, "fork");
		if (pid == 0) {
			struct sample x = one(json, len);
			_exit(write(pfd[1], &x, sizeof(x)) != sizeof(x));
		}
		if (read(pfd[0], &s[i], sizeof(s[i])) != sizeof(s[i]))
			errx(1, "child %d said nothing", (int)pid);
		waitpid(pid, NULL, 0);
	}
	report("fork", s, n);
	return 0;
}
