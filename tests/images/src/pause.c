/*
 * pause: the infra process of the berth test images (pause:3.9).
 *
 * Sleeps until SIGTERM or SIGINT, reaping any child that gets re-parented
 * to it (it usually runs as PID 1 of a pod's PID namespace), then exits 0.
 * Only libc is used; build with `gcc -static -O2`.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }
static void on_child(int sig) { (void)sig; }

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t blocked, waitmask;

	if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
		puts("pause (berth test image)");
		return 0;
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);

	/* Block the signals we wait for so none is lost between the check of
	 * stop_signal and sigsuspend(). */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGCHLD);
	sigprocmask(SIG_BLOCK, &blocked, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGCHLD);

	while (!stop_signal) {
		sigsuspend(&waitmask);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	return 0;
}
