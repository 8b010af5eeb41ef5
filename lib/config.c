/* SPDX-License-Identifier: MIT */
/*
 * Environment variables, read once at load time (getenv is not safe once
 * threads may call setenv, and not at all in the fork path).  A bad value is
 * reported once on stderr and the default is used: configuration must never
 * be the reason a fork fails.  The program's own choice of mode
 * (cfork_setmode) overrides CFORK_MODE.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cfork.h"
#include "internal.h"

#define CF_DEFAULT_TIMEOUT_MS 1000u
#define CF_MAX_TIMEOUT_MS 600000u

static struct cf_config config = {
	.mode = CFORK_MODE_AUTO,
	.timeout_ms = CF_DEFAULT_TIMEOUT_MS,
	.on_timeout = CFORK_ON_TIMEOUT_FORK,
	.signo = 0,                    /* SIGRTMAX - 6, set at parse time */
	.debug = false,
};

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static void parse_mode(const char *v)
{
	if (!v || !*v || !strcmp(v, "auto"))
		config.mode = CFORK_MODE_AUTO;
	else if (!strcmp(v, "quiesce"))
		config.mode = CFORK_MODE_QUIESCE;
	else if (!strcmp(v, "direct"))
		config.mode = CFORK_MODE_DIRECT;
	else
		cf_log("CFORK_MODE=%.64s is not auto, quiesce or direct; using auto", v);
}

static void parse_timeout(const char *v)
{
	unsigned long ms;
	if (!v || !*v)
		return;
	if (parse_uint(v, CF_MAX_TIMEOUT_MS, &ms) && ms > 0)
		config.timeout_ms = (unsigned)ms;
	else
		cf_log("CFORK_TIMEOUT_MS=%.64s is not a number of milliseconds "
		       "from 1 to %u; using %u", v, CF_MAX_TIMEOUT_MS,
		       CF_DEFAULT_TIMEOUT_MS);
}

static void parse_on_timeout(const char *v)
{
	if (!v || !*v || !strcmp(v, "fork"))
		config.on_timeout = CFORK_ON_TIMEOUT_FORK;
	else if (!strcmp(v, "fail"))
		config.on_timeout = CFORK_ON_TIMEOUT_FAIL;
	else
		cf_log("CFORK_ON_TIMEOUT=%.64s is not fork or fail; using fork", v);
}

/* Real-time signals only: a standard signal number would take a meaning the
 * program may rely on, and glibc reserves the two below SIGRTMIN. */
static void parse_signal(const char *v)
{
	unsigned long n;
	config.signo = SIGRTMAX - 6;
	if (!v || !*v)
		return;
	if (parse_uint(v, 1000, &n) && (int)n >= SIGRTMIN && (int)n <= SIGRTMAX)
		config.signo = (int)n;
	else
		cf_log("CFORK_SIGNAL=%.64s is not a real-time signal number "
		       "from %d to %d; using %d", v, SIGRTMIN, SIGRTMAX,
		       config.signo);
}

static void parse_debug(const char *v)
{
	config.debug = v && *v && strcmp(v, "0") != 0;
}

static _Atomic int loaded;

/* Other libraries' constructors can reach us (through pthread_atfork) before
 * our own constructor runs, so loading is lazy as well. */
__attribute__((constructor(101))) static void cf_config_load(void)
{
	if (atomic_exchange(&loaded, 1))
		return;
	parse_debug(getenv("CFORK_DEBUG"));
	parse_mode(getenv("CFORK_MODE"));
	parse_timeout(getenv("CFORK_TIMEOUT_MS"));
	parse_on_timeout(getenv("CFORK_ON_TIMEOUT"));
	parse_signal(getenv("CFORK_SIGNAL"));
}

const struct cf_config *cf_config(void)
{
	if (!atomic_load_explicit(&loaded, memory_order_acquire))
		cf_config_load();
	return &config;
}

/* cfork_setmode()'s mode, or -1.  Apart from config.mode, which a late
 * first load of the environment would overwrite (another library's
 * constructor may set the mode before ours has run).  Relaxed order: it
 * publishes nothing but itself, and a cfork() that the program orders
 * after the store (same thread, or synchronised with it) reads it. */
static _Atomic int chosen = -1;

__attribute__((visibility("default")))
int cfork_setmode(int mode)
{
	if (mode != CFORK_MODE_AUTO && mode != CFORK_MODE_QUIESCE &&
	    mode != CFORK_MODE_DIRECT) {
		errno = EINVAL;
		return -1;
	}
	atomic_store_explicit(&chosen, mode, memory_order_relaxed);
	return 0;
}

int cf_mode(bool *by_program)
{
	int m = atomic_load_explicit(&chosen, memory_order_relaxed);
	if (by_program)
		*by_program = m >= 0;
	return m >= 0 ? m : cf_config()->mode;
}
