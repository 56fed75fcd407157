/*
 * nnp: prints the effective uid. Installed setuid root (owner 0, mode 4755)
 * in the nonewprivs test image: run as uid 1000 it prints
 * "Effective uid: 0" unless no_new_privs is set, then "Effective uid: 1000".
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("Effective uid: %d\n", (int)geteuid());
	return fflush(stdout) == 0 ? 0 : 1;
}
