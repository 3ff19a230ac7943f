/* farena protocol limits: defaults of the guards, shared by daemon and client. */
#ifndef FARENA_PROTO_LIMITS_H
#define FARENA_PROTO_LIMITS_H

#include <stdint.h>

#define PROTO_VERSION 1

/* Largest request or response, in bytes (--max-message). */
#define PROTO_MAX_MESSAGE_DEFAULT (64u << 20)
/* Smallest and largest values --max-message accepts. */
#define PROTO_MAX_MESSAGE_MIN (64u << 10)
#define PROTO_MAX_MESSAGE_MAX (1u << 30)
/* Deepest nesting of arrays/maps in one message (the envelope counts as 1). */
#define PROTO_MAX_DEPTH_DEFAULT 16u
/* Deepest max_depth that is useful: msgpack-c's unpacker refuses nesting
 * past 32 levels whatever the scanner allows. */
#define PROTO_MAX_DEPTH_MAX 32u
/* Most msgpack objects (every array/map element, keys included) in one
 * message. msgpack-c allocates about 24 bytes per object when it unpacks, so
 * this bounds that allocation independently of max_message. */
#define PROTO_MAX_OBJECTS_DEFAULT (1u << 20)
/* Most items in one push_many or get_many. */
#define PROTO_MAX_BATCH_DEFAULT 65536u
/* Longest method name and arena name, in bytes. */
#define PROTO_MAX_METHOD_LEN 32u
#define PROTO_MAX_NAME_LEN   255u
/* Largest file a writer may grow to: 4 GiB - 1 (offsets are u32). */
#define PROTO_FILE_MAX UINT32_MAX

/* The guards the scanner enforces; plain configuration, copied by value. */
struct proto_limits {
    uint32_t max_message; /* bytes */
    uint32_t max_depth;   /* nesting levels, envelope included */
    uint32_t max_objects; /* objects per message */
};

#define PROTO_LIMITS_DEFAULT                                                                       \
    {                                                                                              \
        PROTO_MAX_MESSAGE_DEFAULT, PROTO_MAX_DEPTH_DEFAULT, PROTO_MAX_OBJECTS_DEFAULT              \
    }

#endif
