/* Linear probing with backward-shift deletion: no tombstones, so lookups stay
 * short however many handles come and go over the daemon's life. */
#include "u64map.h"

#include <stdlib.h>

/* A strong 64-bit mix (splitmix64's finaliser): handles are sequential, and
 * sequential keys must not cluster. */
static uint64_t u64map_hash(uint64_t k)
{
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ULL;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebULL;
    k ^= k >> 31;
    return k;
}

/* The slot holding k, or the empty slot where k would go. */
static size_t u64map_slot(const struct u64map *m, uint64_t k)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)u64map_hash(k) & mask;

    while (m->keys[i] != 0 && m->keys[i] != k)
        i = (i + 1) & mask;
    return i;
}

/* Rehashes into ncap slots (a power of two). Returns 0 or -1 (ENOMEM). */
static int u64map_resize(struct u64map *m, size_t ncap)
{
    struct u64map n = {0};

    n.keys = calloc(ncap, sizeof(*n.keys));
    n.vals = calloc(ncap, sizeof(*n.vals));
    if (n.keys == NULL || n.vals == NULL) {
        free(n.keys);
        free(n.vals);
        return -1;
    }
    n.cap = ncap;
    n.len = m->len;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == 0)
            continue;
        size_t j = u64map_slot(&n, m->keys[i]);
        n.keys[j] = m->keys[i];
        n.vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    *m = n;
    return 0;
}

/* Frees the arrays; see u64map.h. */
void u64map_fini(struct u64map *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = 0;
    m->len = 0;
}

/* Looks k up; see u64map.h. */
void *u64map_get(const struct u64map *m, uint64_t k)
{
    if (m->cap == 0 || k == 0)
        return NULL;
    size_t i = u64map_slot(m, k);
    return m->keys[i] == k ? m->vals[i] : NULL;
}

/* Inserts or replaces; grows at a load factor of 1/2. A replacement is
 * done in place, before any growth, so it never allocates and never fails. */
int u64map_put(struct u64map *m, uint64_t k, void *v)
{
    size_t i;

    if (k == 0 || v == NULL)
        return -1;
    if (m->cap != 0) {
        i = u64map_slot(m, k);
        if (m->keys[i] == k) {
            m->vals[i] = v;
            return 0;
        }
    }
    if ((m->len + 1) * 2 > m->cap) {
        if (u64map_resize(m, m->cap == 0 ? 16 : m->cap * 2) < 0)
            return -1;
    }
    i = u64map_slot(m, k);
    m->keys[i] = k;
    m->vals[i] = v;
    m->len++;
    return 0;
}

/* Removes k and shifts later members of its probe run back into the hole,
 * so every remaining key stays reachable from its home slot. */
void *u64map_del(struct u64map *m, uint64_t k)
{
    if (m->cap == 0 || k == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t hole = u64map_slot(m, k);
    if (m->keys[hole] != k)
        return NULL;
    void *old = m->vals[hole];

    size_t i = hole;
    for (;;) {
        i = (i + 1) & mask;
        if (m->keys[i] == 0)
            break;
        size_t home = (size_t)u64map_hash(m->keys[i]) & mask;
        /* The entry at i may move to the hole only if its home slot is not
         * cyclically within (hole, i]. */
        int stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays)
            continue;
        m->keys[hole] = m->keys[i];
        m->vals[hole] = m->vals[i];
        hole = i;
    }
    m->keys[hole] = 0;
    m->vals[hole] = NULL;
    m->len--;
    /* Shrink when mostly empty, so a burst of handles does not pin memory. */
    if (m->cap > 64 && m->len * 8 < m->cap)
        (void)u64map_resize(m, m->cap / 2);
    return old;
}

/* Steps through the occupied slots; see u64map.h. */
int u64map_next(const struct u64map *m, size_t *pos, uint64_t *k, void **v)
{
    while (*pos < m->cap) {
        size_t i = (*pos)++;
        if (m->keys[i] != 0) {
            *k = m->keys[i];
            *v = m->vals[i];
            return 1;
        }
    }
    return 0;
}
