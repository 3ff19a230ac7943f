/* The default socket path; see proto_path.h. */
#include "proto_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Resolves the socket path; see proto_path.h. */
int proto_socket_path(const char *path, char *out, size_t cap)
{
    const char *env;
    int n;

    if (out == NULL || cap == 0)
        return -1;
    if (path != NULL && path[0] != '\0')
        n = snprintf(out, cap, "%s", path);
    else if ((env = getenv("FARENA_SOCKET")) != NULL && env[0] != '\0')
        n = snprintf(out, cap, "%s", env);
    else if ((env = getenv("XDG_RUNTIME_DIR")) != NULL && env[0] != '\0')
        n = snprintf(out, cap, "%s/farena/farenad.sock", env);
    else
        n = snprintf(out, cap, "/tmp/farena-%lu/farenad.sock", (unsigned long)geteuid());
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -1;
    }
    return n;
}
