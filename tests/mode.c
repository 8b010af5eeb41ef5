/* SPDX-License-Identifier: MIT */
/*
 * cfork_setmode() and cfork_getconfig(): the mode a program chooses
 * overrides CFORK_MODE for every later cfork(), in its children too; an
 * unknown mode is refused; the configuration read back is the one in
 * force (mode, effective method, signal, bound, policy, loaded in time),
 * copied by the size contract.
 *
 * The environment is read once, at load, so the checks run in copies of
 * this program (--child) with stderr captured: one with CFORK_MODE=direct,
 * CFORK_SIGNAL=40, CFORK_TIMEOUT_MS=30000 and CFORK_ON_TIMEOUT=fail, one
 * with no CFORK_ variable.  Linked the usual way (libcfork before libc),
 * neither may print a line, and both must read late = 0.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/wait.h>

#include "cfork.h"
#include "run.h"

static void get(struct cfork_config *c)
{
	memset(c, 0xa5, sizeof *c);
	CHECK(cfork_getconfig(c, sizeof *c) == 0);
}

/* One cfork (its child checks that it inherited mode); returns the
 * report's method. */
static int cfork_method(int mode, struct cfork_report *r)
{
	pid_t pid = cfork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct cfork_config c;
		_exit(cfork_getconfig(&c, sizeof c) == 0 && c.mode == mode ?
		      0 : 1);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(cfork_last_report(r, sizeof *r) == 0);
	CHECK(r->pid == pid);
	return r->method;
}

/* The method a cfork takes, as getconfig predicts it. */
static int method_of(int effective)
{
	return effective == CFORK_MODE_DIRECT ? CFORK_METHOD_DIRECT
					      : CFORK_METHOD_QUIESCE;
}

static void check_setmode(void)
{
	struct cfork_config c;
	struct cfork_report r;

	/* The program's choice beats CFORK_MODE, both ways. */
	CHECK(cfork_setmode(CFORK_MODE_QUIESCE) == 0);
	get(&c);
	CHECK(c.mode == CFORK_MODE_QUIESCE);
	CHECK(c.effective == CFORK_MODE_QUIESCE && c.why_direct == NULL);
	CHECK(cfork_method(CFORK_MODE_QUIESCE, &r) == CFORK_METHOD_QUIESCE);
	CHECK(r.coherent == 1 && r.parked >= 1);

	CHECK(cfork_setmode(CFORK_MODE_DIRECT) == 0);
	get(&c);
	CHECK(c.mode == CFORK_MODE_DIRECT && c.effective == CFORK_MODE_DIRECT);
	CHECK(c.why_direct &&
	      !strcmp(c.why_direct, "cfork_setmode(CFORK_MODE_DIRECT)"));
	CHECK(cfork_method(CFORK_MODE_DIRECT, &r) == CFORK_METHOD_DIRECT);
	CHECK(r.parked == 0 && r.not_coherent &&
	      !strcmp(r.not_coherent, c.why_direct));

	/* Auto: whatever the probe says, cfork does what getconfig said. */
	CHECK(cfork_setmode(CFORK_MODE_AUTO) == 0);
	get(&c);
	CHECK(c.mode == CFORK_MODE_AUTO);
	CHECK(c.effective == CFORK_MODE_QUIESCE ||
	      c.effective == CFORK_MODE_DIRECT);
	CHECK((c.effective == CFORK_MODE_DIRECT) == (c.why_direct != NULL));
	CHECK(cfork_method(CFORK_MODE_AUTO, &r) == method_of(c.effective));

	/* Unknown modes: refused, and the mode stays. */
	const int bad[] = { -1, 3, 42, INT_MAX, INT_MIN };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		CHECK(cfork_setmode(bad[i]) == -1 && errno == EINVAL);
		get(&c);
		CHECK(c.mode == CFORK_MODE_AUTO);
	}
}

/* At most size bytes are written; past the structure, up to size, zeros. */
static void check_size(void)
{
	struct cfork_config c;
	get(&c);
	unsigned char buf[sizeof c + 32];

	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_getconfig((struct cfork_config *)(void *)buf,
			      sizeof buf) == 0);
	CHECK(memcmp(buf, &c, sizeof c) == 0);
	for (size_t i = sizeof c; i < sizeof buf; i++)
		CHECK(buf[i] == 0);

	/* An older, shorter structure: up to signo. */
	size_t part = offsetof(struct cfork_config, signo) + sizeof c.signo;
	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_getconfig((struct cfork_config *)(void *)buf, part) == 0);
	CHECK(memcmp(buf, &c, part) == 0);
	for (size_t i = part; i < sizeof buf; i++)
		CHECK(buf[i] == 0xa5);

	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_getconfig((struct cfork_config *)(void *)buf, 0) == 0);
	for (size_t i = 0; i < sizeof buf; i++)
		CHECK(buf[i] == 0xa5);

	errno = 0;
	CHECK(cfork_getconfig(NULL, sizeof c) == -1 && errno == EINVAL);
}

/* argv[2]: "set" (the variables below) or "default" (none). */
static int child_main(const char *which)
{
	t_alarm(60);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, t_sleeper, NULL) == 0);
	struct cfork_config c;
	struct cfork_report r;
	get(&c);
	CHECK(c.late == 0);
	if (!strcmp(which, "set")) {
		CHECK(c.mode == CFORK_MODE_DIRECT);
		CHECK(c.effective == CFORK_MODE_DIRECT);
		CHECK(c.why_direct && !strcmp(c.why_direct, "CFORK_MODE=direct"));
		CHECK(c.signo == 40);
		CHECK(c.timeout_ms == 30000);
		CHECK(c.on_timeout == CFORK_ON_TIMEOUT_FAIL);
		CHECK(cfork_method(CFORK_MODE_DIRECT, &r) ==
		      CFORK_METHOD_DIRECT);
		check_setmode();
	} else {
		CHECK(c.mode == CFORK_MODE_AUTO);
		CHECK(c.signo == SIGRTMAX - 6);
		CHECK(c.timeout_ms == 1000);
		CHECK(c.on_timeout == CFORK_ON_TIMEOUT_FORK);
		CHECK(cfork_method(CFORK_MODE_AUTO, &r) ==
		      method_of(c.effective));
		check_setmode();
	}
	check_size();
	/* The settings read from the environment did not move. */
	get(&c);
	CHECK(c.signo == (!strcmp(which, "set") ? 40 : SIGRTMAX - 6));
	CHECK(c.late == 0);
	return T_PASS;
}


int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	t_alarm(120);
	char *self = t_self();
	static struct t_output o;

	static const char *const set[] = {
		"CFORK_MODE=direct", "CFORK_SIGNAL=40",
		"CFORK_TIMEOUT_MS=30000", "CFORK_ON_TIMEOUT=fail", NULL,
	};
	static const char *const none[] = { NULL };
	const struct {
		const char *which;
		const char *const *vars;
	} runs[] = { { "set", set }, { "default", none } };
	for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		char *args[] = { self, "--child", (char *)runs[i].which,
				 NULL };
		t_run(args, runs[i].vars, &o);
		int status = WIFEXITED(o.status) ? WEXITSTATUS(o.status)
						 : T_ERROR;
		if (status != T_PASS || strstr(o.err, "libcfork:")) {
			fprintf(stderr, "FAIL: the copy with %s variables: "
				"exit status %d, stderr:\n%s", runs[i].which,
				status, o.err);
			return status == T_PASS ? T_FAIL : status;
		}
	}
	return T_PASS;
}
