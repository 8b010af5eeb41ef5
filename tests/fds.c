/* SPDX-License-Identifier: MIT */
/*
 * libcfork opens no file descriptor of its own in the processes it is
 * loaded into.  Descriptors with close-on-exec set cannot have been
 * inherited, so any that main() finds was opened at start-up, before it
 * (libunwind's initialisation made a pipe, which CPython's
 * test_pass_fds_redirected saw under the shim).  Then a cfork with a
 * sleeping sibling still parks it (the stack walk works), and leaves no
 * descriptor behind either.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

#include "cfork.h"
#include "test.h"

/* Descriptors with FD_CLOEXEC, other than the one listing them. */
static int cloexec_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		SKIP("cannot list /proc/self/fd");
	int n = 0, self = dirfd(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int fd = atoi(e->d_name);
		int flags = fcntl(fd, F_GETFD);
		if (fd != self && flags >= 0 && (flags & FD_CLOEXEC)) {
			char path[64], target[256] = "";
			snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
			if (readlink(path, target, sizeof target - 1) < 0)
				strcpy(target, "?");
			fprintf(stderr, "fd %d (%s) is close-on-exec\n", fd,
				target);
			n++;
		}
	}
	closedir(d);
	return n;
}

int main(void)
{
	t_alarm(60);
	CHECK(cloexec_fds() == 0);

	pthread_t t;
	CHECK(pthread_create(&t, NULL, t_sleeper, NULL) == 0);
	struct cfork_report r;
	t_cfork_once(&r);
	CHECK(r.method == CFORK_METHOD_QUIESCE);
	CHECK(r.coherent == 1);
	CHECK(r.parked == 1);
	CHECK(cloexec_fds() == 0);
	printf("fds: no descriptor of libcfork's; one sibling parked\n");
	return T_PASS;
}
