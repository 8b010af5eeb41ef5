# SPDX-License-Identifier: MIT
# Project macros.

# CFORK_CHECK_WARNINGS: -Wall -Wextra and friends, only when CFLAGS was not
# set by the user (so a distribution's flags are left alone).
AC_DEFUN([CFORK_CHECK_WARNINGS], [
  AC_ARG_ENABLE([werror],
    [AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors])])
  CFORK_WARN_CFLAGS="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter"
  AS_IF([test "x$enable_werror" = xyes],
    [CFORK_WARN_CFLAGS="$CFORK_WARN_CFLAGS -Werror"])
  AC_SUBST([CFORK_WARN_CFLAGS])
])

# CFORK_LINKER_VERSION_SCRIPT: the linker must take --version-script, as the
# version script is what keeps everything but the public API local.
AC_DEFUN([CFORK_LINKER_VERSION_SCRIPT], [
  AC_CACHE_CHECK([whether the linker accepts --version-script],
    [cfork_cv_version_script], [
    save_LDFLAGS=$LDFLAGS
    echo "V1 { global: main; local: *; };" > conftest.map
    LDFLAGS="$LDFLAGS -Wl,--version-script=conftest.map"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
      [cfork_cv_version_script=yes], [cfork_cv_version_script=no])
    LDFLAGS=$save_LDFLAGS
    rm -f conftest.map])
  AS_IF([test "$cfork_cv_version_script" != yes],
    [AC_MSG_ERROR([a linker with --version-script support is required])])
])
