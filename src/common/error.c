#include "aifleet/error.h"

#include <stdio.h>
#include <string.h>

#define AF_ERROR_MAX 1024

static _Thread_local char last_message[AF_ERROR_MAX];

int af_error_vset(int klass, const char *fmt, va_list ap)
{
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	return klass;
}

int af_error_set(int klass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	af_error_vset(klass, fmt, ap);
	va_end(ap);
	return klass;
}

int af_error_prefix(int klass, const char *fmt, ...)
{
	char old[AF_ERROR_MAX];
	size_t used;
	va_list ap;

	memcpy(old, last_message, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	/* Append the old message after the prefix, truncating if needed. */
	used = strlen(last_message);
	if (used < sizeof(last_message) - 1) {
		size_t room = sizeof(last_message) - 1 - used;
		size_t n = strnlen(old, room);

		memcpy(last_message + used, old, n);
		last_message[used + n] = '\0';
	}
	return klass;
}

const char *af_error_last(void)
{
	return last_message;
}

int af_error_oom(void)
{
	return af_error_set(AF_ERR_NOMEM, "out of memory");
}

void af_error_clear(void)
{
	last_message[0] = '\0';
}

const char *af_error_class_name(int klass)
{
	switch (klass) {
	case AF_OK: return "ok";
	case AF_ERR_NOMEM: return "nomem";
	case AF_ERR_TRANSIENT: return "transient";
	case AF_ERR_AUTH: return "auth";
	case AF_ERR_PARAM: return "param";
	case AF_ERR_DATA: return "data";
	case AF_ERR_DB: return "db";
	case AF_ERR_CONFIG: return "config";
	case AF_ERR_LOCKED: return "locked";
	case AF_ERR_IO: return "io";
	case AF_ERR_LIMIT: return "limit";
	default: return "error";
	}
}
