/* Reading the daemon's results: the malformed-result error and the map
 * lookups every call that reads a map shares. */
#include "internal.h"

#include <string.h>

/* Fails the call with EPROTO: the daemon's result has the wrong shape. */
int cl_bad_result(farena_client *c, const char *method, const char *why)
{
    return cl_fail(c, FARENA_EPROTO, "farenad's %s result is malformed: %s", method,
                   why ? why : "unexpected type");
}

/* Finds key in a msgpack map; NULL when absent. */
const msgpack_object *cl_map_get(const msgpack_object *map, const char *key)
{
    return proto_map_get(map, key);
}

/* Reads an optional unsigned map entry into *out (left alone if absent). */
int cl_map_uint(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *v = cl_map_get(map, key);

    if (v == NULL)
        return 0;
    return proto_read_uint(v, UINT64_MAX, out, NULL);
}

/* Copies an optional str map entry into out (NUL-terminated, truncated). */
int cl_map_str(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    const msgpack_object *v = cl_map_get(map, key);
    size_t n;

    if (v == NULL)
        return 0;
    if (v->type != MSGPACK_OBJECT_STR)
        return -1;
    n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
    if (n > 0)
        memcpy(out, v->via.str.ptr, n);
    out[n] = '\0';
    return 0;
}
