/* SPDX-License-Identifier: MIT */
/*
 * Threads blocked for good in libc are stopped at once: each sibling waits
 * in one call that does not return while the main thread cforks (a
 * semaphore never posted, a mutex and rwlocks the main thread holds, a
 * condition variable never signalled, a pipe never written, pause, sigwait,
 * accept, a barrier, a file lock, pthread_join of a blocked thread, a long
 * sleep, a child that never exits, a spin lock held by main).  Every cfork
 * must be coherent with every sibling parked, none left for the bound
 * (a sibling the rule cannot stop would cost CFORK_TIMEOUT_MS and leave
 * the child incoherent).
 * Usage: blocked [CFORKS].
 */
#include "config.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "cfork.h"
#include "test.h"

static sem_t sem;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t barrier;
static pthread_spinlock_t spin;
static int pipefd[2], listener, lockfd;
static pid_t sleeper;
static pthread_t joined;
static _Atomic int started;

static void *t_sem(void *a) { (void)a; started++; sem_wait(&sem); return NULL; }
static void *t_mutex(void *a) { (void)a; started++; pthread_mutex_lock(&mutex); return NULL; }
static void *t_rdlock(void *a) { (void)a; started++; pthread_rwlock_rdlock(&rwlock); return NULL; }
static void *t_wrlock(void *a) { (void)a; started++; pthread_rwlock_wrlock(&rwlock); return NULL; }
static void *t_barrier(void *a) { (void)a; started++; pthread_barrier_wait(&barrier); return NULL; }
static void *t_spin(void *a) { (void)a; started++; pthread_spin_lock(&spin); return NULL; }

static void *t_cond(void *a)
{
	(void)a;
	pthread_mutex_lock(&cond_mutex);
	started++;
	pthread_cond_wait(&cond, &cond_mutex);
	pthread_mutex_unlock(&cond_mutex);
	return NULL;
}

static void *t_read(void *a)
{
	(void)a;
	char c;
	started++;
	ssize_t r = read(pipefd[0], &c, 1);
	(void)r;
	return NULL;
}

static void *t_pause(void *a) { (void)a; started++; pause(); return NULL; }

static void *t_sigwait(void *a)
{
	(void)a;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	int sig;
	started++;
	sigwait(&s, &sig);
	return NULL;
}

static void *t_accept(void *a) { (void)a; started++; accept(listener, NULL, NULL); return NULL; }
static void *t_flock(void *a) { (void)a; started++; flock(lockfd, LOCK_EX); return NULL; }
static void *t_join(void *a) { (void)a; started++; pthread_join(joined, NULL); return NULL; }
static void *t_sleep(void *a) { (void)a; started++; sleep(3600); return NULL; }
static void *t_waitpid(void *a) { (void)a; started++; waitpid(sleeper, NULL, 0); return NULL; }
static void *t_poll(void *a) { (void)a; started++; poll(NULL, 0, -1); return NULL; }

static void *(*const waits[])(void *) = {
	t_sem, t_mutex, t_rdlock, t_wrlock, t_barrier, t_spin, t_cond, t_read,
	t_pause, t_sigwait, t_accept, t_flock, t_join, t_sleep, t_waitpid,
	t_poll,
};
static const char *const names[] = {
	"sem_wait", "pthread_mutex_lock", "pthread_rwlock_rdlock",
	"pthread_rwlock_wrlock", "pthread_barrier_wait", "pthread_spin_lock",
	"pthread_cond_wait", "read", "pause", "sigwait", "accept", "flock",
	"pthread_join", "sleep", "waitpid", "poll",
};
#define NWAITS (sizeof waits / sizeof waits[0])

static void setup(void)
{
	CHECK(sem_init(&sem, 0, 0) == 0);
	CHECK(pthread_mutex_lock(&mutex) == 0);
	CHECK(pthread_rwlock_wrlock(&rwlock) == 0);
	CHECK(pthread_barrier_init(&barrier, NULL, 2) == 0);
	CHECK(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE) == 0);
	CHECK(pthread_spin_lock(&spin) == 0);
	CHECK(pipe(pipefd) == 0);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(listener >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	CHECK(bind(listener, (struct sockaddr *)&sa, sizeof sa) == 0);
	CHECK(listen(listener, 1) == 0);
	/* flock locks belong to an open file description: main holds one,
	 * the waiter asks through another. */
	char path[] = "/tmp/cfork-blocked-XXXXXX";
	int held = mkstemp(path);
	CHECK(held >= 0);
	lockfd = open(path, O_RDWR);
	CHECK(lockfd >= 0);
	unlink(path);
	CHECK(flock(held, LOCK_EX) == 0);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	CHECK(pthread_sigmask(SIG_BLOCK, &s, NULL) == 0);
	sleeper = fork();
	CHECK(sleeper >= 0);
	if (sleeper == 0) {
		pause();
		_exit(0);
	}
	CHECK(pthread_create(&joined, NULL, t_sem, NULL) == 0);
}

int main(int argc, char **argv)
{
	t_alarm(300);
	int n = t_iters(argc > 1 ? atoi(argv[1]) : 50);
	setup();
	pthread_t t[NWAITS];
	for (size_t i = 0; i < NWAITS; i++)
		CHECK(pthread_create(&t[i], NULL, waits[i], NULL) == 0);
	/* Let each reach its wait: the count is only the threads' start. */
	while (started < (int)NWAITS + 1)
		usleep(1000);
	usleep(200000);

	unsigned siblings = NWAITS + 1;
	int bad = 0;
	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		if (!r.coherent || r.not_stopped || r.parked != siblings) {
			bad++;
			struct cfork_straggler s[NWAITS + 1];
			size_t k = cfork_last_stragglers(s, NWAITS + 1, sizeof s[0]);
			fprintf(stderr, "cfork %d: coherent %d parked %u of %u, "
				"not stopped %u\n", i, r.coherent, r.parked,
				siblings, r.not_stopped);
			for (size_t j = 0; j < k && j < NWAITS + 1; j++)
				fprintf(stderr, "  tid %d (%s) syscall %ld: %s, "
					"stack %#lx %#lx %#lx\n", (int)s[j].tid,
					s[j].name, s[j].syscall, s[j].why,
					(unsigned long)s[j].stack[0],
					(unsigned long)s[j].stack[1],
					(unsigned long)s[j].stack[2]);
			break;
		}
	}
	printf("%d cforks with %u siblings blocked in:", n, siblings);
	for (size_t i = 0; i < NWAITS; i++)
		printf(" %s", names[i]);
	printf("\nbad cforks: %d\n", bad);
	kill(sleeper, SIGKILL);
	waitpid(sleeper, NULL, 0);
	CHECK(bad == 0);
	return T_PASS;
}
