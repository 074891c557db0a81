#ifndef AIFLEET_TESTUTIL_H
#define AIFLEET_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* Reads tests/fixtures/<rel> whole; aborts the test if missing. Caller frees. */
char *af_test_read_fixture(const char *rel, size_t *len);
/* Reads any file whole; NULL if it cannot. Caller frees. */
char *af_test_read_file(const char *path, size_t *len);
/* Writes `text` to `dir`/`name` with `mode` (chmod: the umask does not
 * apply), failing the test if it cannot; returns the path (caller frees). */
char *af_test_write_file(const char *dir, const char *name, const char *text, mode_t mode);
/* A fresh temporary directory (mkdtemp under $TMPDIR); caller frees. One
 * that no af_test_rmtree removed (a failed assertion skips it) is removed
 * when the test program exits. */
char *af_test_tempdir(void);
/* Removes `dir` and everything under it, going on past what cannot be
 * removed; NULL or "" does nothing. */
void af_test_rmtree(const char *dir);

/* ---- time ------------------------------------------------------------------
 * Deadlines use the monotonic clock: a wall-clock step must neither fire nor
 * stretch a test's bound. */

/* CLOCK_MONOTONIC in seconds. */
double af_test_now(void);
/* Sleeps `ms` milliseconds (less if a signal arrives: callers poll). */
void af_test_sleep_ms(long ms);

/* ---- child processes -------------------------------------------------------
 * The functions below use no cmocka, so that a forked helper process (which
 * must never longjmp into the test's frames) can use them too; only
 * af_test_run() asserts. */

/* In a freshly forked child: gets `sig` when `parent` dies, so that a test
 * killed or failed half-way leaves nothing running; exits 127 at once if
 * `parent` is gone already (it died before the prctl). */
void af_test_die_with(pid_t parent, int sig);

/* Forks and executes `bin` with `argv` (argv[0] included, NULL-terminated)
 * as a child of the caller that gets `deathsig` when the caller dies. Its
 * stdout goes to `out_path` and its stderr to `err_path` (NULL: the same
 * file), created or truncated, mode 0600. The child exits 126 if it cannot
 * open them, 127 if it cannot execute `bin`. Returns the pid, or -1 with
 * errno from fork(). */
pid_t af_test_spawn(const char *bin, const char *const *argv, const char *out_path,
                    const char *err_path, int deathsig);

/* Reaps child `pid`, waiting at most `limit_s` seconds (<= 0: no limit);
 * at the limit it is SIGKILLed and reaped. `status` gets the wait status,
 * `ru` (may be NULL) the child's resource usage. Returns 0 when it ended
 * by itself, 1 when it was killed at the limit, -1 with errno when waiting
 * failed. */
int af_test_wait(pid_t pid, double limit_s, int *status, struct rusage *ru);

/* The shell's view of a wait status: the exit code, or 128 + the signal. */
int af_test_exit_code(int status);

typedef struct af_test_run_result {
	int code;        /* af_test_exit_code() of the run */
	bool timed_out;  /* killed at the limit (then code is 128 + SIGKILL) */
	double seconds;  /* wall time, start to reaped */
	long maxrss_kb;  /* the child's peak RSS (ru_maxrss) */
	char *out, *err; /* its stdout and stderr; "" when unreadable */
} af_test_run_result;

/* Runs `bin` with `argv` to its end, stdout to `dir`/out.txt and stderr to
 * `dir`/err.txt, killed after `limit_s` seconds (<= 0: no limit) and with
 * the test program (SIGKILL). Frees what `r` held from an earlier run, then
 * fills it (r->out and r->err: af_test_run_free()). Returns r->code, or -1
 * when the run was killed at the limit (the caller says what failed).
 * Asserts that the fork, the wait and the memory for the output work. */
int af_test_run(const char *bin, const char *const *argv, const char *dir, double limit_s,
                af_test_run_result *r);
/* Frees r->out and r->err (NULL afterwards); `r` may be zeroed or used. */
void af_test_run_free(af_test_run_result *r);

#endif
