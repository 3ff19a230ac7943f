/* The ordered name set: a recursive AVL tree (height at most about
 * 1.44 log2 n, so about 30 levels for a million names: recursion is safe). */
#include "nametree.h"

#include <string.h>

/* Byte-order comparison; see nametree.h. */
int nametree_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* The height of a possibly empty subtree. */
static int height(const struct nametree_node *n)
{
    return n != NULL ? n->height : 0;
}

/* Recomputes n's height from its children. */
static void fix_height(struct nametree_node *n)
{
    int l = height(n->left), r = height(n->right);

    n->height = (l > r ? l : r) + 1;
}

/* Rotates n's left child up; returns the new subtree root. */
static struct nametree_node *rotate_right(struct nametree_node *n)
{
    struct nametree_node *l = n->left;

    /* Balancing only rotates a side that is taller, hence present; the
     * check keeps optimising compilers' -Wnull-dereference quiet. */
    if (l == NULL)
        return n;
    n->left = l->right;
    l->right = n;
    fix_height(n);
    fix_height(l);
    return l;
}

/* Rotates n's right child up; returns the new subtree root. */
static struct nametree_node *rotate_left(struct nametree_node *n)
{
    struct nametree_node *r = n->right;

    if (r == NULL) /* as in rotate_right */
        return n;
    n->right = r->left;
    r->left = n;
    fix_height(n);
    fix_height(r);
    return r;
}

/* Restores the AVL balance at n after one of its subtrees changed height by
 * one; returns the subtree's root. */
static struct nametree_node *balance(struct nametree_node *n)
{
    int d;

    fix_height(n);
    d = height(n->left) - height(n->right);
    if (d > 1) {
        if (height(n->left->left) < height(n->left->right))
            n->left = rotate_left(n->left);
        return rotate_right(n);
    }
    if (d < -1) {
        if (height(n->right->right) < height(n->right->left))
            n->right = rotate_right(n->right);
        return rotate_left(n);
    }
    return n;
}

/* Inserts n under root; returns the new root. */
static struct nametree_node *insert(struct nametree_node *root, struct nametree_node *n)
{
    if (root == NULL) {
        n->left = n->right = NULL;
        n->height = 1;
        return n;
    }
    if (nametree_cmp(n->key, n->len, root->key, root->len) < 0)
        root->left = insert(root->left, n);
    else
        root->right = insert(root->right, n);
    return balance(root);
}

/* Detaches the smallest node of the non-empty subtree root into *min;
 * returns what remains. */
static struct nametree_node *remove_min(struct nametree_node *root, struct nametree_node **min)
{
    if (root->left == NULL) {
        *min = root;
        return root->right;
    }
    root->left = remove_min(root->left, min);
    return balance(root);
}

/* Removes n from the subtree root, which contains it; returns the new root. */
static struct nametree_node *remove_node(struct nametree_node *root, struct nametree_node *n)
{
    int c = nametree_cmp(n->key, n->len, root->key, root->len);
    struct nametree_node *m;

    if (c < 0) {
        root->left = remove_node(root->left, n);
    } else if (c > 0) {
        root->right = remove_node(root->right, n);
    } else {
        if (root->right == NULL)
            return root->left;
        m = NULL;
        root->right = remove_min(root->right, &m);
        m->left = root->left;
        m->right = root->right;
        root = m;
    }
    return balance(root);
}

/* Adds n; see nametree.h. */
void nametree_insert(struct nametree *t, struct nametree_node *n)
{
    t->root = insert(t->root, n);
}

/* Removes n; see nametree.h. */
void nametree_remove(struct nametree *t, struct nametree_node *n)
{
    t->root = remove_node(t->root, n);
    n->left = n->right = NULL;
}

/* Walks down from the root, remembering the last node that qualified. */
struct nametree_node *nametree_seek(const struct nametree *t, const char *key, size_t len,
                                    int strict)
{
    struct nametree_node *n = t->root, *best = NULL;

    while (n != NULL) {
        int c = nametree_cmp(n->key, n->len, key, len);
        if (c > 0 || (c == 0 && !strict)) {
            best = n;
            n = n->left;
        } else {
            n = n->right;
        }
    }
    return best;
}
