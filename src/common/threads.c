#include "aifleet/threads.h"

#include <pthread.h>

size_t af_threads_run(size_t n, void *(*fn)(void *), void *arg)
{
	pthread_t threads[AF_THREADS_MAX];
	size_t started = 0;

	if (n > AF_THREADS_MAX)
		n = AF_THREADS_MAX;
	/* Fewer threads than asked is fine: the workers share the work. */
	while (started < n && pthread_create(&threads[started], NULL, fn, arg) == 0)
		started++;
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	return started;
}
