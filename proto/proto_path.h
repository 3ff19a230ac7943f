/* Where farenad listens by default, shared by the daemon and libfarena so
 * both resolve it the same way. */
#ifndef FARENA_PROTO_PATH_H
#define FARENA_PROTO_PATH_H

#include <stddef.h>

/* Writes the socket path into out (cap bytes): path itself when it is
 * neither NULL nor empty, else $FARENA_SOCKET, else
 * $XDG_RUNTIME_DIR/farena/farenad.sock, else /tmp/farena-$UID/farenad.sock
 * (the effective uid). Returns its length, or -1 when it does not fit (out
 * is then ""). Reads the environment: not thread-safe against setenv. */
int proto_socket_path(const char *path, char *out, size_t cap);

#endif
