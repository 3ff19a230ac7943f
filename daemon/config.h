/* farenad's configuration: every setting in one place, with its default.
 * main.c fills one struct farenad_config (config_defaults(), then the
 * command line) before anything starts; each module reads its own part
 * (the store its store_config, the registry its reg_config, the engine its
 * io_config, the server the limits and caps) and hello reports them all
 * from here. */
#ifndef FARENA_DAEMON_CONFIG_H
#define FARENA_DAEMON_CONFIG_H

#include <stdint.h>

#include "proto_limits.h"
#include "io.h"
#include "registry.h"
#include "store.h"

/* Defaults of the settings that no module's own header defines. */
#define CONFIG_MAX_CLIENTS_DEFAULT  1024u
#define CONFIG_MIN_FREE_DEFAULT     (64u << 20)
#define CONFIG_REPLY_MEMORY_DEFAULT (256u << 20)

/* Plain struct, owned by main() for the daemon's whole life; modules keep
 * a borrowed pointer to it. Strings are borrowed from argv or the
 * environment. */
struct farenad_config {
    const char *socket;         /* NULL: the default path */
    struct store_config store;  /* dir, max_bytes, min_free, file_max */
    struct reg_config reg;      /* max_writers, max_handles per connection */
    struct io_config io;        /* engine, queue depth */
    struct proto_limits limits; /* max_message, max_depth, max_objects */
    uint32_t max_batch;         /* items per push_many / get_many / build */
    uint32_t max_clients;       /* simultaneous connections */
    uint64_t reply_memory;      /* replies queued by all connections */
    int verbosity;              /* -v adds one, -q takes one away */
};

/* Fills *cfg with every default (no socket, no directory yet). */
void config_defaults(struct farenad_config *cfg);

#endif
