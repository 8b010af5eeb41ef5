/* SPDX-License-Identifier: MIT */
/* Code addresses by name, for tests that print where a thread was (the
 * includer defines _GNU_SOURCE first, as config.h does, for dladdr). */
#ifndef CFORK_TEST_SYMBOL_H
#define CFORK_TEST_SYMBOL_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* function+offset, else object+offset, else hexadecimal. */
static inline void t_symbol(char *out, size_t len, uintptr_t a)
{
	Dl_info di;
	if (dladdr((void *)a, &di) && di.dli_sname)
		snprintf(out, len, "%s+%#lx", di.dli_sname,
			 (unsigned long)(a - (uintptr_t)di.dli_saddr));
	else if (dladdr((void *)a, &di) && di.dli_fname)
		snprintf(out, len, "%s+%#lx", strrchr(di.dli_fname, '/') ?
			 strrchr(di.dli_fname, '/') + 1 : di.dli_fname,
			 (unsigned long)(a - (uintptr_t)di.dli_fbase));
	else
		snprintf(out, len, "%#lx", (unsigned long)a);
}

#endif
