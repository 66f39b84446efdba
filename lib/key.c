/* key.c - the pre-shared key file: where it is, and reading it safely. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rf_net.h"

int
rf_key_path(char *buf, size_t n)
{
	const char *s, *home;
	int r;

	if ((s = getenv("RFORK_KEY")) != NULL && *s != '\0')
		r = snprintf(buf, n, "%s", s);
	else if ((home = getenv("HOME")) != NULL && *home != '\0')
		r = snprintf(buf, n, "%s/.config/rfork/key", home);
	else {
		errno = ENOENT;
		return -1;
	}
	if (r < 0 || (size_t)r >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
rf_key_load(const char *path, struct rf_key *key, struct rf_err *e)
{
	uint8_t buf[RF_KEY_MAX + 1];
	char def[4096];
	struct stat st;
	ssize_t n;
	int fd;

	if (path == NULL) {
		if (rf_key_path(def, sizeof(def)) == -1)
			return rf_errno(e, "key: set RFORK_KEY or HOME");
		path = def;
	}

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) == -1) {
		if (errno == ELOOP)
			return rf_errf(e, RF_EX_NOPERM, "key %s: is a symbolic link", path);
		return rf_errno(e, "key %s", path);
	}
	if (fstat(fd, &st) == -1) {
		rf_errno(e, "key %s", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return rf_errf(e, RF_EX_NOPERM, "key %s: not a regular file", path);
	}
	/* Like ssh with private keys: a key others can read is no secret. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return rf_errf(e, RF_EX_NOPERM,
		    "key %s: mode %04o: group or others have access (chmod 600 it)",
		    path, (unsigned)(st.st_mode & 07777));
	}
	n = rf_readn(fd, buf, sizeof(buf));
	close(fd);
	if (n == -1)
		return rf_errno(e, "key %s", path);
	if (n < RF_KEY_MIN || n > RF_KEY_MAX) {
		sodium_memzero(buf, sizeof(buf));
		return rf_errf(e, RF_EX_NOPERM, "key %s: %zd bytes, need %d to %d",
		    path, n, RF_KEY_MIN, RF_KEY_MAX);
	}
	crypto_generichash(key->k, sizeof(key->k), buf, n, NULL, 0);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

void
rf_key_wipe(struct rf_key *key)
{
	sodium_memzero(key, sizeof(*key));
}
