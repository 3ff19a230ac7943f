/* A scripted fake farenad for check_client: a listening Unix socket in the
 * harness's run directory (th_run_path) and a thread that answers one
 * connection the way its mode says, for the failures a real daemon cannot
 * be made to show on demand (every error code, malformed replies, silence,
 * old or future daemons). Uses Check: call it inside a test only. */
#ifndef FARENA_TESTS_FAKE_PEER_H
#define FARENA_TESTS_FAKE_PEER_H

#include <pthread.h>
#include <stdint.h>

enum fake_mode {
    FAKE_ERRORS,     /* answer request k with errors[k] */
    FAKE_SILENT,     /* never answer after hello */
    FAKE_BAD_MSGID,  /* answer with a msgid nobody asked for */
    FAKE_GARBAGE,    /* answer with a byte that is not msgpack */
    FAKE_HANG_UP,    /* close after reading a request */
    FAKE_BAD_RESULT, /* answer writer_new with a str */
    FAKE_REFUSE,     /* at once: the too-many-clients reply, then close */
    FAKE_BAD_HELLO,  /* answer hello with protocol 0 */
    FAKE_PROTO_2,    /* answer hello with protocol 2 (a future, incompatible one) */
    FAKE_HUGE_LIMIT, /* report max_message 8 GiB; answer anything else with nil */
    FAKE_OLD,        /* a daemon without arena_fds: get answers 'f' bytes, others nil */
    FAKE_STRAY_FDS,  /* offers arena_fds; answers all with nil plus 2 unasked descriptors */
};

/* One fake peer: a listening socket and a thread serving one connection. */
struct fake {
    char path[108];
    int lfd;
    pthread_t th;
    enum fake_mode mode;
    const char *const *errors; /* FAKE_ERRORS: wire names, NULL-terminated */
    uint32_t offset;           /* FAKE_ERRORS: bytes "stored" so far */
    int asked_fds;             /* arena_fds requests seen */
    int item_detail;           /* FAKE_ERRORS: batch errors carry {"item": 2}
                                  and a message naming item 9 (which a
                                  client must not read); else the old form
                                  [name, "item 2: ..."] */
};

/* Starts a fake peer (*f, the caller's, for the whole test) in mode on a
 * fresh socket path in the run directory (f->path); errors: FAKE_ERRORS's
 * answers (static storage). Fails the test when it cannot. */
void fake_start(struct fake *f, enum fake_mode mode, const char *const *errors);

/* Waits for the fake's thread (it ends when the client closes, or after
 * 10 s of silence) and removes its socket. */
void fake_stop(struct fake *f);

#endif
