/* caps.c - the limits the container runs under: no_new_privs, the
 * capability bounding set (and the permitted/effective sets) cut to
 * podman's default list, no ambient or inheritable capabilities; and the
 * loopback interface of the container's own network namespace brought up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run.h"

/* podman's default_capabilities (containers.conf of Debian 12) */
static const int default_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_NET_BIND_SERVICE,
	CAP_SETFCAP, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_CHROOT,
};

int caps_restrict(void)
{
	uint64_t keep = 0;
	for (size_t k = 0; k < sizeof default_caps / sizeof default_caps[0]; k++)
		keep |= 1ULL << default_caps[k];
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		run_err("cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	/* up to the kernel's last capability, whatever this header knows */
	for (int c = 0; c < 64 && prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++) {
		if ((keep >> c) & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
			run_err("cannot drop capability %d from the bounding set: %s", c, strerror(errno));
			return -1;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		run_err("cannot clear the ambient capabilities: %s", strerror(errno));
		return -1;
	}
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &h, d) != 0) {
		run_err("capget: %s", strerror(errno));
		return -1;
	}
	for (int k = 0; k < 2; k++) {
		uint32_t mask = (uint32_t)(keep >> (32 * k));
		d[k].permitted &= mask;
		d[k].effective &= mask;
		d[k].inheritable = 0;
	}
	if (syscall(SYS_capset, &h, d) != 0) {
		run_err("capset: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int net_loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		run_err("socket: %s", strerror(errno));
		return -1;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (rc != 0)
		run_err("cannot bring up the loopback interface: %s", strerror(errno));
	close(s);
	return rc;
}
