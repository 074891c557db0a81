#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

char *af_test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto done;
	data = malloc((size_t)size + 1);
	if (!data)
		goto done;
	if (fread(data, 1, (size_t)size, f) != (size_t)size) {
		free(data);
		data = NULL;
		goto done;
	}
	data[size] = '\0';
	if (len)
		*len = (size_t)size;
done:
	fclose(f);
	return data;
}

char *af_test_read_fixture(const char *rel, size_t *len)
{
	char path[1024];
	char *data;

	snprintf(path, sizeof(path), "%s/%s", AF_FIXTURES_DIR, rel);
	data = af_test_read_file(path, len);
	if (!data)
		fail_msg("cannot read fixture %s", path);
	return data;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0; /* go on: leave as little behind as possible */
}

/*
 * The directories af_test_tempdir made and no af_test_rmtree removed yet.
 * A failed assertion leaves its test function at once (cmocka jumps back
 * to its runner), past the rmtree at its end; what is left here is removed
 * when the test program exits -- by the process that made it, not by a
 * forked child that exits.
 */
#define MAX_TEMPDIRS 64
static char *tempdirs[MAX_TEMPDIRS];
static pid_t tempdirs_owner;

static void remove_leftover_tempdirs(void)
{
	if (getpid() != tempdirs_owner)
		return;
	for (size_t i = 0; i < MAX_TEMPDIRS; i++) {
		if (tempdirs[i])
			nftw(tempdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(tempdirs[i]);
		tempdirs[i] = NULL;
	}
}

void af_test_rmtree(const char *dir)
{
	if (!dir || !*dir)
		return;
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < MAX_TEMPDIRS; i++)
		if (tempdirs[i] && strcmp(tempdirs[i], dir) == 0) {
			free(tempdirs[i]);
			tempdirs[i] = NULL;
		}
}

char *af_test_tempdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[1024];
	char *dir;

	snprintf(tmpl, sizeof(tmpl), "%s/aifleet-test-XXXXXX", base && *base ? base : "/tmp");
	dir = mkdtemp(tmpl);
	if (!dir)
		fail_msg("mkdtemp failed");
	if (!tempdirs_owner) {
		tempdirs_owner = getpid();
		atexit(remove_leftover_tempdirs);
	}
	for (size_t i = 0; i < MAX_TEMPDIRS; i++)
		if (!tempdirs[i]) {
			tempdirs[i] = strdup(dir);
			break;
		}
	return strdup(dir);
}

char *af_test_write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *path = malloc(n);
	FILE *f;

	assert_non_null(path);
	snprintf(path, n, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

double af_test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void af_test_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

void af_test_die_with(pid_t parent, int sig)
{
	prctl(PR_SET_PDEATHSIG, sig);
	if (getppid() != parent)
		_exit(127);
}

pid_t af_test_spawn(const char *bin, const char *const *argv, const char *out_path,
                    const char *err_path, int deathsig)
{
	pid_t parent = getpid(), pid = fork();
	int o, e;

	if (pid != 0)
		return pid;
	af_test_die_with(parent, deathsig);
	o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	e = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : o;
	if (o < 0 || e < 0)
		_exit(126);
	dup2(o, 1);
	dup2(e, 2);
	execv(bin, (char *const *)argv);
	_exit(127);
}

int af_test_wait(pid_t pid, double limit_s, int *status, struct rusage *ru)
{
	double deadline = af_test_now() + limit_s;

	*status = 0;
	for (;;) {
		/* Without a limit a blocking wait; with one, a poll every 10 ms
		 * so that a hung child cannot hang the test. */
		pid_t w = wait4(pid, status, limit_s > 0 ? WNOHANG : 0, ru);

		if (w == pid)
			return 0;
		if (w < 0 && errno != EINTR)
			return -1;
		if (limit_s <= 0)
			continue;
		if (af_test_now() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return 1;
		}
		af_test_sleep_ms(10);
	}
}

int af_test_exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void af_test_run_free(af_test_run_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

int af_test_run(const char *bin, const char *const *argv, const char *dir, double limit_s,
                af_test_run_result *r)
{
	char out_path[1024], err_path[1024];
	struct rusage ru;
	double t0;
	int status, waited;
	pid_t pid;

	af_test_run_free(r);
	memset(r, 0, sizeof(*r));
	memset(&ru, 0, sizeof(ru));
	snprintf(out_path, sizeof(out_path), "%s/out.txt", dir);
	snprintf(err_path, sizeof(err_path), "%s/err.txt", dir);
	t0 = af_test_now();
	pid = af_test_spawn(bin, argv, out_path, err_path, SIGKILL);
	assert_true(pid >= 0);
	waited = af_test_wait(pid, limit_s, &status, &ru);
	if (waited < 0)
		fail_msg("wait4: %s", strerror(errno));
	r->seconds = af_test_now() - t0;
	r->maxrss_kb = ru.ru_maxrss;
	r->timed_out = waited == 1;
	r->code = af_test_exit_code(status);
	r->out = af_test_read_file(out_path, NULL);
	r->err = af_test_read_file(err_path, NULL);
	if (!r->out)
		r->out = strdup("");
	if (!r->err)
		r->err = strdup("");
	if (!r->out || !r->err)
		fail_msg("out of memory");
	return r->timed_out ? -1 : r->code;
}
