/* The Redis (RESP: GET/SET, MGET/MSET) and memcached drivers (meta mg/ms with
 * mn for batches; text get/set with multi-key get for batches). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* The key of item i of size s. */
size_t bench_key(char *out, size_t n, uint32_t size, uint32_t i)
{
    int k = snprintf(out, n, "b%u:%u", size, i);
    return k < 0 ? 0 : (size_t)k;
}

/* The item count of the oldest in-flight request (FIFO protocols). */
static uint32_t head_n(const struct bconn *c)
{
    return c->inflight ? c->slot[c->slot_head].n : 1;
}

/* Whether the oldest in-flight request is a single-item one. */
static int head_single(const struct bconn *c)
{
    return c->cell->batch == 1 && head_n(c) == 1;
}

/* Finds the CRLF that ends the line at p. Returns the '\r' or NULL. */
static const char *line_end(const char *p, const char *end)
{
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        if (nl > p && nl[-1] == '\r')
            return nl - 1;
        p = nl + 1;
    }
    return NULL;
}

/* Parses a decimal number in [p, e). Returns 0 or -1. */
static int parse_num(const char *p, const char *e, long long *out)
{
    int neg = 0;
    long long v = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == e)
        return -1;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* Reports a server's error line. */
static int line_error(const char *who, const char *p, const char *eol, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %.*s", who, (int)(eol - p > 120 ? 120 : eol - p), p);
    return -1;
}

/* ---- Redis ---- */

/* Setup: nothing to negotiate. */
static int rd_setup(struct bconn *c, char *err, size_t errlen)
{
    return 0;
}

/* Appends one RESP bulk string. */
static void resp_bulk_out(struct obuf *o, const char *p, size_t len, int ext)
{
    obuf_printf(o, "$%zu\r\n", len);
    if (ext)
        obuf_ext(o, p, len);
    else
        obuf_add(o, p, len);
    obuf_add(o, "\r\n", 2);
}

/* Encodes GET / MGET / SET / MSET. */
static void rd_encode(struct bconn *c, const uint32_t *idx, uint32_t n)
{
    char key[32];
    uint32_t size = c->cell->size;
    int single = c->cell->batch == 1 && n == 1;
    const char *payload = bench_payload();
    if (c->cell->op == OP_GET) {
        if (single)
            obuf_add(&c->out, "*2\r\n$3\r\nGET\r\n", 13);
        else
            obuf_printf(&c->out, "*%u\r\n$4\r\nMGET\r\n", n + 1);
        for (uint32_t i = 0; i < n; i++) {
            size_t kl = bench_key(key, sizeof key, size, idx[i]);
            resp_bulk_out(&c->out, key, kl, 0);
        }
        return;
    }
    if (single)
        obuf_add(&c->out, "*3\r\n$3\r\nSET\r\n", 13);
    else
        obuf_printf(&c->out, "*%u\r\n$4\r\nMSET\r\n", 2 * n + 1);
    for (uint32_t i = 0; i < n; i++) {
        size_t kl = bench_key(key, sizeof key, size, idx[i]);
        resp_bulk_out(&c->out, key, kl, 0);
        resp_bulk_out(&c->out, payload, size, 1);
    }
}

/* A value of len bytes plus CRLF starting at data: 1 and *pp past it when all
 * of it is buffered, else 0 with *need = bytes wanted from base. */
static int take_body(const char *base, const char *data, const char *end, size_t len, size_t *need,
                     const char **pp)
{
    if ((size_t)(end - data) < len + 2) {
        *need = (size_t)(data - base) + len + 2;
        return 0;
    }
    *pp = data + len + 2;
    return 1;
}

/* Parses one bulk string of size bytes at *pp. Returns 1 (advanced), 0
 * (incomplete: *need set, relative to base) or -1. */
static int rd_bulk(const char **pp, const char *base, const char *end, uint32_t size, size_t *need,
                   char *err, size_t errlen)
{
    const char *p = *pp;
    const char *eol = line_end(p, end);
    if (!eol) {
        *need = (size_t)(end - base) + 1;
        return 0;
    }
    if (*p == '-')
        return line_error("redis", p, eol, err, errlen);
    long long len;
    if (*p != '$' || parse_num(p + 1, eol, &len) < 0) {
        return line_error("redis: unexpected reply", p, eol, err, errlen);
    }
    if (len < 0) {
        snprintf(err, errlen, "redis: key missing");
        return -1;
    }
    if ((uint64_t)len != size) {
        snprintf(err, errlen, "redis: got %lld bytes, expected %u", len, size);
        return -1;
    }
    return take_body(base, eol + 2, end, (size_t)len, need, pp);
}

/* Parses one reply. */
static int rd_parse(struct bconn *c, uint32_t *msgid, char *err, size_t errlen)
{
    const char *base = c->in.buf + c->in.rd, *end = c->in.buf + c->in.wr, *p = base;
    size_t need = 0;
    if (c->cell->op == OP_SET) {
        const char *eol = line_end(p, end);
        if (!eol) {
            c->need = (size_t)(end - base) + 1;
            return 0;
        }
        if (eol - p != 3 || memcmp(p, "+OK", 3) != 0)
            return line_error("redis", p, eol, err, errlen);
        c->in.rd += 5;
        return 1;
    }
    if (head_single(c)) {
        int rc = rd_bulk(&p, base, end, c->cell->size, &need, err, errlen);
        if (rc == 0)
            c->need = need;
        if (rc != 1)
            return rc;
        c->in.rd += (size_t)(p - base);
        return 1;
    }
    uint32_t n = head_n(c);
    const char *eol = line_end(p, end);
    if (!eol) {
        c->need = (size_t)(end - base) + 1;
        return 0;
    }
    long long cnt;
    if (*p != '*' || parse_num(p + 1, eol, &cnt) < 0 || cnt != (long long)n)
        return line_error("redis: unexpected MGET reply", p, eol, err, errlen);
    p = eol + 2;
    for (uint32_t i = 0; i < n; i++) {
        int rc = rd_bulk(&p, base, end, c->cell->size, &need, err, errlen);
        if (rc == 0)
            c->need = need;
        if (rc != 1)
            return rc;
    }
    c->in.rd += (size_t)(p - base);
    return 1;
}

const struct tproto tproto_redis = {"redis", rd_setup, rd_encode, rd_parse, NULL};

/* ---- memcached, meta protocol ---- */

/* Encodes mg / ms, with q flags and a closing mn for batches. */
static void mm_encode(struct bconn *c, const uint32_t *idx, uint32_t n)
{
    char key[32];
    uint32_t size = c->cell->size;
    int single = c->cell->batch == 1 && n == 1;
    const char *payload = bench_payload();
    for (uint32_t i = 0; i < n; i++) {
        bench_key(key, sizeof key, size, idx[i]);
        if (c->cell->op == OP_GET) {
            obuf_printf(&c->out, single ? "mg %s v\r\n" : "mg %s v q\r\n", key);
        } else {
            obuf_printf(&c->out, single ? "ms %s %u\r\n" : "ms %s %u q\r\n", key, size);
            obuf_ext(&c->out, payload, size);
            obuf_add(&c->out, "\r\n", 2);
        }
    }
    if (!single)
        obuf_add(&c->out, "mn\r\n", 4);
}

/* Parses one "VA <len> ...\r\n<data>\r\n" block. Returns 1, 0 (*need set)
 * or -1; 2 when the line is "MN" (end of a batch). */
static int mm_value(const char **pp, const char *base, const char *end, uint32_t size, size_t *need,
                    char *err, size_t errlen)
{
    const char *p = *pp;
    const char *eol = line_end(p, end);
    if (!eol) {
        *need = (size_t)(end - base) + 1;
        return 0;
    }
    if (eol - p == 2 && memcmp(p, "MN", 2) == 0) {
        *pp = eol + 2;
        return 2;
    }
    if (eol - p < 4 || memcmp(p, "VA ", 3) != 0) {
        if (eol - p == 2 && memcmp(p, "EN", 2) == 0) {
            snprintf(err, errlen, "memcached: key missing");
            return -1;
        }
        return line_error("memcached", p, eol, err, errlen);
    }
    const char *num = p + 3, *ne = num;
    while (ne < eol && *ne != ' ')
        ne++;
    long long len;
    if (parse_num(num, ne, &len) < 0 || len != (long long)size) {
        return line_error("memcached: unexpected value", p, eol, err, errlen);
    }
    return take_body(base, eol + 2, end, (size_t)len, need, pp);
}

/* Parses one meta reply (a whole batch for batches). */
static int mm_parse(struct bconn *c, uint32_t *msgid, char *err, size_t errlen)
{
    const char *base = c->in.buf + c->in.rd, *end = c->in.buf + c->in.wr, *p = base;
    size_t need = 0;
    int single = head_single(c);
    uint32_t n = head_n(c);
    if (c->cell->op == OP_SET) {
        const char *eol = line_end(p, end);
        if (!eol) {
            c->need = (size_t)(end - base) + 1;
            return 0;
        }
        const char *want = single ? "HD" : "MN";
        if (eol - p != 2 || memcmp(p, want, 2) != 0)
            return line_error("memcached", p, eol, err, errlen);
        c->in.rd += 4;
        return 1;
    }
    uint32_t got = 0;
    for (;;) {
        int rc = mm_value(&p, base, end, c->cell->size, &need, err, errlen);
        if (rc == 0) {
            c->need = need;
            return 0;
        }
        if (rc < 0)
            return -1;
        if (rc == 2) {
            if (single || got != n) {
                snprintf(err, errlen, "memcached: %u of %u values", got, n);
                return -1;
            }
            break;
        }
        got++;
        if (single)
            break;
    }
    c->in.rd += (size_t)(p - base);
    return 1;
}

const struct tproto tproto_mc_meta = {"memcached-meta", rd_setup, mm_encode, mm_parse, NULL};

/* ---- memcached, text protocol ---- */

/* Encodes get k... / n pipelined sets. */
static void mt_encode(struct bconn *c, const uint32_t *idx, uint32_t n)
{
    char key[32];
    uint32_t size = c->cell->size;
    const char *payload = bench_payload();
    if (c->cell->op == OP_GET) {
        obuf_add(&c->out, "get", 3);
        for (uint32_t i = 0; i < n; i++) {
            size_t kl = bench_key(key, sizeof key, size, idx[i]);
            obuf_add(&c->out, " ", 1);
            obuf_add(&c->out, key, kl);
        }
        obuf_add(&c->out, "\r\n", 2);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        bench_key(key, sizeof key, size, idx[i]);
        obuf_printf(&c->out, "set %s 0 0 %u\r\n", key, size);
        obuf_ext(&c->out, payload, size);
        obuf_add(&c->out, "\r\n", 2);
    }
}

/* Parses one text reply (all values and END; or n STORED lines). */
static int mt_parse(struct bconn *c, uint32_t *msgid, char *err, size_t errlen)
{
    const char *base = c->in.buf + c->in.rd, *end = c->in.buf + c->in.wr, *p = base;
    uint32_t n = head_n(c);
    if (c->cell->op == OP_SET) {
        for (uint32_t i = 0; i < n; i++) {
            const char *eol = line_end(p, end);
            if (!eol) {
                c->need = (size_t)(end - base) + 1;
                return 0;
            }
            if (eol - p != 6 || memcmp(p, "STORED", 6) != 0)
                return line_error("memcached", p, eol, err, errlen);
            p = eol + 2;
        }
        c->in.rd += (size_t)(p - base);
        return 1;
    }
    uint32_t got = 0;
    for (;;) {
        const char *eol = line_end(p, end);
        if (!eol) {
            c->need = (size_t)(end - base) + 1;
            return 0;
        }
        if (eol - p == 3 && memcmp(p, "END", 3) == 0) {
            p = eol + 2;
            break;
        }
        if (eol - p < 6 || memcmp(p, "VALUE ", 6) != 0)
            return line_error("memcached", p, eol, err, errlen);
        const char *num = eol;
        while (num > p && num[-1] != ' ')
            num--;
        long long len;
        if (parse_num(num, eol, &len) < 0 || len != (long long)c->cell->size)
            return line_error("memcached: unexpected value", p, eol, err, errlen);
        const char *data = eol + 2;
        if ((size_t)(end - data) < (size_t)len + 2) {
            c->need = (size_t)(data - base) + (size_t)len + 2;
            return 0;
        }
        p = data + len + 2;
        got++;
    }
    if (got != n) {
        snprintf(err, errlen, "memcached: %u of %u values", got, n);
        return -1;
    }
    c->in.rd += (size_t)(p - base);
    return 1;
}

const struct tproto tproto_mc_text = {"memcached-text", rd_setup, mt_encode, mt_parse, NULL};

/* ---- control commands ---- */

/* Whether [p, end) holds one complete reply to a control command. */
static int ctl_complete(const char *p, const char *end, int redis)
{
    const char *eol = line_end(p, end);
    if (!eol)
        return 0;
    if (redis) {
        if (*p != '$')
            return 1;
        long long len;
        if (parse_num(p + 1, eol, &len) < 0 || len < 0)
            return 1;
        return (size_t)(end - (eol + 2)) >= (size_t)len + 2;
    }
    /* memcached: a multi-line reply ends with END; an error or OK is one
     * line. */
    if (strncmp(p, "STAT ", 5) != 0)
        return 1;
    for (const char *q = p; (eol = line_end(q, end)) != NULL; q = eol + 2) {
        if (eol - q == 3 && memcmp(q, "END", 3) == 0)
            return 1;
    }
    return 0;
}

/* Sends cmd (CRLF appended) and copies the reply into out. */
int text_ctl(struct bconn *c, const char *cmd, int redis, char *out, size_t n)
{
    char line[256];
    int len = snprintf(line, sizeof line, "%s\r\n", cmd);
    if (len < 0 || (size_t)len >= sizeof line || write_all(c->fd, line, (size_t)len) < 0)
        return -1;
    for (;;) {
        if (ctl_complete(c->in.buf + c->in.rd, c->in.buf + c->in.wr, redis))
            break;
        if (conn_read_more(c) < 0)
            return -1;
    }
    size_t got = c->in.wr - c->in.rd;
    size_t k = got < n - 1 ? got : n - 1;
    memcpy(out, c->in.buf + c->in.rd, k);
    out[k] = '\0';
    c->in.rd = c->in.wr = 0;
    return 0;
}
