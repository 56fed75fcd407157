/*
 * nmeter: the time part of busybox's nmeter applet, which Debian's busybox
 * lacks (Kubernetes' node e2e specs take millisecond timestamps with
 * `nmeter -d0 '%3t' | head -n1`).
 *
 *   nmeter [-d MSEC] FORMAT
 *
 * Prints FORMAT once every MSEC milliseconds (default 1000; 0 without
 * pause; a negative value prints one line and exits), each time on a line
 * of its own, with every %t replaced by the local time hh:mm:ss and every
 * %Nt (N = 1..6) by hh:mm:ss with N fractional digits, rounded as busybox
 * does; %% is a percent sign.  Other directives are refused (exit 1).
 * Stops when standard output goes away (write error or SIGPIPE).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
	fputs("usage: nmeter [-d MSEC] FORMAT (only %t and %Nt, N = 1..6, are supported)\n", stderr);
	exit(1);
}

/* Checks FORMAT: only %t, %Nt and %% are known. */
static void check_format(const char *f)
{
	for (; *f; f++) {
		if (*f != '%')
			continue;
		f++;
		if (*f == '%')
			continue;
		if (*f >= '1' && *f <= '6')
			f++;
		if (*f != 't')
			usage();
	}
}

/* Appends hh:mm:ss[.fraction] of `now` with `prec` fractional digits. */
static void put_time(FILE *out, const struct timeval *now, int prec)
{
	unsigned scale = 1, us;
	time_t t = now->tv_sec;
	struct tm tm;
	int i;

	for (i = prec; i < 6; i++)
		scale *= 10;
	us = (unsigned)now->tv_usec + scale / 2;
	if (us >= 1000000) {
		t++;
		us -= 1000000;
	}
	localtime_r(&t, &tm);
	fprintf(out, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (prec)
		fprintf(out, ".%0*u", prec, us / scale);
}

static int print_line(const char *f)
{
	struct timeval now;
	int prec;

	gettimeofday(&now, NULL);
	for (; *f; f++) {
		if (*f != '%') {
			putchar(*f);
			continue;
		}
		f++;
		if (*f == '%') {
			putchar('%');
			continue;
		}
		prec = 0;
		if (*f >= '1' && *f <= '6')
			prec = *f++ - '0';
		put_time(stdout, &now, prec);
	}
	putchar('\n');
	return fflush(stdout) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	long delay = 1000;
	char *end;
	int opt;

	while ((opt = getopt(argc, argv, "d:")) != -1) {
		if (opt != 'd')
			usage();
		errno = 0;
		delay = strtol(optarg, &end, 10);
		if (errno || *end || end == optarg)
			usage();
	}
	if (optind != argc - 1)
		usage();
	check_format(argv[optind]);
	for (;;) {
		if (print_line(argv[optind]) != 0)
			return 1;
		if (delay < 0)
			return 0;
		if (delay > 0) {
			struct timespec ts = { delay / 1000, (delay % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
}
