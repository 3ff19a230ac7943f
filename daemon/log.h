/* farenad's logging: one line per event on stderr, with <N> syslog priority
 * prefixes when stderr goes to the journal (JOURNAL_STREAM names fd 2's
 * device and inode, as systemd.exec(5) describes). */
#ifndef FARENA_DAEMON_LOG_H
#define FARENA_DAEMON_LOG_H

/* Severities, in syslog's numbering so the journal prefix is the value. */
enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Sets the most verbose level printed (default LOG_LVL_INFO), decides from
 * the environment whether to add journal prefixes, and routes libevent's own
 * messages through log_msg(). Call once, early; may be called again. */
void log_init(enum log_level max_level);

/* Tells whether messages of level lvl are printed (to skip costly
 * formatting). */
int log_enabled(enum log_level lvl);

/* Prints one message (printf format, no trailing newline needed). */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Logs an error and exits with status 1. For start-up failures only: once
 * the daemon serves, errors are answered, never fatal. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
