/* farena: a command-line client of farenad, built on libfarena. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "farena.h"

/* Exit statuses; --help lists them. */
enum {
    EXIT_OK = 0,
    EXIT_REFUSED = 1, /* the daemon refused the request */
    EXIT_USAGE = 2,   /* bad command line */
    EXIT_CONNECT = 3, /* farenad unreachable, connection lost, timeout */
    EXIT_LOCAL = 4,   /* a local file or stdout failed */
    EXIT_OTHER = 5    /* out of memory, protocol error */
};

static const char usage_text[] =
    "usage: farena [--socket PATH] [--timeout MS] COMMAND [ARG...]\n"
    "\n"
    "Commands:\n"
    "  ping                       check that farenad answers; print its version\n"
    "                             and the round-trip time\n"
    "  stat [--json]              print farenad's counters\n"
    "  put [--name NAME] FILE...  store each FILE (- for stdin) as one payload of\n"
    "                             a new one-file arena; print the arena handle,\n"
    "                             then FILE<TAB>i:off:len for each FILE. Without\n"
    "                             --name nothing holds the arena once this command\n"
    "                             exits, so it is freed at once\n"
    "  get ARENA LOC...           write the payloads at each LOC (i:off:len) to\n"
    "                             stdout, one after the other\n"
    "  info [--json] ARENA        print the arena's files, bytes, references, name\n"
    "                             and file handles\n"
    "  ls [--json] [PREFIX]       list the bound names (those starting with PREFIX),\n"
    "                             in byte order, one per line:\n"
    "                             NAME<TAB>ARENA<TAB>BYTES<TAB>FILES<TAB>REFS\n"
    "  rm NAME                    remove the name NAME (the arena is freed when\n"
    "                             nothing else holds it)\n"
    "\n"
    "ARENA is an arena handle (a decimal number) or a name; write =NAME for a\n"
    "name made of digits (a leading = is always stripped).\n"
    "\n"
    "--json prints one JSON object (ls: one JSON array of objects) instead of\n"
    "text, for scripts. Names are UTF-8 in JSON: a byte of a name that is not\n"
    "part of valid UTF-8 is printed as U+FFFD.\n"
    "\n"
    "Options:\n"
    "  -s, --socket PATH   farenad's socket (default: $FARENA_SOCKET, else\n"
    "                      $XDG_RUNTIME_DIR/farena/farenad.sock, else\n"
    "                      /tmp/farena-$UID/farenad.sock)\n"
    "  -t, --timeout MS    give up when farenad does not answer within MS ms\n"
    "                      (default 30000; 0 waits forever)\n"
    "  -h, --help          print this help\n"
    "  -V, --version       print the version\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  farenad refused the request (no such name or handle, out of bounds,\n"
    "     name taken, no space, ...)\n"
    "  2  usage error\n"
    "  3  farenad unreachable: not running, connection lost, or timed out\n"
    "  4  a local file could not be read, or stdout could not be written\n"
    "     (quietly when its reader closed the pipe early, as '| head' does)\n"
    "  5  any other error (out of memory, protocol error)\n";

/* The command line's global options. */
struct opts {
    const char *socket;
    int timeout_ms;
};

/* Maps a library error code to this command's exit status. */
static int exit_for(int err)
{
    switch (err) {
    case FARENA_ECONNECT:
    case FARENA_ECONNLOST:
    case FARENA_ETIMEDOUT:
        return EXIT_CONNECT;
    case FARENA_ENOMEM:
    case FARENA_EPROTO:
    case FARENA_EFORK:
    case FARENA_EINVAL:
        return EXIT_OTHER;
    default:
        return EXIT_REFUSED;
    }
}

/* Reports a library failure on stderr and returns the exit status. */
static int fail(farena_client *c, int err, const char *what)
{
    const char *msg = c != NULL ? farena_errmsg(c) : "";
    const char *name = farena_errname(err);

    fprintf(stderr, "farena: %s: %s (%s)\n", what, msg[0] ? msg : farena_strerror(err),
            name ? name : "?");
    return exit_for(err);
}

/* Reports a failed write to stdout and returns EXIT_LOCAL. A reader that
 * closed the pipe early (| head) wanted no more: that ends the command
 * quietly, with the same status. */
static int stdout_failed(void)
{
    if (errno != EPIPE)
        fprintf(stderr, "farena: writing to stdout: %s\n",
                errno != 0 ? strerror(errno) : "write error");
    return EXIT_LOCAL;
}

/* Flushes stdout once the command is done; a write that failed on the way
 * (even one reported before) makes the status EXIT_LOCAL. */
static int finish_stdout(int rc)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return rc;
    return rc == EXIT_LOCAL ? rc : stdout_failed();
}

/* Prints a usage error (printf-style) and returns EXIT_USAGE. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("farena: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'farena --help'.\n", stderr);
    return EXIT_USAGE;
}

/* Connects, printing the reason of a failure. */
static int connect_or_report(const struct opts *o, farena_client **c)
{
    char why[320];
    int err = farena_connect_ex(o->socket, o->timeout_ms, c, why, sizeof(why));

    if (err != 0) {
        fprintf(stderr, "farena: %s (%s)\n", why[0] ? why : farena_strerror(err),
                farena_errname(err) ? farena_errname(err) : "?");
        return exit_for(err);
    }
    return 0;
}

/* Parses a decimal number of at most max into *out. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses i:off:len. */
static int parse_loc(const char *s, struct farena_loc *loc)
{
    char part[3][24];
    const char *p = s;
    uint64_t v[3];

    for (int i = 0; i < 3; i++) {
        const char *end = i < 2 ? strchr(p, ':') : p + strlen(p);
        size_t n;
        if (end == NULL)
            return -1;
        n = (size_t)(end - p);
        if (n == 0 || n >= sizeof(part[i]))
            return -1;
        memcpy(part[i], p, n);
        part[i][n] = '\0';
        p = end + 1;
    }
    if (parse_u64(part[0], UINT16_MAX, &v[0]) || parse_u64(part[1], UINT32_MAX, &v[1]) ||
        parse_u64(part[2], UINT32_MAX, &v[2]))
        return -1;
    loc->file_index = (uint16_t)v[0];
    loc->offset = (uint32_t)v[1];
    loc->len = (uint32_t)v[2];
    return 0;
}

/* Checks an ARENA argument before connecting. */
static int arena_arg_ok(const char *arg)
{
    if (arg[0] == '\0' || (arg[0] == '=' && arg[1] == '\0'))
        return usage_error("an empty arena name");
    return 0;
}

/* Turns ARENA (a handle or a name) into a handle. */
static int resolve_arena(farena_client *c, const char *arg, farena_handle *arena)
{
    char what[300];
    int err;

    if (arg[0] != '=' && parse_u64(arg, UINT64_MAX, arena) == 0 && *arena != 0)
        return 0;
    if (arg[0] == '=')
        arg++;
    err = farena_lookup(c, arg, arena);
    if (err != 0) {
        snprintf(what, sizeof(what), "lookup '%s'", arg);
        return fail(c, err, what);
    }
    return 0;
}

/* Reads a whole file (or stdin for "-") into buf. */
static int read_file(const char *path, struct farena_buf *buf)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "farena: %s: %s\n", path, strerror(errno));
        return EXIT_LOCAL;
    }
    farena_buf_clear(buf);
    for (;;) {
        size_t n;
        if (farena_buf_reserve(buf, 1 << 16) != 0) {
            fprintf(stderr, "farena: %s: out of memory\n", path);
            rc = EXIT_OTHER;
            break;
        }
        n = fread(buf->data + buf->len, 1, buf->cap - buf->len - 1, f);
        buf->len += n;
        if (n == 0) {
            if (ferror(f)) {
                fprintf(stderr, "farena: %s: read error\n", path);
                rc = EXIT_LOCAL;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

/* Takes a leading --json off a command's arguments; returns 1 if it was
 * there. */
static int take_json(int *argc, char ***argv)
{
    if (*argc >= 1 && strcmp((*argv)[0], "--json") == 0) {
        (*argc)--;
        (*argv)++;
        return 1;
    }
    return 0;
}

/* The length of the valid UTF-8 sequence at the start of the n bytes at p
 * (no overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1fu;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0fu;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07u;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Prints the n bytes at s as a JSON string: quotes, backslashes and control
 * characters escaped, valid UTF-8 as is, any other byte as U+FFFD. */
static void json_str(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    putchar('"');
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) {
            fputs("\\ufffd", stdout);
            i++;
        } else if (k > 1) {
            fwrite(p + i, 1, k, stdout);
            i += k;
        } else if (p[i] == '"' || p[i] == '\\') {
            printf("\\%c", p[i++]);
        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            printf("\\u%04x", p[i++]);
        } else {
            putchar(p[i++]);
        }
    }
    putchar('"');
}

/* farena ping */
static int cmd_ping(const struct opts *o, int argc, char **argv)
{
    farena_client *c = NULL;
    struct farena_server_info info;
    struct timespec t0, t1;
    int rc, err;

    (void)argv;
    if (argc != 0)
        return usage_error("ping takes no arguments");
    rc = connect_or_report(o, &c);
    if (rc != 0)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    err = farena_hello(c, &info);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (err != 0) {
        rc = fail(c, err, "ping");
    } else {
        printf("%s %s (protocol %" PRIu32 "): %.0f us\n", info.server, info.version, info.protocol,
               (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3);
    }
    farena_close(c);
    return rc;
}

/* farena stat */
static int cmd_stat(const struct opts *o, int argc, char **argv)
{
    farena_client *c = NULL;
    struct farena_stat st;
    int rc, err;

    int json = take_json(&argc, &argv);

    (void)argv;
    if (argc != 0)
        return usage_error("stat takes no arguments but --json");
    rc = connect_or_report(o, &c);
    if (rc != 0)
        return rc;
    err = farena_stat(c, &st);
    if (err != 0) {
        rc = fail(c, err, "stat");
        farena_close(c);
        return rc;
    }
    farena_close(c);
    if (json) {
        printf("{\"pid\": %" PRIu64 ", \"uptime_ms\": %" PRIu64 ", \"connections\": %" PRIu64
               ", \"connections_total\": %" PRIu64 ", \"writers\": %" PRIu64 ", \"files\": %" PRIu64
               ", \"arenas\": %" PRIu64 ", \"names\": %" PRIu64 ", \"bytes_on_disk\": %" PRIu64
               ", \"bytes_written\": %" PRIu64 ", \"bytes_read\": %" PRIu64
               ", \"requests_total\": %" PRIu64 ", \"errors_total\": %" PRIu64,
               st.pid, st.uptime_ms, st.connections, st.connections_total, st.writers, st.files,
               st.arenas, st.names, st.bytes_on_disk, st.bytes_written, st.bytes_read,
               st.requests_total, st.errors_total);
        for (int e = 0; e < 2; e++) {
            const char *sep = "";
            printf(", \"%s\": {", e ? "errors" : "requests");
            for (unsigned i = 0; i < FARENA_STAT_METHODS; i++) {
                const char *m = farena_method_name(i);
                if (m == NULL)
                    continue;
                printf("%s\"%s\": %" PRIu64, sep, m, e ? st.errors[i] : st.requests[i]);
                sep = ", ";
            }
            putchar('}');
        }
        puts("}");
        return EXIT_OK;
    }
    printf("pid\t%" PRIu64 "\nuptime_ms\t%" PRIu64 "\nconnections\t%" PRIu64
           "\nconnections_total\t%" PRIu64 "\nwriters\t%" PRIu64 "\nfiles\t%" PRIu64
           "\narenas\t%" PRIu64 "\nnames\t%" PRIu64 "\nbytes_on_disk\t%" PRIu64
           "\nbytes_written\t%" PRIu64 "\nbytes_read\t%" PRIu64 "\nrequests\t%" PRIu64
           "\nerrors\t%" PRIu64 "\n",
           st.pid, st.uptime_ms, st.connections, st.connections_total, st.writers, st.files,
           st.arenas, st.names, st.bytes_on_disk, st.bytes_written, st.bytes_read,
           st.requests_total, st.errors_total);
    for (unsigned i = 0; i < FARENA_STAT_METHODS; i++) {
        const char *m = farena_method_name(i);
        if (m != NULL && (st.requests[i] || st.errors[i]))
            printf("requests.%s\t%" PRIu64 "\nerrors.%s\t%" PRIu64 "\n", m, st.requests[i], m,
                   st.errors[i]);
    }
    return EXIT_OK;
}

/* Stores every file as one payload of a writer of index 0 and assembles the
 * arena; names it when name is not NULL. */
static int put_files(farena_client *c, char **files, int n, const char *name,
                     struct farena_loc *locs)
{
    struct farena_buf data = FARENA_BUF_INIT;
    farena_handle writer, arena;
    char what[300];
    int rc = EXIT_OK, err;

    err = farena_writer_new(c, 0, &writer);
    if (err != 0)
        return fail(c, err, "writer_new");
    for (int i = 0; i < n; i++) {
        rc = read_file(files[i], &data);
        if (rc != EXIT_OK)
            goto out;
        err = farena_push(c, writer, data.data, data.len, &locs[i]);
        if (err != 0) {
            snprintf(what, sizeof(what), "push %s", files[i]);
            rc = fail(c, err, what);
            goto out;
        }
    }
    err = farena_into_arena(c, writer, &arena);
    if (err != 0) {
        rc = fail(c, err, "into_arena");
        goto out;
    }
    if (name != NULL) {
        err = farena_name(c, arena, name);
        if (err != 0) {
            snprintf(what, sizeof(what), "name '%s'", name);
            rc = fail(c, err, what);
            goto out;
        }
    } else {
        fprintf(stderr,
                "farena: warning: no --name given: nothing holds arena %" PRIu64
                " once this command exits, so it is freed then\n",
                arena);
    }
    printf("%" PRIu64 "\n", arena);
    for (int i = 0; i < n; i++)
        printf("%s\t%" PRIu16 ":%" PRIu32 ":%" PRIu32 "\n", files[i], locs[i].file_index,
               locs[i].offset, locs[i].len);
    errno = 0;
    if (fflush(stdout) != 0)
        rc = stdout_failed();
out:
    farena_buf_free(&data);
    return rc;
}

/* farena put [--name NAME] FILE... */
static int cmd_put(const struct opts *o, int argc, char **argv)
{
    farena_client *c = NULL;
    struct farena_loc *locs;
    const char *name = NULL;
    int first = 0, rc;

    if (argc >= 1 && strncmp(argv[0], "--name=", 7) == 0) {
        name = argv[0] + 7;
        first = 1;
    } else if (argc >= 1 && (strcmp(argv[0], "--name") == 0 || strcmp(argv[0], "-n") == 0)) {
        if (argc < 2)
            return usage_error("put: --name needs a NAME");
        name = argv[1];
        first = 2;
    }
    if (name != NULL && name[0] == '\0')
        return usage_error("put: the name is empty");
    if (first < argc && strcmp(argv[first], "--") == 0)
        first++;
    if (first >= argc)
        return usage_error("put needs at least one FILE");
    locs = calloc((size_t)(argc - first), sizeof(*locs));
    if (locs == NULL)
        return fail(NULL, FARENA_ENOMEM, "put");
    rc = connect_or_report(o, &c);
    if (rc == 0)
        rc = put_files(c, argv + first, argc - first, name, locs);
    farena_close(c);
    free(locs);
    return rc;
}

/* farena get ARENA LOC... */
static int cmd_get(const struct opts *o, int argc, char **argv)
{
    farena_client *c = NULL;
    struct farena_buf out = FARENA_BUF_INIT;
    farena_handle arena;
    struct farena_loc *locs;
    int rc, err;

    if (argc < 2)
        return usage_error("get needs an ARENA and at least one LOC");
    if (arena_arg_ok(argv[0]) != 0)
        return EXIT_USAGE;
    locs = calloc((size_t)(argc - 1), sizeof(*locs));
    if (locs == NULL)
        return fail(NULL, FARENA_ENOMEM, "get");
    for (int i = 1; i < argc; i++)
        if (parse_loc(argv[i], &locs[i - 1]) != 0) {
            free(locs);
            return usage_error("'%s' is not a location (i:off:len)", argv[i]);
        }
    rc = connect_or_report(o, &c);
    if (rc != 0)
        goto out;
    rc = resolve_arena(c, argv[0], &arena);
    if (rc != 0)
        goto out;
    err = farena_get_many_into(c, arena, locs, (size_t)(argc - 1), &out);
    if (err != 0) {
        rc = fail(c, err, "get");
        goto out;
    }
    errno = 0;
    if ((out.len > 0 && fwrite(out.data, 1, out.len, stdout) != out.len) || fflush(stdout) != 0)
        rc = stdout_failed();
out:
    farena_close(c);
    farena_buf_free(&out);
    free(locs);
    return rc;
}

/* Prints what info shows once the arena is resolved: key<TAB>value lines,
 * or one JSON object. */
static int show_info(farena_client *c, farena_handle arena, int json)
{
    struct farena_arena_info info;
    farena_handle *files;
    size_t n = 0;
    int err;

    err = farena_arena_info(c, arena, &info);
    if (err != 0)
        return fail(c, err, "arena_info");
    files = calloc(info.files ? info.files : 1, sizeof(*files));
    if (files == NULL)
        return fail(NULL, FARENA_ENOMEM, "info");
    err = farena_arena_files(c, arena, files, info.files, &n);
    if (err != 0) {
        free(files);
        return fail(c, err, "arena_files");
    }
    if (json) {
        printf("{\"arena\": %" PRIu64 ", \"files\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"refs\": %" PRIu64 ", \"name\": ",
               arena, info.files, info.bytes, info.refs);
        if (info.has_name)
            json_str(info.name, strlen(info.name));
        else
            fputs("null", stdout);
        fputs(", \"file_handles\": [", stdout);
        for (size_t i = 0; i < n && i < info.files; i++)
            printf("%s%" PRIu64, i > 0 ? ", " : "", files[i]);
        puts("]}");
        free(files);
        return EXIT_OK;
    }
    printf("arena\t%" PRIu64 "\nfiles\t%" PRIu64 "\nbytes\t%" PRIu64 "\nrefs\t%" PRIu64
           "\nname\t%s\n",
           arena, info.files, info.bytes, info.refs, info.has_name ? info.name : "-");
    for (size_t i = 0; i < n && i < info.files; i++)
        printf("file %zu\t%" PRIu64 "\n", i, files[i]);
    free(files);
    return EXIT_OK;
}

/* farena info ARENA */
static int cmd_info(const struct opts *o, int argc, char **argv)
{
    farena_client *c = NULL;
    farena_handle arena;
    int json = take_json(&argc, &argv), rc;

    if (argc != 1)
        return usage_error("info needs exactly one ARENA");
    if (arena_arg_ok(argv[0]) != 0)
        return EXIT_USAGE;
    rc = connect_or_report(o, &c);
    if (rc == 0)
        rc = resolve_arena(c, argv[0], &arena);
    if (rc == 0)
        rc = show_info(c, arena, json);
    farena_close(c);
    return rc;
}

/* Names asked for per ls request; the daemon may send fewer (max_batch,
 * max_message). Pages are printed as they come, so a listing of any size
 * takes one page of memory. */
#define LS_PAGE 1000

/* farena ls [--json] [PREFIX] */
static int cmd_ls(const struct opts *o, int argc, char **argv)
{
    struct farena_list_entry *ents;
    char cursor[FARENA_CURSOR_SIZE] = "";
    farena_client *c = NULL;
    const char *prefix = "";
    int json = take_json(&argc, &argv), rc, err, first = 1;
    size_t n;

    if (argc >= 1 && strcmp(argv[0], "--") == 0) {
        argc--;
        argv++;
    }
    if (argc > 1)
        return usage_error("ls takes at most one PREFIX");
    if (argc == 1)
        prefix = argv[0];
    ents = calloc(LS_PAGE, sizeof(*ents));
    if (ents == NULL)
        return fail(NULL, FARENA_ENOMEM, "ls");
    rc = connect_or_report(o, &c);
    if (rc != 0)
        goto out;
    if (json)
        putchar('[');
    do {
        err = farena_list(c, prefix, cursor, ents, LS_PAGE, &n);
        if (err != 0) {
            rc = fail(c, err, "ls");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (!json) {
                printf("%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", ents[i].name,
                       ents[i].arena, ents[i].bytes, ents[i].files, ents[i].refs);
                continue;
            }
            fputs(first ? "\n  {\"name\": " : ",\n  {\"name\": ", stdout);
            json_str(ents[i].name, strlen(ents[i].name));
            printf(", \"arena\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"files\": %" PRIu64
                   ", \"refs\": %" PRIu64 "}",
                   ents[i].arena, ents[i].bytes, ents[i].files, ents[i].refs);
            first = 0;
        }
        if (ferror(stdout)) {
            rc = stdout_failed();
            break;
        }
    } while (cursor[0] != '\0');
    if (json && rc == EXIT_OK)
        puts(first ? "]" : "\n]");
out:
    farena_close(c);
    free(ents);
    return rc;
}

/* farena rm NAME */
static int cmd_rm(const struct opts *o, int argc, char **argv)
{
    farena_client *c = NULL;
    const char *name;
    int rc, err;

    if (argc != 1)
        return usage_error("rm needs exactly one NAME");
    name = argv[0][0] == '=' ? argv[0] + 1 : argv[0];
    if (name[0] == '\0')
        return usage_error("rm: the name is empty");
    rc = connect_or_report(o, &c);
    if (rc != 0)
        return rc;
    err = farena_unname(c, name);
    if (err != 0) {
        char what[300];
        snprintf(what, sizeof(what), "rm '%s'", name);
        rc = fail(c, err, what);
    }
    farena_close(c);
    return rc;
}

/* A subcommand: its name and its function. */
struct command {
    const char *name;
    int (*run)(const struct opts *o, int argc, char **argv);
};

static const struct command commands[] = {
    {"ping", cmd_ping}, {"stat", cmd_stat}, {"put", cmd_put}, {"get", cmd_get},
    {"info", cmd_info}, {"ls", cmd_ls},     {"rm", cmd_rm},
};

/* Parses the global options, connects and runs the subcommand. */
int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {NULL, 30000};
    const struct command *cmd = NULL;
    uint64_t v;
    int opt;

    /* A closed stdout pipe must surface as EPIPE (exit status 4), not kill
     * the command; libfarena's own sends never raise SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt_long(argc, argv, "+s:t:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            o.socket = optarg;
            break;
        case 't':
            if (parse_u64(optarg, INT32_MAX, &v) != 0)
                return usage_error("--timeout: '%s' is not a number of milliseconds", optarg);
            o.timeout_ms = (int)v;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return finish_stdout(EXIT_OK);
        case 'V':
            printf("farena %s\n", farena_version_string());
            return finish_stdout(EXIT_OK);
        default:
            fputs("Try 'farena --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return usage_error("no command given");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            cmd = &commands[i];
    if (cmd == NULL)
        return usage_error("unknown command '%s'", argv[optind]);
    return finish_stdout(cmd->run(&o, argc - optind - 1, argv + optind + 1));
}
