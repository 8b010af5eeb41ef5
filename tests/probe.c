/* SPDX-License-Identifier: MIT */
/*
 * cfork_probe(): the API's contract, the fault sign against the tearing
 * test on this kernel, and CFORK_MODE=auto following the verdict.  It also
 * runs inside the VMs of tests/probe-vm.sh, whose kernels differ; its last
 * line is what that script checks:
 *   verdicts small=V thp=V hugetlb=V auto=direct|quiesce hugetlb_auto=...
 */
#include <cfork.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "seccomp.h"
#include "test.h"

static const char *const names[CFORK_PATHS] = { "small", "thp", "hugetlb" };

static const char *vname(int v)
{
	return v == CFORK_COHERENT ? "coherent"
	     : v == CFORK_TEARS ? "tears" : "unknown";
}

static volatile sig_atomic_t sigchld;
static void on_sigchld(int s)
{
	(void)s;
	sigchld++;
}

static void check_contract(void)
{
	struct cfork_probe_result r;
	errno = 0;
	CHECK(cfork_probe(NULL, sizeof r, 0) == -1 && errno == EINVAL);
	errno = 0;
	CHECK(cfork_probe(&r, sizeof r, 0x100) == -1 && errno == EINVAL);

	/* The program sees no child of the probe: no SIGCHLD, nothing to
	 * reap. */
	signal(SIGCHLD, on_sigchld);
	int v = cfork_probe(&r, sizeof r, CFORK_PROBE_FRESH);
	CHECK(v == r.verdict);
	CHECK(!r.cached);
	CHECK(sigchld == 0);
	errno = 0;
	CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
	signal(SIGCHLD, SIG_DFL);

	for (int k = 0; k < CFORK_PATHS; k++) {
		const struct cfork_probe_path *p = &r.path[k];
		CHECK(p->verdict >= CFORK_CANNOT_TELL && p->verdict <= CFORK_TEARS);
		CHECK(p->reason != NULL);
		if (p->verdict != CFORK_CANNOT_TELL)
			CHECK(p->trials >= 2 && p->control_faults == p->trials);
		printf("probe: %-7s %-8s %s (pinned page faulted in %u of %u "
		       "forks, control in %u)%s\n", names[k], vname(p->verdict),
		       p->reason, p->pinned_faults, p->trials,
		       p->control_faults, p->in_use ? "" : " [not in use]");
	}
	printf("probe: overall %s, %.2f ms\n", vname(r.verdict), r.ns / 1e6);

	/* Cached from now on, and a short struct is filled only so far. */
	struct cfork_probe_result again;
	CHECK(cfork_probe(&again, sizeof again, 0) == v);
	CHECK(again.cached);
	for (int k = 0; k < CFORK_PATHS; k++)
		CHECK(again.path[k].verdict == r.path[k].verdict);
	unsigned char buf[sizeof r + 16] __attribute__((aligned(16)));
	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_probe((struct cfork_probe_result *)buf, sizeof(int), 0) == v);
	for (size_t i = sizeof(int); i < sizeof buf; i++)
		CHECK(buf[i] == 0xa5);
	/* A larger one (a newer header's) is zeroed past the library's. */
	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_probe((struct cfork_probe_result *)buf, sizeof buf, 0) == v);
	const struct cfork_probe_result *big = (const void *)buf;
	CHECK(big->verdict == v && big->cached && big->ns == again.ns);
	for (int k = 0; k < CFORK_PATHS; k++)
		CHECK(big->path[k].reason == again.path[k].reason);
	for (size_t i = sizeof r; i < sizeof buf; i++)
		CHECK(buf[i] == 0);
}

/* The tearing test must not contradict the fault sign: a path the sign
 * calls coherent never gives a torn child, and one it says tears does
 * (when the writer raced the forks at all). */
static void check_against_tearing(const char *verdicts[CFORK_PATHS])
{
	struct cfork_probe_result fast, slow;
	cfork_probe(&fast, sizeof fast, 0);
	cfork_probe(&slow, sizeof slow, CFORK_PROBE_THOROUGH | CFORK_PROBE_FRESH);
	CHECK(slow.thorough);
	for (int k = 0; k < CFORK_PATHS; k++) {
		const struct cfork_probe_path *f = &fast.path[k], *s = &slow.path[k];
		printf("tearing: %-7s %u of %u children torn, writer raced %u "
		       "(fault sign: %s)\n", names[k], s->torn, s->forks,
		       s->raced, vname(f->verdict));
		verdicts[k] = vname(f->verdict);
		if (f->verdict == CFORK_COHERENT)
			CHECK(s->torn == 0);
		if (f->verdict == CFORK_TEARS && s->raced > 0)
			CHECK(s->torn > 0);
		if (s->torn)
			CHECK(s->verdict == CFORK_TEARS);
	}
}

static int method_of_one_cfork(void)
{
	struct cfork_report rep;
	t_cfork_once(&rep);
	return rep.method;
}

/* Auto mode (the default) forks directly exactly when every path in use
 * is coherent; hugetlb counts once the process maps such a page. */
static void check_auto(const char **auto_m, const char **huge_m)
{
	struct cfork_probe_result r;
	cfork_probe(&r, sizeof r, 0);
	const struct cfork_probe_path *p = r.path;
	bool direct = p[CFORK_PATH_SMALL].verdict == CFORK_COHERENT &&
		(!p[CFORK_PATH_THP].in_use ||
		 p[CFORK_PATH_THP].verdict == CFORK_COHERENT);
	int m = method_of_one_cfork();
	*auto_m = m == CFORK_METHOD_DIRECT ? "direct" : "quiesce";
	CHECK(m == (direct ? CFORK_METHOD_DIRECT : CFORK_METHOD_QUIESCE));
	struct cfork_report rep;
	cfork_last_report(&rep, sizeof rep);
	if (m == CFORK_METHOD_DIRECT)
		CHECK(rep.coherent && rep.not_coherent == NULL);

	*huge_m = "none";
	size_t len = 2u << 20;
	char *h = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (h == MAP_FAILED)
		return;
	h[0] = 1;
	m = method_of_one_cfork();
	*huge_m = m == CFORK_METHOD_DIRECT ? "direct" : "quiesce";
	if (direct && p[CFORK_PATH_HUGETLB].verdict != CFORK_COHERENT)
		CHECK(m == CFORK_METHOD_QUIESCE);
	munmap(h, len);
}

/* Makes io_uring_setup fail with EPERM in this process and the programs
 * it runs, as a seccomp policy or kernel.io_uring_disabled=2 would. */
static bool forbid_io_uring(void)
{
	struct sock_filter f[] = {
		T_SECCOMP_LOAD_NR,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	return t_seccomp(f, sizeof f / sizeof f[0]) == 0;
}

/* Without io_uring the probe cannot tell, says why, and auto mode stops
 * threads.  In a child: the filter and the fresh answer stay there. */
static void check_without_io_uring(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (!forbid_io_uring()) {
			printf("no io_uring: seccomp unavailable, not checked\n");
			fflush(stdout);
			_exit(0);
		}
		struct cfork_probe_result r;
		CHECK(cfork_probe(&r, sizeof r, CFORK_PROBE_FRESH) ==
		      CFORK_CANNOT_TELL);
		for (int k = 0; k < CFORK_PATHS; k++) {
			CHECK(r.path[k].verdict == CFORK_CANNOT_TELL);
			CHECK(strstr(r.path[k].reason, "io_uring"));
		}
		printf("no io_uring: %s\n", r.path[0].reason);
		CHECK(method_of_one_cfork() == CFORK_METHOD_QUIESCE);
		fflush(stdout);
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* CAP_IPC_LOCK lifts RLIMIT_MEMLOCK for io_uring.  Takes it away from
 * this process and from what the probe's helper gets at its exec (root
 * gets the bounding set; anyone the ambient set); false if it stays. */
static bool drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0);
	if (syscall(SYS_capget, &h, d) == 0) {
		d[0].effective &= ~(1u << CAP_IPC_LOCK);
		d[0].permitted &= ~(1u << CAP_IPC_LOCK);
		d[0].inheritable &= ~(1u << CAP_IPC_LOCK);
		syscall(SYS_capset, &h, d);
	}
	return geteuid() != 0 || prctl(PR_CAPBSET_READ, CAP_IPC_LOCK, 0, 0, 0) == 0;
}

/* Under a low RLIMIT_MEMLOCK the probe cannot tell and names the limit
 * (6.18 refuses the ring itself, older kernels the pinned page), and at
 * no limit does its helper fail (it once did when the limit let it
 * create a first ring but not a second).  In a child: the limit and the
 * capabilities stay there. */
static void check_memlock(const struct cfork_probe_result *unlimited)
{
	if (unlimited->path[CFORK_PATH_SMALL].verdict == CFORK_CANNOT_TELL) {
		printf("memlock: the small-page path cannot tell here anyway, "
		       "not checked\n");
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (!drop_ipc_lock()) {
			printf("memlock: cannot drop CAP_IPC_LOCK, not checked\n");
			fflush(stdout);
			_exit(0);
		}
		/* Down only: raising a hard limit needs a capability. */
		for (rlim_t pages = 16; pages != (rlim_t)-1; pages--) {
			struct rlimit rl = { pages * 4096, pages * 4096 };
			struct cfork_probe_result r;
			CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
			cfork_probe(&r, sizeof r, CFORK_PROBE_FRESH);
			for (int k = 0; k < CFORK_PATHS; k++)
				CHECK(!strstr(r.path[k].reason, "helper"));
			if (pages > 0)
				continue;
			const struct cfork_probe_path *p = &r.path[CFORK_PATH_SMALL];
			CHECK(p->verdict == CFORK_CANNOT_TELL);
			CHECK(strstr(p->reason, "RLIMIT_MEMLOCK"));
			printf("memlock 0: %s\n", p->reason);
		}
		fflush(stdout);
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
	/* The tearing test forks up to 3000 times per path: minutes under
	 * qemu's emulator on a busy machine. */
	t_alarm(900);
	const char *e = getenv("CFORK_MODE");
	if (e && *e && strcmp(e, "auto"))
		SKIP("CFORK_MODE=%s is set; this test needs auto", e);
	check_contract();
	const char *v[CFORK_PATHS], *auto_m, *huge_m;
	check_against_tearing(v);
	check_auto(&auto_m, &huge_m);
	check_without_io_uring();
	struct cfork_probe_result unlimited;
	cfork_probe(&unlimited, sizeof unlimited, 0);
	check_memlock(&unlimited);
	printf("verdicts small=%s thp=%s hugetlb=%s auto=%s hugetlb_auto=%s\n",
	       v[0], v[1], v[2], auto_m, huge_m);
	return T_PASS;
}
