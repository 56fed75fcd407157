/*
 * httpserver: a tiny HTTP/1.1 server for the berth test images.
 *
 * Every request gets "HTTP/1.1 200 OK" and a small HTML body (no body for
 * HEAD), then the connection is closed.  One process, poll() loop, up to
 * MAX_CONNS connections at once, per-connection timeouts; SIGTERM, SIGINT
 * and SIGQUIT make it exit 0; children re-parented to it (as PID 1) are
 * reaped.  Listens on all interfaces (IPv6 dual-stack when available,
 * otherwise IPv4).
 *
 * Compiled twice (see build.sh):
 *   -DFLAVOR_NGINX  installed as /usr/sbin/nginx.  On start it re-executes
 *                   itself (same file, so comm stays "nginx") with argv[0]
 *                   "nginx: master process <original command line>", the
 *                   way nginx titles its master, and writes its PID to
 *                   /var/run/nginx.pid.
 *   (default)       installed as httpd; logs lines starting with "httpd".
 *
 * Options: -l PORT (default 80), -P PIDFILE, -g ARG (accepted and ignored,
 * for nginx's `-g "daemon off;"`), -D ARG and -DARG (ignored, for httpd's
 * -DFOREGROUND).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef FLAVOR_NGINX
#define NAME "nginx"
#define DEFAULT_PIDFILE "/var/run/nginx.pid"
#define MASTER_TITLE "nginx: master process"
#else
#define NAME "httpd"
#define DEFAULT_PIDFILE NULL
#endif

#define MAX_CONNS 1024
#define REQ_MAX 8192
#define READ_TIMEOUT_MS 10000
#define DRAIN_TIMEOUT_MS 2000

static const char BODY[] =
	"<!DOCTYPE html>\n<html><head><title>berth test " NAME "</title></head>\n"
	"<body><h1>It works!</h1><p>berth test " NAME "</p></body></html>\n";

enum state { READING, DRAINING };

struct conn {
	int fd;
	enum state state;
	long long deadline;
	size_t len;
	char buf[REQ_MAX];
};

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }
static void on_child(int sig) { (void)sig; }

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 1, 2)))
static void logmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s[%d]: ", NAME, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

#ifdef MASTER_TITLE
/* Re-exec with argv[0] = "nginx: master process <argv[0]>" (the other
 * arguments unchanged, so /proc/PID/cmdline reads like nginx's) unless
 * already done.  The executable path comes from /proc/self/exe so comm stays
 * the file's basename ("nginx"); if that fails we carry on untitled. */
static void set_master_title(int argc, char **argv)
{
	char self[PATH_MAX], *title;
	ssize_t n;

	(void)argc;
	if (strncmp(argv[0], MASTER_TITLE, sizeof(MASTER_TITLE) - 1) == 0)
		return;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		logmsg("cannot read /proc/self/exe (%s), not setting the master title", strerror(errno));
		return;
	}
	self[n] = '\0';
	if (asprintf(&title, "%s %s", MASTER_TITLE, argv[0]) < 0)
		return;
	argv[0] = title;
	execv(self, argv);
	logmsg("re-exec of %s failed: %s", self, strerror(errno));
}
#endif

static int listen_on(int port)
{
	int fd, one = 1, zero = 0;
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		memset(&a6, 0, sizeof(a6));
		a6.sin6_family = AF_INET6;
		a6.sin6_addr = in6addr_any;
		a6.sin6_port = htons(port);
		if (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0 && listen(fd, 511) == 0)
			return fd;
		close(fd);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	a4.sin_addr.s_addr = htonl(INADDR_ANY);
	a4.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) != 0 || listen(fd, 511) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void close_conn(struct conn **slot)
{
	close((*slot)->fd);
	free(*slot);
	*slot = NULL;
}

/* Sends the response, half-closes, then waits for the client's EOF so the
 * kernel never resets the connection before the client read the reply. */
static void respond(struct conn *c)
{
	char head[256], line[96];
	int head_only = strncmp(c->buf, "HEAD ", 5) == 0;
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nServer: %s\r\nContent-Type: text/html\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 NAME, sizeof(BODY) - 1);

	send(c->fd, head, n, MSG_NOSIGNAL | (head_only ? 0 : MSG_MORE));
	if (!head_only)
		send(c->fd, BODY, sizeof(BODY) - 1, MSG_NOSIGNAL);
	shutdown(c->fd, SHUT_WR);

	/* Log the request line. */
	c->buf[c->len < REQ_MAX ? c->len : REQ_MAX - 1] = '\0';
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(c->buf, "\r\n"), c->buf);
	printf("%s: \"%s\" 200\n", NAME, line);
	fflush(stdout);

	c->state = DRAINING;
	c->deadline = now_ms() + DRAIN_TIMEOUT_MS;
}

int main(int argc, char **argv)
{
	int port = 80, lfd, i, nconns = 0;
	const char *pidfile = DEFAULT_PIDFILE;
	static struct conn *conns[MAX_CONNS];
	static struct pollfd pfds[MAX_CONNS + 1];
	static int idx[MAX_CONNS + 1];
	struct sigaction sa;

#ifdef MASTER_TITLE
	set_master_title(argc, argv);
#endif
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-l") == 0 && i + 1 < argc) {
			char *end;
			long p = strtol(argv[++i], &end, 10);
			if (*end || p <= 0 || p > 65535) {
				logmsg("invalid port %s", argv[i]);
				return 2;
			}
			port = (int)p;
		} else if (strcmp(a, "-P") == 0 && i + 1 < argc) {
			pidfile = argv[++i];
		} else if ((strcmp(a, "-g") == 0 || strcmp(a, "-D") == 0) && i + 1 < argc) {
			i++;
		} else if (strncmp(a, "-D", 2) == 0) {
			/* -DFOREGROUND etc. */
		} else {
			logmsg("ignoring argument %s", a);
		}
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lfd = listen_on(port);
	if (lfd < 0) {
		logmsg("cannot listen on port %d: %s", port, strerror(errno));
		return 1;
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");
		if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0)
			logmsg("cannot write pid file %s: %s", pidfile, strerror(errno));
	}
	logmsg(NAME " is listening on port %d (all interfaces)", port);

	while (!stop_signal) {
		int n = 0, timeout = 1000, r;
		long long t = now_ms();

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (nconns < MAX_CONNS) {
			pfds[n].fd = lfd;
			pfds[n].events = POLLIN;
			idx[n++] = -1;
		}
		for (i = 0; i < MAX_CONNS; i++) {
			if (!conns[i])
				continue;
			if (conns[i]->deadline <= t) {
				close_conn(&conns[i]);
				nconns--;
				continue;
			}
			if (conns[i]->deadline - t < timeout)
				timeout = (int)(conns[i]->deadline - t);
			pfds[n].fd = conns[i]->fd;
			pfds[n].events = POLLIN;
			idx[n++] = i;
		}
		r = poll(pfds, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			logmsg("poll: %s", strerror(errno));
			break;
		}
		for (int k = 0; k < n && r > 0; k++) {
			struct conn *c;
			ssize_t got;

			if (!pfds[k].revents)
				continue;
			if (idx[k] < 0) {
				/* Accept as many as we have room for. */
				while (nconns < MAX_CONNS) {
					int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (cfd < 0)
						break;
					c = calloc(1, sizeof(*c));
					if (!c) {
						close(cfd);
						break;
					}
					c->fd = cfd;
					c->state = READING;
					c->deadline = now_ms() + READ_TIMEOUT_MS;
					for (i = 0; i < MAX_CONNS && conns[i]; i++)
						;
					conns[i] = c;
					nconns++;
				}
				continue;
			}
			c = conns[idx[k]];
			if (c->state == DRAINING) {
				char sink[4096];
				got = recv(c->fd, sink, sizeof(sink), 0);
				if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
					close_conn(&conns[idx[k]]);
					nconns--;
				}
				continue;
			}
			got = recv(c->fd, c->buf + c->len, REQ_MAX - 1 - c->len, 0);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got <= 0 && c->len == 0) {
				close_conn(&conns[idx[k]]);
				nconns--;
				continue;
			}
			if (got > 0)
				c->len += (size_t)got;
			c->buf[c->len] = '\0';
			if (got <= 0 || c->len >= REQ_MAX - 1 || strstr(c->buf, "\r\n\r\n") ||
			    strstr(c->buf, "\n\n"))
				respond(c);
		}
	}

	if (pidfile)
		unlink(pidfile);
	logmsg("exiting on signal %d", (int)stop_signal);
	return 0;
}
