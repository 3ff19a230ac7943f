/* Test harness for farenad: runs a private daemon on a temporary socket and
 * scratch directory, reads its /proc numbers, and speaks raw MessagePack-RPC
 * to it with a bounded wait on every read and write. Independent of Check:
 * every function reports failure by its return value (and a line on
 * stderr), so any test framework can use it. */
#ifndef FARENA_TESTS_HARNESS_H
#define FARENA_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <msgpack.h>

#include "proto_codec.h"

/* Default bound on every wait, in milliseconds. */
#define TH_TIMEOUT_MS 10000

/* Result codes of the harness's I/O calls. */
enum th_status { TH_OK = 0, TH_ERR = -1, TH_TIMEOUT = -2, TH_EOF = -3 };

/* ---- running a daemon ---- */

/* Creates one directory for this test run (under $TMPDIR or /tmp) in which
 * every daemon gets its own sub-directory, and removes it with
 * th_run_end(). A test killed half-way leaves its files there, and the run
 * directory goes as a whole. Returns 0 or -1. Optional: without it, daemons'
 * directories are made directly under /tmp. */
int th_run_begin(void);
void th_run_end(void);

/* Where a test puts files of its own (a fake peer's socket): the run
 * directory while one is open, else $TMPDIR (when short enough for a socket
 * path) or /tmp. Static storage, valid until th_run_end(). */
const char *th_run_path(void);

/* The farenad binary under test (compiled in). */
const char *th_farenad_path(void);

/* A private daemon. Plain struct filled by th_daemon_start*(); paths are
 * inside dir, which the harness creates and th_daemon_cleanup() removes. */
struct th_daemon {
    pid_t pid;         /* 0 once reaped */
    int status;        /* exit status once reaped (see th_daemon_stop) */
    char dir[200];     /* private directory (mode 0700) */
    char sock[256];    /* dir/farenad.sock unless the test chose another */
    char scratch[256]; /* dir/scratch */
    char logpath[256]; /* dir/farenad.log: the daemon's stdout and stderr */
};

/* How to start a daemon; zero-initialised = the plain case. */
struct th_opts {
    const char *const *args; /* extra arguments, NULL-terminated; may be NULL */
    rlim_t nofile;           /* if non-zero, RLIMIT_NOFILE (soft and hard) in the child */
    rlim_t nofile_soft;      /* if non-zero, then lower the soft limit to this */
    const char *socket_rel;  /* socket path relative to the daemon's directory
                                (default "farenad.sock"); sets d->sock */
    int no_socket_arg;       /* do not pass --socket (tests of the defaults) */
    int no_dir_arg;          /* do not pass --dir */
    const char *const *env;  /* extra NAME=value entries, NULL-terminated */
    int journal_stream;      /* set JOURNAL_STREAM to the log's device:inode,
                                as systemd does for a service's stderr */
    int no_wait;             /* return right after the fork */
};

/* The daemon runs with PR_SET_PDEATHSIG = SIGKILL, so it dies with the
 * thread that started it (a failed Check test ends its process at once):
 * start daemons from the thread that will stop them. */

/* Starts farenad with --socket d->sock --dir d->scratch (and --io-engine
 * $FARENA_TEST_IO_ENGINE when that is set: CTest runs the integration
 * suites once per engine) and args
 * (NULL-terminated, may be NULL), and waits (bounded) until it listens.
 * Returns 0, or -1 (the daemon is stopped and its log printed). */
int th_daemon_start(struct th_daemon *d, const char *const *args);
int th_daemon_start_opts(struct th_daemon *d, const struct th_opts *o);

/* Sends SIGTERM and waits up to timeout_ms (th_daemon_stop: TH_TIMEOUT_MS)
 * for the exit. Returns the exit status (0..255), 128 + the signal number if
 * a signal ended it, or -1 if it did not exit in time (it is then killed
 * with SIGKILL). Idempotent once reaped (returns the same status). */
int th_daemon_stop(struct th_daemon *d);
int th_daemon_stop_within(struct th_daemon *d, int timeout_ms);

/* Waits up to timeout_ms for a daemon that exits by itself (bad options,
 * refused start-up); returns as th_daemon_stop(), -1 on timeout (killed). */
int th_daemon_wait_exit(struct th_daemon *d, int timeout_ms);

/* Waits up to timeout_ms for pid, a child of the calling process (a forked
 * test helper, not a th_daemon), to exit. Returns its exit status (0..255),
 * 128 + the signal number if a signal ended it, or -1 if it did not exit in
 * time (it is then killed with SIGKILL and reaped) or cannot be waited for. */
int th_wait_child(pid_t pid, int timeout_ms);

/* Whether the daemon process is still running (not reaped, not a zombie). */
int th_daemon_alive(struct th_daemon *d);

/* Opens each data file the daemon holds (a regular file in its scratch
 * directory, reached through /proc/PID/fd: same uid, no root) with flags
 * (O_RDONLY, O_WRONLY...) and calls fn(fd, arg) on it; the descriptor is
 * closed afterwards. Returns how many calls returned 0, or -1 when the
 * daemon's descriptors cannot be listed. */
int th_daemon_each_file(const struct th_daemon *d, int flags, int (*fn)(int fd, void *arg),
                        void *arg);

/* Drops the page cache of every data file the daemon holds, without root:
 * fdatasync + posix_fadvise(POSIX_FADV_DONTNEED) on each regular file in
 * its scratch directory, reached through /proc/PID/fd (same uid). Reads
 * after this go to the device. Returns how many files it evicted, or -1. */
int th_daemon_evict(const struct th_daemon *d);

/* How many pipe descriptors the daemon holds (its /proc/PID/fd links to
 * "pipe:[...]"), or -1 when they cannot be listed. */
int th_daemon_pipes(const struct th_daemon *d);

/* Stops the daemon if needed and removes its directory. */
void th_daemon_cleanup(struct th_daemon *d);

/* The daemon's log so far, NUL-terminated, malloc'd (caller frees), or NULL. */
char *th_daemon_log(const struct th_daemon *d);

/* Prints the daemon's log to stderr (for failing tests). */
void th_daemon_dump_log(const struct th_daemon *d);

/* /proc numbers of a process: open descriptors, resident set in KiB, CPU
 * time (user + system) in clock ticks. -1 on error. */
int th_proc_fd_count(pid_t pid);
long th_proc_rss_kib(pid_t pid);
/* A "Key: N kB" line of /proc/PID/status (e.g. "VmPeak"), in KiB; -1 on
 * error. key is borrowed for the call. */
long th_proc_status_kib(pid_t pid, const char *key);
long th_proc_cpu_ticks(pid_t pid);

/* ---- small utilities the suites share ---- */

/* Milliseconds on the monotonic clock; sleeps. */
uint64_t th_now_ms(void);
void th_sleep_ms(int ms);

/* A deadline timeout_ms from now (negative counts as 0), and the
 * milliseconds left until it (0 once past), for every bounded wait:
 *     uint64_t end = th_deadline(5000);
 *     while (!done() && th_ms_left(end) > 0)
 *         th_sleep_ms(5); */
uint64_t th_deadline(int timeout_ms);
int th_ms_left(uint64_t deadline);

/* Fills p[0..n) with bytes that depend on the position and seed, so data
 * read back can be compared with a second call. */
void th_pattern(void *p, size_t n, unsigned seed);

/* A deterministic pseudo-random generator (xorshift64*): advances *state
 * (seed it with any non-zero value) and returns the next number. */
uint64_t th_rand(uint64_t *state);

/* Removes dir and everything under it, not following symbolic links; a
 * missing dir is fine. Goes on past an entry it cannot remove, then returns
 * -1 with errno from the first failure; 0 when everything is gone. */
int th_rm_tree(const char *dir);

/* ---- a raw MessagePack-RPC client ---- */

struct th_client; /* one connection; opaque */

/* A decoded response. result points into the client's buffers: valid until
 * the next receive on the same client. */
struct th_reply {
    uint32_t msgid;
    int err;       /* PROTO_OK, an enum proto_err, or -1 (unknown code) */
    char code[32]; /* the error's wire name, "" on success */
    char msg[512]; /* the error's message, "" on success */
    int64_t item;  /* the error's {"item": k}, or -1 */
    const msgpack_object *result;
};

/* Connects to path, retrying for up to timeout_ms while the listener's
 * backlog is full or the socket is missing. Returns NULL on failure. The
 * socket is non-blocking; every I/O below waits with poll(). */
struct th_client *th_connect(const char *path, int timeout_ms);

/* Closes the connection and frees c; NULL is a no-op. */
void th_close(struct th_client *c);

/* The socket descriptor (to shut down one direction, set buffer sizes...). */
int th_client_fd(const struct th_client *c);

/* Per-client bound on each wait (default TH_TIMEOUT_MS). */
void th_set_timeout(struct th_client *c, int timeout_ms);

/* Sends n raw bytes. Returns TH_OK, TH_TIMEOUT or TH_ERR (EPIPE...). */
int th_send_raw(struct th_client *c, const void *p, size_t n);

/* Packs a request [0, msgid, method, params] into the client's send queue
 * and returns its msgid (the client numbers requests from 1), or -1.
 * fmt lists the params, one letter each:
 *   u uint64_t   i int64_t   d double   n nil   T true
 *   s const char * (str)     S const char *, size_t (str)
 *   b const void *, size_t (bin)
 *   L struct proto_loc (as [file_index, offset, len])
 *   U const uint64_t *, size_t (array of unsigned integers)
 *   a unsigned n, then n items, each given as a one-letter format string
 *     followed by that item's arguments: th_queue(c, "push_many", "ua", w,
 *     2u, "b", p, n, "s", "text") packs [w, [bin, str]]
 *   m (an empty map)
 * The params array's length is the number of top-level items in fmt. */
int64_t th_queue(struct th_client *c, const char *method, const char *fmt, ...);

/* Like th_queue, but a notification [2, method, params]. Returns 0 or -1. */
int th_queue_notify(struct th_client *c, const char *method, const char *fmt, ...);

/* Sends everything queued. Returns as th_send_raw. */
int th_flush(struct th_client *c);

/* Reads one response: TH_OK with *r filled, TH_TIMEOUT, TH_EOF (closed
 * cleanly between messages) or TH_ERR (not msgpack, not a response, closed
 * mid-message). */
int th_recv(struct th_client *c, struct th_reply *r);

/* Waits for the peer to close: TH_EOF, TH_TIMEOUT, or TH_ERR if a response
 * or garbage arrives first (stored in *r when a response). */
int th_wait_eof(struct th_client *c, struct th_reply *r);

/* th_queue + th_flush + th_recv, checking that the reply's msgid matches.
 * Returns TH_OK (r->err tells success or the error) or a TH_ error. */
int th_call(struct th_client *c, struct th_reply *r, const char *method, const char *fmt, ...);

/* ---- reading results ---- */

/* The value under key in a map object, or NULL. */
const msgpack_object *th_map_get(const msgpack_object *map, const char *key);

/* o as an unsigned integer, or UINT64_MAX if it is not one. */
uint64_t th_u64(const msgpack_object *o);

/* map[key] as an unsigned integer (UINT64_MAX if absent or not one). */
uint64_t th_map_u64(const msgpack_object *map, const char *key);

/* Calls stat on c and returns the counter key (UINT64_MAX on failure). */
uint64_t th_stat_u64(struct th_client *c, const char *key);

/* Polls stat on c until counter key equals want, for up to timeout_ms.
 * Returns 0, or -1 (timeout). */
int th_wait_stat(struct th_client *c, const char *key, uint64_t want, int timeout_ms);

#endif
