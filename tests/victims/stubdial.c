/*
 * stubdial - stands in for the dialing half of rf-stub (not built yet) in
 * tests/librfork.bats: takes rf-stub's future arguments ([-k key] [-x fds]
 * -- host token), connects to the unix socket $FAKE_DIR/sock.PID where
 * build/tests/forkwire waits, and execs the real rf-stub ($FAKE_BIN) on
 * that connection, keeping pid, parent and fds.  Started early (-K), it
 * first waits for the answer as rf-stub does (victim.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/types.h>
#include <unistd.h>
#include "victim.h"

int
main(int argc, char *argv[])
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char stub[4096], cfd[16], *x = NULL;
	int c, i;

	if (stub_verdict(&argc, &argv) == -1)
		return 0;
	for (i = 1; i < argc - 1; i++)
		if (strcmp(argv[i], "-x") == 0)
			x = argv[i + 1];
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/sock.%d", getenv("FAKE_DIR"), (int)getpid());
	snprintf(stub, sizeof(stub), "%s/rf-stub", getenv("FAKE_BIN"));
	if ((c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) == -1) {
		perror("stubdial");
		return 69;
	}
	/* The connection must survive the exec: clear its close-on-exec. */
	c = dup(c);
	snprintf(cfd, sizeof(cfd), "%d", c);
	if (x != NULL)
		execl(stub, "rf-stub", "-x", x, "-c", cfd, (char *)NULL);
	else
		execl(stub, "rf-stub", "-c", cfd, (char *)NULL);
	perror(stub);
	return 69;
}
