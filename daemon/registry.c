/* The handle registry; the rules are in registry.h. Every handle maps to one
 * struct reg_obj in a single table, so a lookup by handle is one probe
 * whatever its kind. */
#include "registry.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_limits.h"
#include "nametree.h"
#include "u64map.h"

enum reg_kind { REG_WRITER = 1, REG_FILE, REG_ARENA };

struct reg_name;

/* One live handle. Writers and owned files sit on their owner's list. */
struct reg_obj {
    uint64_t handle;
    enum reg_kind kind;
    union {
        struct store_writer *w;
        struct store_file *f;
        struct store_arena *a;
    } u;
    /* Writer or file: the owning connection (NULL for a file nobody owns,
     * alive only through arenas) and the links in its list. */
    struct reg_owner *owner;
    struct reg_obj *oprev, *onext;
    /* File: how many live arena handles contain it. */
    uint32_t narenas;
    /* Arena: owner references plus names, and the names in binding order. */
    uint64_t refs;
    struct reg_name *names, *names_tail;
};

/* A bound name. Names hash into r->names; equal hashes chain on hnext.
 * The same names sit in r->sorted, in byte order, for reg_list_next. */
struct reg_name {
    uint64_t hash;
    struct reg_name *hnext;
    struct nametree_node tnode; /* key: text, len */
    struct reg_obj *arena;
    struct reg_name *aprev, *anext; /* in the arena's list, oldest first */
    size_t len;
    char text[]; /* len bytes, not NUL-terminated */
};

struct reg {
    struct store *st;
    struct reg_config cfg;
    uint64_t next_handle;
    struct u64map objs;     /* handle -> struct reg_obj */
    struct u64map names;    /* name hash -> first struct reg_name */
    struct nametree sorted; /* the same names in byte order */
    uint64_t nnames;
    uint64_t nowners; /* live owners, for reg_free's check that none is left */
};

struct reg_owner {
    struct reg *r;
    struct reg_obj *owned; /* writers and files this owner holds */
    struct u64map arefs;   /* arena handle -> reference count (as uintptr_t) */
    uint32_t nwriters;
    uint32_t nhandles; /* writers + files + arena references */
};

/* The out-of-memory failure: there is no dedicated code, and io_error is the
 * one that says "the daemon could not do it, try again later". */
static int reg_nomem(struct err *err)
{
    return err_set(err, PROTO_IO_ERROR, "out of memory");
}

/* Called by the store when a file's last reference drops: its handle ends. */
static void reg_on_file_free(void *ctx, uint64_t tag)
{
    struct reg *r = ctx;
    struct reg_obj *obj;

    if (tag == 0)
        return;
    obj = u64map_del(&r->objs, tag);
    assert(obj != NULL && obj->kind == REG_FILE && obj->owner == NULL);
    free(obj);
}

/* Creates the registry and its store; see registry.h. */
int reg_new(const struct store_config *scfg, const struct reg_config *rcfg, struct reg **out,
            struct err *err)
{
    struct reg *r = calloc(1, sizeof(*r));
    struct store_config sc = *scfg;

    if (r == NULL)
        return reg_nomem(err);
    r->cfg = *rcfg;
    if (r->cfg.max_writers == 0)
        r->cfg.max_writers = REG_MAX_WRITERS_DEFAULT;
    if (r->cfg.max_handles == 0)
        r->cfg.max_handles = REG_MAX_HANDLES_DEFAULT;
    r->next_handle = 1;
    sc.on_file_free = reg_on_file_free;
    sc.on_file_free_ctx = r;
    if (store_new(&sc, &r->st, err) < 0) {
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

/* Registers a new object under the next handle. Returns it, or NULL. */
static struct reg_obj *reg_obj_new(struct reg *r, enum reg_kind kind)
{
    struct reg_obj *obj = calloc(1, sizeof(*obj));

    if (obj == NULL)
        return NULL;
    obj->kind = kind;
    obj->handle = r->next_handle;
    if (u64map_put(&r->objs, obj->handle, obj) < 0) {
        free(obj);
        return NULL;
    }
    r->next_handle++;
    return obj;
}

/* Unregisters and frees obj (a writer or arena; files end through the
 * store's callback). */
static void reg_obj_drop(struct reg *r, struct reg_obj *obj)
{
    void *was = u64map_del(&r->objs, obj->handle);

    assert(was == obj);
    (void)was;
    free(obj);
}

/* The object under h if it has the given kind. */
static struct reg_obj *reg_find(const struct reg *r, uint64_t h, enum reg_kind kind)
{
    struct reg_obj *obj = u64map_get(&r->objs, h);

    return obj != NULL && obj->kind == kind ? obj : NULL;
}

/* Adds obj (writer or file) to o's list. */
static void reg_own(struct reg_owner *o, struct reg_obj *obj)
{
    obj->owner = o;
    obj->oprev = NULL;
    obj->onext = o->owned;
    if (o->owned != NULL)
        o->owned->oprev = obj;
    o->owned = obj;
}

/* Removes obj from its owner's list. */
static void reg_disown(struct reg_obj *obj)
{
    struct reg_owner *o = obj->owner;

    if (obj->oprev != NULL)
        obj->oprev->onext = obj->onext;
    else
        o->owned = obj->onext;
    if (obj->onext != NULL)
        obj->onext->oprev = obj->oprev;
    obj->owner = NULL;
    obj->oprev = obj->onext = NULL;
}

/* Registers arena a (refcount 1 in the store) with no references yet, and
 * counts it in each of its files. NULL on ENOMEM (a untouched). */
static struct reg_obj *reg_arena_register(struct reg *r, struct store_arena *a)
{
    struct reg_obj *obj = reg_obj_new(r, REG_ARENA);
    size_t n;

    if (obj == NULL)
        return NULL;
    obj->u.a = a;
    n = store_arena_nfiles(a);
    for (size_t i = 0; i < n; i++) {
        struct reg_obj *fo = u64map_get(&r->objs, store_file_tag(store_arena_file(a, i)));
        assert(fo != NULL && fo->kind == REG_FILE);
        if (fo != NULL)
            fo->narenas++;
    }
    return obj;
}

/* Drops one reference to the arena obj; at zero its handle ends, its files
 * leave it, and the store may free it (and files nobody else holds). */
static void reg_arena_unref(struct reg *r, struct reg_obj *obj)
{
    struct store_arena *a = obj->u.a;
    size_t n;

    assert(obj->refs > 0);
    if (--obj->refs > 0)
        return;
    n = store_arena_nfiles(a);
    for (size_t i = 0; i < n; i++) {
        struct reg_obj *fo = u64map_get(&r->objs, store_file_tag(store_arena_file(a, i)));
        assert(fo != NULL && fo->narenas > 0);
        if (fo != NULL && fo->narenas > 0)
            fo->narenas--;
    }
    reg_obj_drop(r, obj);
    store_arena_unref(a);
}

/* Frees every name, their references, and the store. */
void reg_free(struct reg *r)
{
    struct reg_name *batch[64];

    if (r == NULL)
        return;
    assert(r->nowners == 0);
    /* Unbinding changes the name table, so names are collected first (a
     * batch at a time, without allocating) and unbound after the iteration.
     * Unbinding one name frees only that name (an arena ends with its last),
     * so the others collected stay valid. */
    while (r->nnames > 0) {
        size_t pos = 0, n = 0;
        uint64_t k;
        void *v;

        while (n < sizeof(batch) / sizeof(batch[0]) && u64map_next(&r->names, &pos, &k, &v)) {
            for (struct reg_name *nm = v; nm != NULL && n < sizeof(batch) / sizeof(batch[0]);
                 nm = nm->hnext)
                batch[n++] = nm;
        }
        assert(n > 0);
        if (n == 0)
            break; /* cannot happen: nnames counts the table's names */
        for (size_t i = 0; i < n; i++)
            (void)reg_unname(r, batch[i]->text, batch[i]->len, &(struct err){0});
    }
    u64map_fini(&r->names);
    u64map_fini(&r->objs);
    store_free(r->st);
    free(r);
}

/* The store; see registry.h. */
struct store *reg_store(struct reg *r)
{
    return r->st;
}

/* Live counts; see registry.h. */
void reg_stats_get(const struct reg *r, struct reg_stats *out)
{
    out->names = r->nnames;
}

/* A new owner; see registry.h. */
struct reg_owner *reg_owner_new(struct reg *r)
{
    struct reg_owner *o = calloc(1, sizeof(*o));

    if (o == NULL)
        return NULL;
    o->r = r;
    r->nowners++;
    return o;
}

/* Drops one owned writer or file and its handle count. */
static void reg_owner_drop_obj(struct reg_owner *o, struct reg_obj *obj)
{
    struct reg *r = o->r;

    reg_disown(obj);
    o->nhandles--;
    if (obj->kind == REG_WRITER) {
        struct store_writer *w = obj->u.w;
        o->nwriters--;
        reg_obj_drop(r, obj);
        store_writer_discard(w);
    } else {
        /* The handle ends in reg_on_file_free if this was the last
         * reference; otherwise it lives on through the file's arenas. */
        store_file_unref(obj->u.f);
    }
}

/* Drops everything o holds; see registry.h. */
void reg_owner_free(struct reg_owner *o)
{
    struct reg *r;
    size_t pos = 0;
    uint64_t k;
    void *v;

    if (o == NULL)
        return;
    r = o->r;
    while (o->owned != NULL)
        reg_owner_drop_obj(o, o->owned);
    /* Iterating o->arefs is safe: dropping arenas changes r's tables, never
     * o->arefs, which goes whole afterwards. */
    while (u64map_next(&o->arefs, &pos, &k, &v)) {
        struct reg_obj *obj = reg_find(r, k, REG_ARENA);
        uintptr_t n = (uintptr_t)v;
        assert(obj != NULL && obj->refs >= n);
        if (obj == NULL)
            continue; /* cannot happen: an owner's reference keeps the arena */
        /* Every reference but the last cannot end the arena. */
        obj->refs -= n - 1;
        reg_arena_unref(r, obj);
    }
    u64map_fini(&o->arefs);
    r->nowners--;
    free(o);
}

/* o's writer count; see registry.h. */
uint32_t reg_owner_writers(const struct reg_owner *o)
{
    return o->nwriters;
}

/* o's handle count; see registry.h. */
uint32_t reg_owner_handles(const struct reg_owner *o)
{
    return o->nhandles;
}

/* Checks that o may take one more handle. */
static int reg_check_handles(const struct reg_owner *o, struct err *err)
{
    if (o->nhandles >= o->r->cfg.max_handles)
        return err_set(err, PROTO_LIMIT, "this connection holds %" PRIu32 " handles (max_handles)",
                       o->nhandles);
    return 0;
}

/* Creates a writer owned by o; see registry.h. */
int reg_writer_new(struct reg_owner *o, uint16_t index, uint64_t *handle, struct err *err)
{
    struct reg *r = o->r;
    struct store_writer *w;
    struct reg_obj *obj;

    if (o->nwriters >= r->cfg.max_writers)
        return err_set(err, PROTO_LIMIT,
                       "this connection has %" PRIu32 " open writers (max_writers)", o->nwriters);
    if (reg_check_handles(o, err) < 0)
        return -1;
    if (store_writer_new(r->st, index, &w, err) < 0)
        return -1;
    obj = reg_obj_new(r, REG_WRITER);
    if (obj == NULL) {
        store_writer_discard(w);
        return reg_nomem(err);
    }
    obj->u.w = w;
    reg_own(o, obj);
    o->nwriters++;
    o->nhandles++;
    *handle = obj->handle;
    return 0;
}

/* o's writer object under h, or NULL with no_such_handle. */
static struct reg_obj *reg_owned_writer(struct reg_owner *o, uint64_t h, struct err *err)
{
    struct reg_obj *obj = reg_find(o->r, h, REG_WRITER);

    if (obj == NULL || obj->owner != o) {
        err_set(err, PROTO_NO_SUCH_HANDLE, "no writer %" PRIu64 " on this connection", h);
        return NULL;
    }
    return obj;
}

/* o's writer; see registry.h. */
struct store_writer *reg_writer(struct reg_owner *o, uint64_t h, struct err *err)
{
    struct reg_obj *obj = reg_owned_writer(o, h, err);

    return obj != NULL ? obj->u.w : NULL;
}

/* Finishes a writer into an owned file; see registry.h. The file's handle
 * is reserved before the store call so that an allocation failure cannot
 * strand a finished file without a handle. */
int reg_finish(struct reg_owner *o, uint64_t wh, uint64_t *fh, struct err *err)
{
    struct reg *r = o->r;
    struct reg_obj *wobj = reg_owned_writer(o, wh, err);
    struct reg_obj *fobj;
    struct store_file *f;

    if (wobj == NULL)
        return -1;
    fobj = reg_obj_new(r, REG_FILE);
    if (fobj == NULL)
        return reg_nomem(err);
    if (store_finish(wobj->u.w, &f, err) < 0) {
        /* The reserved number is simply never used: handles are not
         * reused, and a gap is harmless. */
        reg_obj_drop(r, fobj);
        return -1;
    }
    reg_disown(wobj);
    o->nwriters--;
    reg_obj_drop(r, wobj);
    fobj->u.f = f;
    store_file_set_tag(f, fobj->handle);
    reg_own(o, fobj);
    *fh = fobj->handle;
    return 0;
}

/* Adds one reference of o to the arena obj. Returns 0 or -1 (ENOMEM). */
static int reg_owner_ref(struct reg_owner *o, struct reg_obj *obj)
{
    uintptr_t n = (uintptr_t)u64map_get(&o->arefs, obj->handle);

    if (u64map_put(&o->arefs, obj->handle, (void *)(n + 1)) < 0)
        return -1;
    obj->refs++;
    o->nhandles++;
    return 0;
}

/* Turns a writer into a one-file arena; see registry.h. */
int reg_into_arena(struct reg_owner *o, uint64_t wh, uint64_t *ah, struct err *err)
{
    struct reg *r = o->r;
    struct reg_obj *wobj = reg_owned_writer(o, wh, err);
    struct reg_obj *aobj, *fobj;
    struct store_arena *a;

    if (wobj == NULL)
        return -1;
    /* Reserve the table room up front: after store_into_arena the writer is
     * gone and nothing may fail any more. */
    aobj = reg_obj_new(r, REG_ARENA);
    fobj = reg_obj_new(r, REG_FILE);
    if (aobj == NULL || fobj == NULL ||
        u64map_put(&o->arefs, aobj->handle, (void *)(uintptr_t)1) < 0) {
        if (aobj != NULL)
            reg_obj_drop(r, aobj);
        if (fobj != NULL)
            reg_obj_drop(r, fobj);
        return reg_nomem(err);
    }
    if (store_into_arena(wobj->u.w, &a, err) < 0) {
        u64map_del(&o->arefs, aobj->handle);
        reg_obj_drop(r, aobj);
        reg_obj_drop(r, fobj);
        return -1;
    }
    reg_disown(wobj);
    o->nwriters--;
    reg_obj_drop(r, wobj);

    fobj->u.f = store_arena_file(a, 0);
    store_file_set_tag(fobj->u.f, fobj->handle);
    fobj->narenas = 1;
    aobj->u.a = a;
    aobj->refs = 1;
    /* The writer's handle count becomes the arena reference's. */
    *ah = aobj->handle;
    return 0;
}

/* Builds an arena from file handles; see registry.h. */
int reg_build(struct reg_owner *o, const uint64_t *fh, size_t n, enum reg_build_mode mode,
              uint64_t *ah, struct err *err)
{
    struct reg *r = o->r;
    struct store_file **files = NULL;
    struct store_arena *a;
    struct reg_obj *aobj;
    int rc;

    if (reg_check_handles(o, err) < 0)
        return -1;
    if (n > 0) {
        files = calloc(n, sizeof(*files));
        if (files == NULL)
            return reg_nomem(err);
    }
    /* Any connection may build with any live file, not only its owner:
     * every peer runs under the daemon's own uid, so ownership decides
     * lifetime and cleanup, not who may see what, and handing finished
     * files to a coordinator is the crate's parallel-writing pattern. A
     * file still registered but held by no owner and no live arena (only
     * by an arena whose handle has ended, kept by the store until a reply
     * reading from it is sent) is not live. */
    for (size_t i = 0; i < n; i++) {
        struct reg_obj *obj = reg_find(r, fh[i], REG_FILE);
        if (obj == NULL || (obj->owner == NULL && obj->narenas == 0)) {
            free(files);
            return err_set_item(err, PROTO_NO_SUCH_HANDLE, (uint32_t)i,
                                "item %zu: no live file %" PRIu64, i, fh[i]);
        }
        files[i] = obj->u.f;
    }
    if (mode == REG_BUILD_IN_ORDER)
        rc = store_arena_new(r->st, files, n, &a, err);
    else
        rc = store_build(r->st, files, n, &a, err);
    free(files);
    if (rc < 0)
        return -1;
    aobj = reg_arena_register(r, a);
    if (aobj == NULL) {
        store_arena_unref(a);
        return reg_nomem(err);
    }
    if (reg_owner_ref(o, aobj) < 0) {
        aobj->refs = 1;
        reg_arena_unref(r, aobj);
        return reg_nomem(err);
    }
    *ah = aobj->handle;
    return 0;
}

/* The live arena object under h, or NULL with no_such_handle. */
static struct reg_obj *reg_live_arena(const struct reg *r, uint64_t h, struct err *err)
{
    struct reg_obj *obj = reg_find(r, h, REG_ARENA);

    if (obj == NULL)
        err_set(err, PROTO_NO_SUCH_HANDLE, "no arena %" PRIu64, h);
    return obj;
}

/* Any live arena; see registry.h. */
struct store_arena *reg_arena(const struct reg *r, uint64_t h, struct err *err)
{
    struct reg_obj *obj = reg_live_arena(r, h, err);

    return obj != NULL ? obj->u.a : NULL;
}

/* A live arena's file's handle; see registry.h. */
uint64_t reg_file_handle(const struct store_file *f)
{
    return store_file_tag(f);
}

/* arena_info's numbers; see registry.h. */
int reg_arena_info(const struct reg *r, uint64_t h, struct reg_arena_info *out, struct err *err)
{
    struct reg_obj *obj = reg_live_arena(r, h, err);

    if (obj == NULL)
        return -1;
    out->files = store_arena_nfiles(obj->u.a);
    out->bytes = store_arena_bytes(obj->u.a);
    out->refs = obj->refs;
    out->name = obj->names != NULL ? obj->names->text : NULL;
    out->name_len = obj->names != NULL ? obj->names->len : 0;
    return 0;
}

/* o takes a reference; see registry.h. */
int reg_open(struct reg_owner *o, uint64_t h, struct err *err)
{
    struct reg_obj *obj = reg_live_arena(o->r, h, err);

    if (obj == NULL || reg_check_handles(o, err) < 0)
        return -1;
    if (reg_owner_ref(o, obj) < 0)
        return reg_nomem(err);
    return 0;
}

/* Drops what o holds under h; see registry.h. */
int reg_release(struct reg_owner *o, uint64_t h, struct err *err)
{
    struct reg *r = o->r;
    struct reg_obj *obj = u64map_get(&r->objs, h);
    uintptr_t n;

    if (obj == NULL)
        return err_set(err, PROTO_NO_SUCH_HANDLE, "no handle %" PRIu64, h);
    if (obj->kind != REG_ARENA) {
        if (obj->owner != o)
            return err_set(err, PROTO_NO_SUCH_HANDLE,
                           "this connection holds nothing under handle %" PRIu64, h);
        reg_owner_drop_obj(o, obj);
        return 0;
    }
    n = (uintptr_t)u64map_get(&o->arefs, h);
    if (n == 0)
        return err_set(err, PROTO_NO_SUCH_HANDLE,
                       "this connection holds no reference to arena %" PRIu64, h);
    if (n == 1)
        u64map_del(&o->arefs, h);
    else
        u64map_put(&o->arefs, h, (void *)(n - 1)); /* replaces in place: cannot fail */
    o->nhandles--;
    reg_arena_unref(r, obj);
    return 0;
}

/* FNV-1a over the name, never 0 (0 marks an empty map slot). */
static uint64_t reg_name_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h != 0 ? h : 1;
}

/* The bound name equal to s, or NULL; *hash gets s's hash. */
static struct reg_name *reg_name_find(const struct reg *r, const char *s, size_t len,
                                      uint64_t *hash)
{
    struct reg_name *nm;

    *hash = reg_name_hash(s, len);
    for (nm = u64map_get(&r->names, *hash); nm != NULL; nm = nm->hnext) {
        if (nm->len == len && memcmp(nm->text, s, len) == 0)
            return nm;
    }
    return NULL;
}

/* Checks a name's shape (the method layer checks it too; the registry does
 * not trust its callers with invariants it relies on). */
static int reg_name_check(const char *s, size_t len, struct err *err)
{
    if (len == 0 || len > PROTO_MAX_NAME_LEN)
        return err_set(err, PROTO_BAD_REQUEST, "a name must be 1..%u bytes, not %zu",
                       PROTO_MAX_NAME_LEN, len);
    if (memchr(s, '\0', len) != NULL)
        return err_set(err, PROTO_BAD_REQUEST, "a name must not contain NUL");
    return 0;
}

/* Binds a name; see registry.h. */
int reg_name(struct reg *r, uint64_t h, const char *name, size_t len, struct err *err)
{
    struct reg_obj *obj;
    struct reg_name *nm, *first;
    uint64_t hash;

    if (reg_name_check(name, len, err) < 0)
        return -1;
    obj = reg_live_arena(r, h, err);
    if (obj == NULL)
        return -1;
    if (reg_name_find(r, name, len, &hash) != NULL)
        return err_set(err, PROTO_NAME_TAKEN, "the name \"%.*s\" is taken",
                       (int)(len > 64 ? 64 : len), name);
    nm = malloc(sizeof(*nm) + len);
    if (nm == NULL)
        return reg_nomem(err);
    nm->hash = hash;
    nm->len = len;
    memcpy(nm->text, name, len);
    nm->arena = obj;
    first = u64map_get(&r->names, hash);
    nm->hnext = first;
    if (u64map_put(&r->names, hash, nm) < 0) {
        free(nm);
        return reg_nomem(err);
    }
    nm->tnode.key = nm->text;
    nm->tnode.len = len;
    nametree_insert(&r->sorted, &nm->tnode);
    nm->anext = NULL;
    nm->aprev = obj->names_tail;
    if (obj->names_tail != NULL)
        obj->names_tail->anext = nm;
    else
        obj->names = nm;
    obj->names_tail = nm;
    obj->refs++;
    r->nnames++;
    return 0;
}

/* Resolves a name; see registry.h. */
int reg_lookup(const struct reg *r, const char *name, size_t len, uint64_t *h, struct err *err)
{
    uint64_t hash;
    struct reg_name *nm = reg_name_find(r, name, len, &hash);

    if (nm == NULL)
        return err_set(err, PROTO_NO_SUCH_NAME, "no arena named \"%.*s\"",
                       (int)(len > 64 ? 64 : len), name);
    *h = nm->arena->handle;
    return 0;
}

/* Unbinds a name; see registry.h. */
int reg_unname(struct reg *r, const char *name, size_t len, struct err *err)
{
    uint64_t hash;
    struct reg_name *nm = reg_name_find(r, name, len, &hash);
    struct reg_name **pp;
    struct reg_obj *obj;

    if (nm == NULL)
        return err_set(err, PROTO_NO_SUCH_NAME, "no arena named \"%.*s\"",
                       (int)(len > 64 ? 64 : len), name);
    /* Unlink from the hash chain. */
    if (u64map_get(&r->names, hash) == nm) {
        if (nm->hnext != NULL)
            u64map_put(&r->names, hash, nm->hnext); /* replaces: cannot fail */
        else
            u64map_del(&r->names, hash);
    } else {
        for (pp = &((struct reg_name *)u64map_get(&r->names, hash))->hnext; *pp != nm;
             pp = &(*pp)->hnext)
            ;
        *pp = nm->hnext;
    }
    nametree_remove(&r->sorted, &nm->tnode);
    /* Unlink from the arena's list. */
    obj = nm->arena;
    if (nm->aprev != NULL)
        nm->aprev->anext = nm->anext;
    else
        obj->names = nm->anext;
    if (nm->anext != NULL)
        nm->anext->aprev = nm->aprev;
    else
        obj->names_tail = nm->aprev;
    free(nm);
    r->nnames--;
    reg_arena_unref(r, obj);
    return 0;
}

/* The bound name a tree node belongs to. */
static const struct reg_name *reg_name_of(const struct nametree_node *n)
{
    return (const struct reg_name *)((const char *)n - offsetof(struct reg_name, tnode));
}

/* The next name of a listing; see registry.h. Names with the prefix form
 * one run of the byte order that starts at the prefix itself, so the first
 * name past both the prefix and the cursor either has the prefix or no
 * later name has. */
int reg_list_next(const struct reg *r, const char *prefix, size_t plen, const char *after,
                  size_t alen, struct reg_list_entry *out)
{
    const struct nametree_node *n;
    const struct reg_name *nm;
    const struct reg_obj *obj;

    if (after != NULL && nametree_cmp(after, alen, prefix, plen) >= 0)
        n = nametree_seek(&r->sorted, after, alen, 1);
    else
        n = nametree_seek(&r->sorted, prefix, plen, 0);
    if (n == NULL || n->len < plen || (plen > 0 && memcmp(n->key, prefix, plen) != 0))
        return 0;
    nm = reg_name_of(n);
    obj = nm->arena;
    out->name = nm->text;
    out->name_len = nm->len;
    out->arena = obj->handle;
    out->files = store_arena_nfiles(obj->u.a);
    out->bytes = store_arena_bytes(obj->u.a);
    out->refs = obj->refs;
    return 1;
}
