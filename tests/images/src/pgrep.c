/*
 * pgrep: a small stand-in for procps pgrep (Debian's busybox has none).
 *
 *   pgrep [-f] [-x] [-l] [-c] [-n|-o] [-d DELIM] PATTERN
 *
 * PATTERN is an extended regular expression matched against the process
 * name (/proc/PID/comm) or, with -f, the full command line.  Prints the
 * matching PIDs (never its own) in ascending order.  Exit status: 0 if a
 * process matched, 1 if none did, 2 on a usage error, 3 on a fatal error.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Reads /proc/PID/NAME into buf (NUL-terminated); returns length or -1. */
static ssize_t read_proc(int pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n, total = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((size_t)total < size - 1) {
		n = read(fd, buf + total, size - 1 - total);
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

static void usage(void)
{
	fputs("usage: pgrep [-f] [-x] [-l] [-c] [-n|-o] [-d DELIM] PATTERN\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	int full = 0, exact = 0, list = 0, count = 0, newest = 0, oldest = 0;
	const char *delim = "\n";
	char *pattern, *expr;
	regex_t re;
	DIR *dir;
	struct dirent *de;
	int *pids = NULL, npids = 0, cap = 0, opt, self = getpid(), i, rc;
	static char text[65536], comm[64];

	while ((opt = getopt(argc, argv, "fxlcnod:")) != -1) {
		switch (opt) {
		case 'f': full = 1; break;
		case 'x': exact = 1; break;
		case 'l': list = 1; break;
		case 'c': count = 1; break;
		case 'n': newest = 1; break;
		case 'o': oldest = 1; break;
		case 'd': delim = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || (newest && oldest))
		usage();
	pattern = argv[optind];

	expr = malloc(strlen(pattern) + 5);
	if (!expr)
		return 3;
	if (exact)
		sprintf(expr, "^(%s)$", pattern);
	else
		strcpy(expr, pattern);
	rc = regcomp(&re, expr, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		regerror(rc, &re, text, sizeof(text));
		fprintf(stderr, "pgrep: invalid pattern: %s\n", text);
		return 2;
	}

	dir = opendir("/proc");
	if (!dir) {
		perror("pgrep: /proc");
		return 3;
	}
	while ((de = readdir(dir)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		ssize_t n;

		if (*end != '\0' || pid <= 0 || pid == self)
			continue;
		if (read_proc((int)pid, "comm", comm, sizeof(comm)) < 0)
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		if (full) {
			n = read_proc((int)pid, "cmdline", text, sizeof(text));
			if (n <= 0) {
				strcpy(text, comm);
			} else {
				while (n > 0 && text[n - 1] == '\0')
					n--;
				for (ssize_t k = 0; k < n; k++)
					if (text[k] == '\0')
						text[k] = ' ';
				text[n] = '\0';
			}
		} else {
			strcpy(text, comm);
		}
		if (regexec(&re, text, 0, NULL, 0) != 0)
			continue;
		if (npids == cap) {
			cap = cap ? cap * 2 : 64;
			pids = realloc(pids, cap * sizeof(*pids));
			if (!pids)
				return 3;
		}
		pids[npids++] = (int)pid;
	}
	closedir(dir);

	if (npids > 0)
		qsort(pids, npids, sizeof(*pids), cmp_int);
	if (npids > 0 && (newest || oldest)) {
		/* Newest/oldest by start time (field 22 of /proc/PID/stat). */
		int best = -1;
		unsigned long long best_start = 0;
		for (i = 0; i < npids; i++) {
			char *p;
			unsigned long long start;
			int field;
			if (read_proc(pids[i], "stat", text, sizeof(text)) < 0)
				continue;
			p = strrchr(text, ')');
			if (!p)
				continue;
			for (field = 2; field < 22 && p; field++)
				p = strchr(p + 1, ' ');
			if (!p)
				continue;
			start = strtoull(p + 1, NULL, 10);
			if (best < 0 || (newest ? start >= best_start : start < best_start)) {
				best = pids[i];
				best_start = start;
			}
		}
		if (best < 0) {
			npids = 0;
		} else {
			pids[0] = best;
			npids = 1;
		}
	}

	if (count) {
		printf("%d\n", npids);
	} else {
		for (i = 0; i < npids; i++) {
			if (list) {
				read_proc(pids[i], "comm", comm, sizeof(comm));
				comm[strcspn(comm, "\n")] = '\0';
				printf("%d %s", pids[i], comm);
			} else {
				printf("%d", pids[i]);
			}
			fputs(i + 1 < npids ? delim : "\n", stdout);
		}
	}
	fflush(stdout);
	return npids > 0 ? 0 : 1;
}
