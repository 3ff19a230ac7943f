/* systemd glue written from the protocols' documentation (sd_listen_fds(3),
 * sd_notify(3)) with no libsystemd dependency: socket activation and
 * readiness notification. Both are no-ops outside systemd. */
#ifndef FARENA_SYSD_H
#define FARENA_SYSD_H

/* Takes over the listening socket systemd passed (LISTEN_PID/LISTEN_FDS).
 * Returns 0 when the process was not socket-activated (or the variables name
 * another pid); 1 with *fd = the inherited descriptor, validated to be exactly
 * one listening AF_UNIX stream socket and made non-blocking and close-on-exec;
 * -1 with *why (static) when the inheritance is unusable. The LISTEN_*
 * variables are removed from the environment either way, so children never
 * see them. The caller owns *fd and must never unlink the socket's path. */
int sysd_listen_fd(int *fd, const char **why);

/* Sends state (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET, a path or an
 * abstract name starting with '@'. Returns 0 when NOTIFY_SOCKET is unset, 1
 * when sent, -1 with errno on failure (the caller logs; it is never fatal). */
int sysd_notify(const char *state);

#endif
