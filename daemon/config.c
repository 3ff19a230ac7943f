/* farenad's defaults; see config.h. */
#include "config.h"

#include <string.h>

/* Fills every default; see config.h. */
void config_defaults(struct farenad_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->store.min_free = CONFIG_MIN_FREE_DEFAULT;
    cfg->store.file_max = PROTO_FILE_MAX;
    cfg->reg.max_writers = REG_MAX_WRITERS_DEFAULT;
    cfg->reg.max_handles = REG_MAX_HANDLES_DEFAULT;
    cfg->io.kind = IO_AUTO;
    cfg->io.depth = IO_DEPTH_DEFAULT;
    cfg->limits.max_message = PROTO_MAX_MESSAGE_DEFAULT;
    cfg->limits.max_depth = PROTO_MAX_DEPTH_DEFAULT;
    cfg->limits.max_objects = PROTO_MAX_OBJECTS_DEFAULT;
    cfg->max_batch = PROTO_MAX_BATCH_DEFAULT;
    cfg->max_clients = CONFIG_MAX_CLIENTS_DEFAULT;
    cfg->reply_memory = CONFIG_REPLY_MEMORY_DEFAULT;
}
