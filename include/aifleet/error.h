#ifndef AIFLEET_ERROR_H
#define AIFLEET_ERROR_H

/*
 * Error reporting, libgit2 style: functions return 0 on success or a
 * negative af_error_class; the human-readable message is kept in a
 * thread-local "last error" that the caller may read or extend.
 *
 * Messages never contain secrets: callers format only labels, codes and
 * request ids into them.
 */

#include <stdarg.h>

typedef enum af_error_class {
	AF_OK = 0,
	AF_ERR_GENERIC = -1,   /* anything without a better class */
	AF_ERR_NOMEM = -2,     /* allocation failed */
	AF_ERR_TRANSIENT = -3, /* worth retrying: timeouts, 5xx, throttling, lost DB */
	AF_ERR_AUTH = -4,      /* credentials or signature refused: never retried */
	AF_ERR_PARAM = -5,     /* the request was wrong: never retried */
	AF_ERR_DATA = -6,      /* the provider answered something we cannot use */
	AF_ERR_DB = -7,        /* PostgreSQL said no */
	AF_ERR_CONFIG = -8,    /* configuration or usage problem */
	AF_ERR_LOCKED = -9,    /* another run holds the lock */
	AF_ERR_IO = -10,       /* local file system */
	AF_ERR_LIMIT = -11,    /* a hard cap was hit (response size, page count) */
} af_error_class;

/* Sets the thread's last error and returns `klass`, so that
 * `return af_error_set(AF_ERR_DATA, "...")` reads naturally. */
int af_error_set(int klass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int af_error_vset(int klass, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Prefixes the current message with more context ("scope x: " + old). */
int af_error_prefix(int klass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets "out of memory" and returns AF_ERR_NOMEM. */
int af_error_oom(void);

/* The last message of this thread; never NULL ("" if none). Borrowed. */
const char *af_error_last(void);
void af_error_clear(void);

/* A short stable name of a class ("transient", "auth", ...). */
const char *af_error_class_name(int klass);

#endif
