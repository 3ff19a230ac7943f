/* An ordered set of names: an intrusive AVL tree keyed by the names' bytes
 * (unsigned byte order, a prefix before its extensions), so that a listing
 * can resume after any name in O(log n) whatever changed in between. No
 * allocation: the caller embeds a struct nametree_node in each element and
 * owns its memory and the key bytes. */
#ifndef FARENA_DAEMON_NAMETREE_H
#define FARENA_DAEMON_NAMETREE_H

#include <stddef.h>

/* One element's links and key. key points to len bytes owned by the
 * element; they must not change while the node is in a tree. */
struct nametree_node {
    struct nametree_node *left, *right;
    const char *key;
    size_t len;
    int height; /* of the subtree rooted here: 1 for a leaf */
};

/* The tree; zero-initialise it (NAMETREE_INIT) before use. It owns nothing. */
struct nametree {
    struct nametree_node *root;
};

#define NAMETREE_INIT                                                                              \
    {                                                                                              \
        NULL                                                                                       \
    }

/* Compares two keys in byte order: negative, 0 or positive as memcmp, a
 * proper prefix sorting first. */
int nametree_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* Adds n, whose key and len are set and not already in t (the caller checks:
 * duplicates are not detected). O(log n), no allocation. */
void nametree_insert(struct nametree *t, struct nametree_node *n);

/* Removes n, which must be in t. O(log n). */
void nametree_remove(struct nametree *t, struct nametree_node *n);

/* The first node whose key sorts after (key, len): strictly after when
 * strict is set, else at or after. NULL when there is none. The node stays
 * valid until it is removed. */
struct nametree_node *nametree_seek(const struct nametree *t, const char *key, size_t len,
                                    int strict);

#endif
