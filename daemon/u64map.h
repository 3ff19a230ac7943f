/* A small open-addressing hash map from non-zero uint64 keys to pointers:
 * the registry's handle table, per-connection reference counts, names. */
#ifndef FARENA_DAEMON_U64MAP_H
#define FARENA_DAEMON_U64MAP_H

#include <stddef.h>
#include <stdint.h>

/* Plain struct so it can be embedded; zero-initialised it is an empty map.
 * The map owns its arrays, never the pointed-to values. */
struct u64map {
    uint64_t *keys; /* 0 marks an empty slot */
    void **vals;
    size_t cap; /* power of two, or 0 */
    size_t len;
};

/* Frees the map's arrays (not the values) and leaves it empty. */
void u64map_fini(struct u64map *m);

/* The value stored under key k (k != 0), or NULL. */
void *u64map_get(const struct u64map *m, uint64_t k);

/* Stores v (non-NULL) under k (k != 0), replacing any previous value.
 * Returns 0, or -1 when out of memory (the map is unchanged). Replacing the
 * value of a key already present never allocates and always succeeds. */
int u64map_put(struct u64map *m, uint64_t k, void *v);

/* Removes k; returns the value it had, or NULL if it was absent. */
void *u64map_del(struct u64map *m, uint64_t k);

/* Iterates: start with *pos = 0; each call returns 1 with the next key and
 * value, or 0 at the end. No put of a new key and no del may happen until
 * the iteration ends (u64map_del can move entries and shrink the table), so
 * to delete, collect the keys first and delete after the last call. */
int u64map_next(const struct u64map *m, size_t *pos, uint64_t *k, void **v);

#endif
