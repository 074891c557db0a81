#ifndef AIFLEET_CLOCK_H
#define AIFLEET_CLOCK_H

/* Seconds on the monotonic clock: for durations, never for dates. */
double af_clock_seconds(void);

/* The wall clock as Unix time, in seconds: for dates (the metrics file). */
double af_clock_unix(void);

#endif
