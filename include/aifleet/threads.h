#ifndef AIFLEET_THREADS_H
#define AIFLEET_THREADS_H

/*
 * A bounded crew of identical workers: start up to `n` threads (at most
 * AF_THREADS_MAX) that all run fn(arg) -- they share work through arg,
 * typically an atomic index -- and wait for all of them.
 */

#include <stddef.h>

#define AF_THREADS_MAX 64

/* Returns how many threads ran (0 if none could be started, or n == 0). */
size_t af_threads_run(size_t n, void *(*fn)(void *), void *arg);

#endif
