/* libfarena: the C client of farenad, farena's scratch spill store.
 *
 * farenad keeps payloads in anonymous files on disk and serves them back by
 * location. This library speaks its MessagePack-RPC protocol over a Unix
 * socket and mirrors the Rust crate farena 0.3: a writer appends payloads and
 * returns their locations, finished files are assembled into an immutable
 * arena, and an arena is read by location from any connected process.
 *
 * Conventions used by every function below:
 *
 * - Return codes. 0 on success, a negative FARENA_E... code on failure.
 *   farena_strerror() describes a code; farena_errmsg() gives the details of
 *   the last failure on a client (the daemon's message, or the OS reason).
 *   Out-parameters are written only on success unless a function says
 *   otherwise. Besides the errors each function lists, any call that talks
 *   to the daemon may return FARENA_EINVAL (c NULL, a NULL out-pointer,
 *   handle 0), FARENA_EFORK (see Processes), FARENA_ECONNLOST (the daemon
 *   closed or died; the client is then unusable), FARENA_ETIMEDOUT,
 *   FARENA_EPROTO (a malformed reply), FARENA_ENOMEM (before anything is
 *   sent the client stays usable; once answers are on their way it does
 *   not, and later calls return FARENA_ECONNLOST), FARENA_ESHUTTINGDOWN,
 *   FARENA_EIOERROR and FARENA_EUNKNOWN (an error code newer than this
 *   library; farena_errmsg names it).
 *
 * - Types. A struct with members the caller reads or fills is named
 *   struct farena_x (struct farena_loc, struct farena_buf, struct
 *   farena_arena_info, struct farena_stat, ...); typedefs name only the
 *   opaque objects (farena_client, farena_reader) and scalars
 *   (farena_handle). Some structs share their name with the function that
 *   fills them (farena_arena_info(), farena_stat()), and C gives typedefs
 *   and functions one namespace, so only the struct names work for all.
 *   The older typedefs farena_loc, farena_buf, farena_limits and
 *   farena_server_info stay, as aliases of their structs, so code written
 *   against them still compiles. This convention changed no type, size,
 *   layout or symbol: the ABI is unchanged.
 *
 * - Handles. Writers, files and arenas are farena_handle values: positive
 *   integers the daemon hands out, unique for its lifetime, never reused.
 *   0 is never a handle; passing 0 is FARENA_EINVAL. Handles are per daemon,
 *   not per connection: a process may pass an arena handle to another process
 *   (or bind it to a name) and that process reads from it.
 *
 * - Lifetimes. A writer and an unbuilt file belong to the connection that
 *   made them and vanish when it closes. A finished file's handle is usable
 *   in farena_build()/farena_arena_new() by any connection while the file
 *   lives (see farena_finish); a writer's by its own connection only. An
 *   arena lives while a connection holds a reference to it (the one
 *   into_arena/build/arena_new gives, or one taken with farena_open) or a
 *   name binds it; farena_close drops all of this connection's references.
 *
 * - Threads. A farena_client may be used by one thread at a time: calls on
 *   one client must not overlap (serialise them yourself if you share it).
 *   Different clients are independent and may be used in parallel from
 *   different threads. A farena_reader (below) is the exception: any
 *   number of threads read one arena through it at once. The library keeps
 *   no global mutable state.
 *
 * - Processes. The library never raises SIGPIPE (every send uses
 *   MSG_NOSIGNAL), never aborts or exits, and opens every descriptor with
 *   close-on-exec. A client belongs to the process that connected it: after
 *   fork(), every call on it in the child returns FARENA_EFORK without touching
 *   the connection; the child may call farena_close() on it, which frees its
 *   memory and closes the child's copy of the descriptor without sending
 *   anything, and connects its own client.
 *
 * - Blocking. Calls block until the daemon has answered. By default there is
 *   no time limit; farena_set_timeout() sets one.
 *
 * - Batches. farena_push_many() and farena_get_many_into() accept any number
 *   of items: the library splits them into as many requests as the daemon's
 *   limits require and pipelines those requests on the one connection.
 *
 * - Direct reads. An arena this client holds (it built it with
 *   farena_into_arena/farena_build/farena_arena_new, or took a reference
 *   with farena_open, and has not released it) is read without a round
 *   trip: farena_get_into, farena_get_str_into(_unchecked) and
 *   farena_get_many_into pread() its files through read-only descriptors
 *   the daemon passes (protocol method arena_fds), fetched the first time a
 *   get needs a file. Results, error codes and messages are the daemon
 *   path's (locations are checked against the files' immutable sizes). An
 *   arena the client does not hold, or a daemon without arena_fds, is read
 *   through the daemon as before. The client keeps at most max_fds
 *   descriptors (struct farena_connect_options; default
 *   FARENA_DIRECT_FDS_DEFAULT); past that, and for files whose descriptor
 *   could not be received (the process at its RLIMIT_NOFILE), gets go
 *   through the daemon, so no get fails for want of descriptors. The
 *   descriptors are close-on-exec and close when the last reference is
 *   released (farena_release) or the client closes; a forked child never
 *   uses them (the rule of Processes holds). Direct reads are on by
 *   default; the direct option of farena_connect_opts() or FARENA_DIRECT=0
 *   in the environment turns them off. They are invisible to the daemon's
 *   counters: a direct get is not counted in stat's requests. References
 *   taken or dropped through farena_call_raw() are not counted as held.
 */
#ifndef FARENA_H
#define FARENA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FARENA_API __attribute__((visibility("default")))
#else
#define FARENA_API
#endif

/* The version of this header. farena_version() gives the library's, which
 * may be newer when the shared library was upgraded without a rebuild. */
#define FARENA_VERSION_MAJOR 0
#define FARENA_VERSION_MINOR 1
#define FARENA_VERSION_PATCH 0
#define FARENA_VERSION_HEX                                                                         \
    ((FARENA_VERSION_MAJOR << 16) | (FARENA_VERSION_MINOR << 8) | FARENA_VERSION_PATCH)

/* Error codes.
 *
 * -1 .. -99 are the daemon's protocol error codes: FARENA_E<X> is the
 * negation of the protocol's code number, and X is the code's wire name
 * upper-cased without underscores (no_such_handle -> FARENA_ENOSUCHHANDLE).
 * New protocol codes will take the next numbers.
 *
 * -100 and below are this library's own. */
#define FARENA_OK              0
#define FARENA_EBADREQUEST     (-1)  /* malformed request or params (wire: bad_request) */
#define FARENA_EUNKNOWNMETHOD  (-2)  /* no method of that name (unknown_method) */
#define FARENA_ENOSUCHHANDLE   (-3)  /* handle unknown, dead, wrong kind or not held */
#define FARENA_ENOSUCHNAME     (-4)  /* no arena bound to that name */
#define FARENA_ENAMETAKEN      (-5)  /* the name is already bound */
#define FARENA_EOUTOFBOUNDS    (-6)  /* file index not in the arena, or past its end */
#define FARENA_EFILEFULL       (-7)  /* the file would pass 4 GiB - 1 bytes */
#define FARENA_EDUPLICATEINDEX (-8)  /* two files with the same index */
#define FARENA_EMISSINGINDEX   (-9)  /* file indices are not exactly 0..n-1 */
#define FARENA_EINDEXMISMATCH  (-10) /* arena_new: files[i] does not have index i */
#define FARENA_EEMPTY          (-11) /* no files given */
#define FARENA_ETOOLARGE       (-12) /* a request or response over the daemon's limits */
#define FARENA_ENOSPACE        (-13) /* the daemon's scratch space is exhausted */
#define FARENA_ELIMIT          (-14) /* too many clients, writers or handles */
#define FARENA_EIOERROR        (-15) /* an I/O error on a scratch file */
#define FARENA_ESHUTTINGDOWN   (-16) /* the daemon is shutting down */

#define FARENA_ECONNECT  (-100) /* cannot connect to the daemon */
#define FARENA_ECONNLOST (-101) /* the connection is lost or unusable */
#define FARENA_EPROTO    (-102) /* the daemon's reply breaks the protocol */
#define FARENA_ENOMEM    (-103) /* out of memory */
#define FARENA_EUTF8     (-104) /* the payload is not valid UTF-8 */
#define FARENA_EINVAL    (-105) /* invalid argument */
#define FARENA_EFORK     (-106) /* client used in a forked child */
#define FARENA_EUNKNOWN  (-107) /* the daemon sent an error code this library does not know */
#define FARENA_ETIMEDOUT (-108) /* no answer within the timeout */

/* A connection to farenad. Opaque; made by farena_connect(), freed by
 * farena_close(). */
typedef struct farena_client farena_client;

/* A writer, file or arena handle (see "Handles" above). */
typedef uint64_t farena_handle;

/* Where a payload lives in an arena: which file (by index), at which byte
 * offset, how many bytes. Plain value, as in the crate's Location. */
typedef struct farena_loc {
    uint16_t file_index;
    uint32_t offset;
    uint32_t len;
} farena_loc;

/* A growable byte buffer the get functions append to.
 *
 * data is NULL or memory from malloc()/realloc() (the library reallocates
 * it); len bytes are used out of cap. Initialise with FARENA_BUF_INIT, reuse
 * across calls (farena_buf_clear keeps the memory), release with
 * farena_buf_free(). After a successful append, data[len] is a NUL byte not
 * counted in len, so text payloads can be used as C strings (payloads may
 * themselves contain NUL bytes). The buffer belongs to the caller; the
 * library never keeps a pointer to it after a call returns. */
typedef struct farena_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} farena_buf;

/* clang-format off */
#define FARENA_BUF_INIT {NULL, 0, 0}
/* clang-format on */

/* The daemon's limits, as its hello answer reported them (see PROTOCOL.md).
 * A limit the daemon did not report is 0. */
typedef struct farena_limits {
    uint64_t max_message; /* bytes of one request or response */
    uint64_t max_batch;   /* items of one push_many / get_many request */
    uint64_t max_depth;   /* nesting of one message */
    uint64_t max_objects; /* msgpack objects of one message */
    uint64_t max_name;    /* bytes of an arena name */
    uint64_t file_max;    /* bytes of one file */
    uint64_t max_clients; /* connections */
    uint64_t max_writers; /* open writers per connection */
    uint64_t max_handles; /* handles held per connection */
    uint64_t max_bytes;   /* scratch bytes in total; 0 = unlimited */
    uint64_t min_free;    /* bytes kept free on the scratch filesystem; 0 = off */
} farena_limits;

/* Who answered hello. Strings are NUL-terminated (truncated if longer). */
typedef struct farena_server_info {
    char server[32];   /* "farenad" */
    char version[32];  /* the daemon's version, e.g. "0.1.0" */
    uint32_t protocol; /* protocol version, 1 */
    struct farena_limits limits;
} farena_server_info;

/* What farena_arena_info() reports about an arena. */
struct farena_arena_info {
    uint64_t files; /* number of files */
    uint64_t bytes; /* total payload bytes in its files */
    uint64_t refs;  /* connection references plus names */
    int has_name;   /* 1 when a name binds it */
    char name[256]; /* the oldest name bound to it ("" if none) */
};

/* Slots of struct farena_stat's per-method arrays: indices are protocol
 * method numbers, named by farena_method_name(). */
#define FARENA_STAT_METHODS 32

/* The daemon's counters, as farena_stat() reports them. A counter the daemon
 * did not report is 0. */
struct farena_stat {
    uint64_t pid;                           /* the daemon's process id */
    uint64_t uptime_ms;                     /* since it started */
    uint64_t connections;                   /* open now */
    uint64_t connections_total;             /* accepted since start */
    uint64_t writers;                       /* open writers, all connections */
    uint64_t files;                         /* live files */
    uint64_t arenas;                        /* live arenas */
    uint64_t names;                         /* bound names */
    uint64_t bytes_on_disk;                 /* bytes in scratch files */
    uint64_t bytes_written;                 /* payload bytes pushed since start */
    uint64_t bytes_read;                    /* payload bytes served since start */
    uint64_t requests_total;                /* requests of every method */
    uint64_t errors_total;                  /* error replies of every method */
    uint64_t requests[FARENA_STAT_METHODS]; /* by method number */
    uint64_t errors[FARENA_STAT_METHODS];   /* by method number */
};

/* ---- library ---- */

/* Returns the library's version as FARENA_VERSION_HEX does: 0xMMmmpp. */
FARENA_API unsigned farena_version(void);

/* Returns the library's version as a static string, e.g. "0.1.0". */
FARENA_API const char *farena_version_string(void);

/* Returns a static one-line English description of err (any int; unknown
 * codes get a generic text). Never NULL. */
FARENA_API const char *farena_strerror(int err);

/* Returns the static symbolic name of err, e.g. "FARENA_ENOSUCHNAME"
 * ("FARENA_OK" for 0), or NULL when err is not a code of this library. */
FARENA_API const char *farena_errname(int err);

/* Returns the static wire name of protocol method number i (the index used
 * by struct farena_stat's arrays), or NULL when this library knows no
 * method of that number. */
FARENA_API const char *farena_method_name(unsigned i);

/* Resolves the daemon's socket path exactly as farenad does: path when it
 * is non-NULL and not empty, else $FARENA_SOCKET, else
 * $XDG_RUNTIME_DIR/farena/farenad.sock, else /tmp/farena-$UID/farenad.sock
 * (empty variables count as unset; UID is the effective uid). Writes it
 * NUL-terminated into out (cap bytes). Returns 0, FARENA_EINVAL when out is
 * NULL, or FARENA_ETOOLARGE when it does not fit (out is then left empty). */
FARENA_API int farena_socket_path(const char *path, char *out, size_t cap);

/* ---- connections ---- */

/* Connects to the daemon at socket_path (NULL or "": the default path, see
 * farena_socket_path()) and performs the hello exchange, keeping the
 * daemon's limits. On success *out is a new client the caller frees with
 * farena_close(). On failure *out is set to NULL; as there is then no client
 * to ask farena_errmsg(), use farena_connect_ex() when you need the reason.
 * Errors: FARENA_EINVAL (out NULL), FARENA_ECONNECT (no daemon there, path
 * too long, permission denied), FARENA_ECONNLOST / FARENA_EPROTO (it closed,
 * is not farenad, or speaks a protocol other than 1), FARENA_ELIMIT (the
 * daemon has too many clients),
 * FARENA_ENOMEM. */
FARENA_API int farena_connect(const char *socket_path, farena_client **out);

/* Like farena_connect(), with a time limit on the connection and on the
 * hello exchange (timeout_ms > 0; 0 = none, which is also the client's
 * timeout afterwards unless changed with farena_set_timeout()), and the
 * reason of a failure written NUL-terminated into errbuf (errcap bytes;
 * errbuf may be NULL when errcap is 0). Errors as farena_connect(), plus
 * FARENA_ETIMEDOUT. */
FARENA_API int farena_connect_ex(const char *socket_path, int timeout_ms, farena_client **out,
                                 char *errbuf, size_t errcap);

/* Options of farena_connect_opts(). Start from FARENA_CONNECT_OPTIONS_INIT,
 * which sets size and every default, then change what you need: later
 * versions may append fields, and size tells the library which ones the
 * caller knows (fields past it take their defaults). */
struct farena_connect_options {
    size_t size;      /* sizeof(struct farena_connect_options) */
    int timeout_ms;   /* as farena_connect_ex(); 0 = none */
    int direct;       /* 1 (default): direct reads of held arenas (see the top of
                         this file); 0: every get goes through the daemon */
    unsigned max_fds; /* most descriptors kept for direct reads (and by each
                         farena_reader); 0 = FARENA_DIRECT_FDS_DEFAULT */
};

/* The default descriptor budget of direct reads. */
#define FARENA_DIRECT_FDS_DEFAULT 256

/* clang-format off */
#define FARENA_CONNECT_OPTIONS_INIT {sizeof(struct farena_connect_options), 0, 1, 0}
/* clang-format on */

/* Like farena_connect_ex(), with options (NULL: the defaults). Errors as
 * farena_connect_ex(), and FARENA_EINVAL when opts->size is smaller than
 * the first version of the struct or timeout_ms is negative. */
FARENA_API int farena_connect_opts(const char *socket_path,
                                   const struct farena_connect_options *opts, farena_client **out,
                                   char *errbuf, size_t errcap);

/* Returns 1 when c reads held arenas directly (allowed by its options and
 * the environment, and offered by the daemon), else 0 (also for NULL). */
FARENA_API int farena_direct(const farena_client *c);

/* For language bindings that read with their own pread() (a foreign call
 * per get costs more than the read): when c reads arena directly and has a
 * descriptor of its file file_index (fetched now if needed, as a get
 * would), stores it in *fd and the file's size in *size and returns 1.
 * Returns 0 when gets of that file go through the get functions: the arena
 * is not held, direct reads are off, the descriptor budget is spent, or the
 * index is not in the arena. The descriptor belongs to c and is read-only:
 * never close it; it stays valid until the last reference c holds to the
 * arena is released with farena_release(), or c is closed; a forked child
 * must not use it. A binding must check locations against *size as
 * farena_get_into does (offset + len <= size, in 64 bits), and use the get
 * functions for anything else (they give the errors and messages).
 * Errors: FARENA_EINVAL (fd or size NULL, arena 0) and the common ones. */
FARENA_API int farena_direct_file(farena_client *c, farena_handle arena, uint16_t file_index,
                                  int *fd, uint64_t *size);

/* Closes the connection and frees the client; NULL is a no-op. The daemon
 * then discards this connection's writers and unbuilt files and drops its
 * arena references (arenas bound to a name or held by other connections
 * live on). In a forked child it only frees memory and closes the child's
 * copy of the descriptor: the parent's connection is untouched. */
FARENA_API void farena_close(farena_client *c);

/* Returns the details of the last failure on c: the daemon's message, or
 * the OS reason, or the library's explanation; "" after a success. The
 * string belongs to c and stays valid until the next call on c. A NULL c
 * gives a static string. */
FARENA_API const char *farena_errmsg(const farena_client *c);

/* Sets the time limit of every later call on c: a call fails with
 * FARENA_ETIMEDOUT when the daemon neither accepts request bytes nor sends
 * response bytes for timeout_ms milliseconds. 0 (the default) waits forever.
 * The limit bounds silence, not the whole call: a daemon that keeps moving
 * bytes, however slowly, keeps the call going (a large batch legitimately
 * takes longer than timeout_ms in total); a wall-clock bound is the
 * caller's to impose, e.g. by closing the client from a watchdog process.
 * After a timeout the connection is out of step with the daemon and every
 * later call returns FARENA_ECONNLOST: close the client and connect again.
 * Errors: FARENA_EINVAL (c NULL or timeout_ms negative), FARENA_EFORK. */
FARENA_API int farena_set_timeout(farena_client *c, int timeout_ms);

/* Copies what the daemon reported at connect time (or at the last
 * farena_hello()) into *out; no round trip. Errors: FARENA_EINVAL. */
FARENA_API int farena_server(const farena_client *c, struct farena_server_info *out);

/* Sends hello again (a cheap ping) and refreshes the client's copy of the
 * daemon's limits; *out (may be NULL) receives the answer. Errors: only
 * the common ones (see the top of this file). */
FARENA_API int farena_hello(farena_client *c, struct farena_server_info *out);

/* ---- writing (crate: FileArenaWriter) ---- */

/* Creates a writer that will become the file of index file_index in an
 * arena (crate: FileArenaWriter::new(i)). *writer receives its handle; it
 * belongs to this connection until finish, into_arena or release.
 * Errors: FARENA_ELIMIT (too many writers or handles), FARENA_ENOSPACE. */
FARENA_API int farena_writer_new(farena_client *c, uint16_t file_index, farena_handle *writer);

/* Appends len bytes of data (data may be NULL when len is 0) to the writer
 * and stores where they landed in *loc (may be NULL). A payload too large to
 * fit in one request (see max_message in struct farena_limits; never more than
 * 4 GiB - 1 bytes, the protocol's largest) is refused with FARENA_ETOOLARGE
 * before anything is sent.
 * Errors: FARENA_ENOSUCHHANDLE, FARENA_EFILEFULL, FARENA_ENOSPACE,
 * FARENA_EIOERROR, FARENA_ETOOLARGE. */
FARENA_API int farena_push(farena_client *c, farena_handle writer, const void *data, size_t len,
                           struct farena_loc *loc);

/* Appends the n payloads items[0..n-1] in order; locs (n entries, may be
 * NULL) receives their locations. Any n works: the items are split into as
 * many requests as the daemon's limits need, pipelined on the connection.
 * Every item is checked first: one that could never fit in a request makes
 * the call fail with FARENA_ETOOLARGE before anything is sent. n == 0 returns
 * 0 at once.
 *
 * On a failure reported by the daemon (e.g. FARENA_EFILEFULL or
 * FARENA_ENOSPACE at item k, named in farena_errmsg with the caller's
 * numbering), the items before k are stored, and requests already in flight
 * behind the failing one may have stored theirs too (no new request is sent
 * once a failure is seen). locs then holds the locations of the items of
 * every request that succeeded and FARENA_LOC_NONE for all others: the
 * failing request's items before k were stored, but the daemon's error
 * reply does not say where. The writer stays usable and
 * farena_writer_len() tells its length. */
FARENA_API int farena_push_many(farena_client *c, farena_handle writer, const struct iovec *items,
                                size_t n, struct farena_loc *locs);

/* The location push_many stores for an item that was not stored: a length
 * no file can hold at that offset. FARENA_LOC_NONE is its initializer
 * (struct farena_loc l = FARENA_LOC_NONE;), made of the three fields below. */
#define FARENA_LOC_NONE_INDEX  UINT16_MAX
#define FARENA_LOC_NONE_OFFSET UINT32_MAX
#define FARENA_LOC_NONE_LEN    UINT32_MAX
/* clang-format off */
#define FARENA_LOC_NONE {FARENA_LOC_NONE_INDEX, FARENA_LOC_NONE_OFFSET, FARENA_LOC_NONE_LEN}
/* clang-format on */

/* Returns 1 when loc is FARENA_LOC_NONE, else 0. */
FARENA_API int farena_loc_is_none(struct farena_loc loc);

/* Stores the number of bytes written so far to the writer in *len (crate:
 * len; is_empty is *len == 0). Errors: FARENA_ENOSUCHHANDLE. */
FARENA_API int farena_writer_len(farena_client *c, farena_handle writer, uint64_t *len);

/* Finishes the writer: its handle ends and *file receives a new file handle
 * (crate: finish), owned by this connection until it releases it or
 * closes. While the file lives (this connection still owns it, or a live
 * arena contains it), any connection may use the handle in farena_build()
 * or farena_arena_new(): this is the crate's parallel writing, where each
 * thread or process finishes file i on its own client and hands the handle
 * to one that builds. Only this connection may release it. A file no arena
 * contains ends when this connection closes or releases it, so the builder
 * must build before that. Errors: FARENA_ENOSUCHHANDLE, FARENA_EIOERROR. */
FARENA_API int farena_finish(farena_client *c, farena_handle writer, farena_handle *file);

/* Finishes a writer of index 0 straight into a one-file arena (crate:
 * into_arena); the writer handle ends and this connection holds one
 * reference to *arena. Errors: FARENA_EMISSINGINDEX (the writer's index is
 * not 0; the writer is left untouched), FARENA_ENOSUCHHANDLE. */
FARENA_API int farena_into_arena(farena_client *c, farena_handle writer, farena_handle *arena);

/* ---- assembling arenas (crate: FileArenaBuilder, FileArena::new) ---- */

/* Builds an arena from n file handles given in any order: each file is placed
 * at its own index (crate: FileArenaBuilder). The indices must be exactly
 * 0..n-1. Any live file works, whichever connection finished it (see
 * farena_finish). This connection holds one reference to *arena; the files'
 * owners keep theirs. The files stay usable for later builds (a file may
 * belong to several arenas).
 * Errors: FARENA_EEMPTY (n == 0, refused without a round trip),
 * FARENA_EDUPLICATEINDEX, FARENA_EMISSINGINDEX, FARENA_ENOSUCHHANDLE (a
 * handle that is not a live file: a writer, an arena, or a file whose owner
 * released it or closed before any arena contained it; farena_errmsg names
 * the item). */
FARENA_API int farena_build(farena_client *c, const farena_handle *files, size_t n,
                            farena_handle *arena);

/* Like farena_build(), but files[i] must be the file of index i (crate:
 * FileArena::new, the low-level form). Accepts the same files as
 * farena_build(): any live file, whichever connection finished it.
 * Errors: as farena_build(), and FARENA_EINDEXMISMATCH when the order is
 * wrong. */
FARENA_API int farena_arena_new(farena_client *c, const farena_handle *files, size_t n,
                                farena_handle *arena);

/* ---- reading (crate: FileArena) ---- */

/* Appends the payload at loc in arena to buf (crate: get_into). No reference
 * to the arena is needed, only a live handle. On failure buf holds exactly
 * what it held before (its capacity may have grown).
 * Errors: FARENA_ENOSUCHHANDLE, FARENA_EOUTOFBOUNDS, FARENA_ETOOLARGE (the
 * payload cannot fit in one response; refused before sending),
 * FARENA_EIOERROR, FARENA_ENOMEM. */
FARENA_API int farena_get_into(farena_client *c, farena_handle arena, struct farena_loc loc,
                               struct farena_buf *buf);

/* Like farena_get_into(), but the payload must be valid UTF-8 (crate:
 * get_str_into): otherwise FARENA_EUTF8 and buf is untouched. */
FARENA_API int farena_get_str_into(farena_client *c, farena_handle arena, struct farena_loc loc,
                                   struct farena_buf *buf);

/* Like farena_get_str_into() without the UTF-8 check (crate:
 * get_str_into_unchecked): for data the caller knows is text. Identical to
 * farena_get_into() in C, where no type depends on the check; kept so code
 * mirrors the crate. */
FARENA_API int farena_get_str_into_unchecked(farena_client *c, farena_handle arena,
                                             struct farena_loc loc, struct farena_buf *buf);

/* Appends the n payloads at locs[0..n-1], in order, to buf: payload i starts
 * where payload i-1 ends (lengths are the locs' len). Any n works: the
 * locations are split into as many requests as the daemon's limits need and
 * pipelined. A single payload too large for one response fails the whole call
 * with FARENA_ETOOLARGE before anything is sent. n == 0 returns 0 with buf
 * unchanged. On failure buf holds exactly what it held before.
 * Errors: as farena_get_into(). */
FARENA_API int farena_get_many_into(farena_client *c, farena_handle arena,
                                    const struct farena_loc *locs, size_t n,
                                    struct farena_buf *buf);

/* Fills *out with the arena's file count, bytes, references and name.
 * Errors: FARENA_ENOSUCHHANDLE. */
FARENA_API int farena_arena_info(farena_client *c, farena_handle arena,
                                 struct farena_arena_info *out);

/* Stores the arena's file handles, in index order, in files[0..cap-1] and
 * their number in *n (as snprintf does: when *n > cap only the first cap
 * were stored). Any connection may use these handles in a later
 * farena_build()/farena_arena_new() while the files belong to a live arena
 * (the crate's "build a new arena containing all files").
 * Errors: FARENA_ENOSUCHHANDLE, FARENA_EINVAL (n NULL, or files NULL with cap
 * > 0). */
FARENA_API int farena_arena_files(farena_client *c, farena_handle arena, farena_handle *files,
                                  size_t cap, size_t *n);

/* ---- sharing and lifetime ---- */

/* Takes one more reference to the arena for this connection (counted: open
 * twice, release twice). Errors: FARENA_ENOSUCHHANDLE, FARENA_ELIMIT. */
FARENA_API int farena_open(farena_client *c, farena_handle arena);

/* Drops what this connection holds of handle (crate: Drop): a writer is
 * discarded, a file's ownership is dropped, one arena reference is dropped.
 * Errors: FARENA_ENOSUCHHANDLE when this connection holds nothing of it
 * (other connections' references are never touched). */
FARENA_API int farena_release(farena_client *c, farena_handle handle);

/* Binds name (NUL-terminated, 1..max_name bytes) to the arena; the name holds
 * a reference, so the arena outlives this connection until farena_unname().
 * An arena may carry several names. Errors: FARENA_ENAMETAKEN,
 * FARENA_ENOSUCHHANDLE, FARENA_EINVAL (NULL or empty name), FARENA_EBADREQUEST
 * (name too long). */
FARENA_API int farena_name(farena_client *c, farena_handle arena, const char *name);

/* Stores the arena bound to name in *arena. Takes no reference: call
 * farena_open() to keep the arena alive after the name goes.
 * Errors: FARENA_ENOSUCHNAME, FARENA_EINVAL, FARENA_EBADREQUEST. */
FARENA_API int farena_lookup(farena_client *c, const char *name, farena_handle *arena);

/* Removes the name and its reference. Errors: FARENA_ENOSUCHNAME,
 * FARENA_EINVAL, FARENA_EBADREQUEST. */
FARENA_API int farena_unname(farena_client *c, const char *name);

/* ---- daemon ---- */

/* Fills *out with the daemon's counters. Errors: only the common ones. */
FARENA_API int farena_stat(farena_client *c, struct farena_stat *out);

/* One bound name, as farena_list() reports it. */
struct farena_list_entry {
    char name[256];      /* the name, NUL-terminated (1..255 bytes, no NUL) */
    farena_handle arena; /* the arena it binds (no reference is taken) */
    uint64_t bytes;      /* total payload bytes in the arena's files */
    uint64_t files;      /* number of files */
    uint64_t refs;       /* connection references plus names, as arena_info */
};

/* Bytes of a farena_list() cursor buffer: the longest name and its NUL. */
#define FARENA_CURSOR_SIZE 256

/* Lists the names bound in the daemon that start with prefix (NULL or "":
 * every name), one page per call, in byte order (unsigned bytes, a name
 * before its extensions), with what each binds.
 *
 * cursor is the caller's buffer of FARENA_CURSOR_SIZE bytes holding a
 * NUL-terminated string: "" to start a listing; on success it holds where
 * the next page starts, and "" once the listing is complete. entries
 * (cap >= 1 slots) receives the page's names and *n their number: at most
 * cap (and at most the daemon's max_batch), fewer when the reply would be
 * over max_message, so loop until cursor is "", not until a short page:
 *
 *     char cur[FARENA_CURSOR_SIZE] = "";
 *     do {
 *         err = farena_list(c, "results/", cur, ents, 100, &n);
 *         ...use ents[0..n-1]...
 *     } while (err == 0 && cur[0] != '\0');
 *
 * A listing holds nothing in the daemon between calls and never blocks
 * anyone: names bound for the whole listing come back exactly once; names
 * bound or removed meanwhile may or may not appear. The cursor is the last
 * name returned, so any name is a valid cursor (the listing resumes after
 * it). On failure entries may have been written, *n and cursor are
 * untouched. Errors: FARENA_EINVAL (cursor, entries or n NULL, cap 0, or
 * cursor not NUL-terminated within FARENA_CURSOR_SIZE bytes),
 * FARENA_EBADREQUEST (a prefix longer than 255 bytes),
 * FARENA_EUNKNOWNMETHOD (a daemon older than the list method). */
FARENA_API int farena_list(farena_client *c, const char *prefix, char *cursor,
                           struct farena_list_entry *entries, size_t cap, size_t *n);

/* Calls any method by name with params_len bytes of msgpack at params (one
 * array, e.g. 0x90 for []) and appends the result, as msgpack bytes, to
 * result (may be NULL to discard it). For methods newer than this library
 * and for tools; the typed functions above are preferred. On failure result
 * holds what it held before. params is checked with the same guards as the
 * daemon's (declared sizes, nesting) before it is decoded, and nothing is
 * sent when it fails them. Errors: whatever the daemon answers (unknown
 * names give FARENA_EUNKNOWNMETHOD), FARENA_EINVAL (params not exactly one
 * msgpack array, or nested too deep), FARENA_ETOOLARGE (the request, or a
 * size params declares, over max_message). */
FARENA_API int farena_call_raw(farena_client *c, const char *method, const void *params,
                               size_t params_len, struct farena_buf *result);

/* ---- many threads reading one arena (crate: FileArena shared by threads) ---- */

/* A read handle on one arena for any number of threads at once. Opaque;
 * made by farena_reader_open(), freed by farena_reader_close(). */
typedef struct farena_reader farena_reader;

/* Opens a read handle on arena (a live handle; c need not hold it). The
 * reader has its own connection to c's daemon (with c's timeout, direct
 * and max_fds options), which holds one reference to the arena until
 * farena_reader_close(), so the arena outlives c's references and c
 * itself. Files are read with pread() on read-only descriptors fetched
 * the first time any thread needs each (under the reader's mutex); after
 * that, reads of that file take no lock. Where direct reads are off or a
 * descriptor cannot be had, that read goes through the reader's connection,
 * one thread at a time. c is used only by this call (its message tells why
 * it failed). On success *out is the new reader, owned by the caller.
 * Errors: FARENA_ENOSUCHHANDLE, FARENA_ELIMIT (the daemon's max_clients or
 * max_handles), FARENA_ECONNECT, and the common ones. */
FARENA_API int farena_reader_open(farena_client *c, farena_handle arena, farena_reader **out);

/* Closes the reader: its descriptors, its connection and its reference to
 * the arena go. No thread may be using r, or use it afterwards. NULL is a
 * no-op. In a forked child it only frees the child's copies. */
FARENA_API void farena_reader_close(farena_reader *r);

/* The get functions of a reader: same results and error codes as
 * farena_get_into(), farena_get_str_into(), farena_get_str_into_unchecked()
 * and farena_get_many_into() on a client, callable from any number of
 * threads at once on one reader (each with its own buf). No message is
 * kept (threads share r): for the details of a failure, repeat the call on
 * a client. After fork() they return FARENA_EFORK in the child. */
FARENA_API int farena_reader_get_into(farena_reader *r, struct farena_loc loc,
                                      struct farena_buf *buf);
FARENA_API int farena_reader_get_str_into(farena_reader *r, struct farena_loc loc,
                                          struct farena_buf *buf);
FARENA_API int farena_reader_get_str_into_unchecked(farena_reader *r, struct farena_loc loc,
                                                    struct farena_buf *buf);
FARENA_API int farena_reader_get_many_into(farena_reader *r, const struct farena_loc *locs,
                                           size_t n, struct farena_buf *buf);

/* farena_direct_file() for a reader: returns 1 with the descriptor of the
 * arena's file file_index in *fd and its size in *size (fetched now if
 * needed), or 0 when reads of that file go through the reader's get
 * functions. Callable from any thread. The descriptor belongs to r: never
 * close it; it stays valid until farena_reader_close(r). Errors:
 * FARENA_EINVAL, FARENA_EFORK. */
FARENA_API int farena_reader_file(farena_reader *r, uint16_t file_index, int *fd, uint64_t *size);

/* ---- buffers ---- */

/* Makes room for at least extra more bytes after buf->len (plus the NUL the
 * library keeps after the data). Returns 0, FARENA_ENOMEM (buf unchanged) or
 * FARENA_EINVAL. */
FARENA_API int farena_buf_reserve(struct farena_buf *buf, size_t extra);

/* Empties buf, keeping its memory for reuse. NULL is a no-op. */
FARENA_API void farena_buf_clear(struct farena_buf *buf);

/* Frees buf's memory and resets it to FARENA_BUF_INIT. NULL is a no-op. */
FARENA_API void farena_buf_free(struct farena_buf *buf);

#ifdef __cplusplus
}
#endif

#endif
