// <features.h> must come first: liburing.h defines _GNU_SOURCE/_XOPEN_SOURCE before its libc
// includes, which otherwise changes glibc struct layouts (fd_set) relative to SwiftGlibc.
#include <features.h>
#include <liburing.h>
#include <sys/eventfd.h>
