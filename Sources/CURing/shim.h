// <features.h> must come first: liburing.h defines _GNU_SOURCE/_XOPEN_SOURCE before its libc
// includes, which otherwise changes glibc struct layouts (fd_set) relative to SwiftGlibc.
#include <features.h>
// The kernel's <linux/io_uring.h> before liburing's: both guard on LINUX_IO_URING_H, so the
// ring structures are declared by the one header that other C modules (swift-system's CSystem,
// which SwiftNIO pulls in) include too. With liburing's own copy, a Swift file importing Spindle
// beside NIOPosix failed to build (two differing definitions of io_uring_sqe).
#include <linux/io_uring.h>
#include <liburing.h>
#include <sys/eventfd.h>
