/* SPDX-License-Identifier: MIT */
/*
 * The shared object the tests load and unload in a loop.  Its constructor
 * and destructor run user code inside dlopen and dlclose, with the loader's
 * lock held, and allocate there: the case where a sibling is in user code
 * yet must not be parked.
 */
#include <stdlib.h>
#include <string.h>

int cfork_testmod_value(void);

static char *state;

__attribute__((constructor)) static void testmod_init(void)
{
	state = malloc(4096);
	if (state)
		memset(state, 0x5a, 4096);
}

__attribute__((destructor)) static void testmod_fini(void)
{
	free(state);
	state = NULL;
}

int cfork_testmod_value(void)
{
	return state && state[4095] == 0x5a ? 42 : -1;
}
