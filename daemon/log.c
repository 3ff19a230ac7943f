/* Logging to stderr: plain "farenad: level: text" lines for a terminal, or
 * "<N>text" lines that journald turns into priorities. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

static enum log_level log_max = LOG_LVL_INFO;
static int log_journal;

/* The word printed before a message on a terminal. */
static const char *log_word(enum log_level lvl)
{
    switch (lvl) {
    case LOG_LVL_ERR:
        return "error: ";
    case LOG_LVL_WARN:
        return "warning: ";
    case LOG_LVL_DEBUG:
        return "debug: ";
    case LOG_LVL_INFO:
        break;
    }
    return "";
}

/* Writes one formatted line with a single fprintf so concurrent writers to
 * the same stderr do not interleave within a line. */
static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    char text[1024];

    vsnprintf(text, sizeof(text), fmt, ap);
    /* A message must stay one line (the journal splits on newlines), and
     * text a client chose (hello's client_info) must not carry terminal
     * escapes or other control bytes into an operator's terminal. */
    for (char *p = text; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\n' || ch == '\r' || ch == '\t')
            *p = ' ';
        else if (ch < 0x20 || ch == 0x7f)
            *p = '?';
    }
    /* Informational lines read as sentences ("farenad listening on ...");
     * problems carry the program name and their level. */
    if (log_journal)
        fprintf(stderr, "<%d>%s\n", (int)lvl, text);
    else if (lvl == LOG_LVL_INFO)
        fprintf(stderr, "%s\n", text);
    else
        fprintf(stderr, "farenad: %s%s\n", log_word(lvl), text);
}

/* libevent's messages, mapped onto our levels. */
static void log_from_libevent(int severity, const char *msg)
{
    enum log_level lvl = LOG_LVL_DEBUG;

    if (severity == EVENT_LOG_ERR)
        lvl = LOG_LVL_ERR;
    else if (severity == EVENT_LOG_WARN)
        lvl = LOG_LVL_WARN;
    else if (severity == EVENT_LOG_MSG)
        lvl = LOG_LVL_INFO;
    log_msg(lvl, "libevent: %s", msg);
}

/* Tells whether stderr is the journal stream systemd set up for us. Children
 * inherit JOURNAL_STREAM, so systemd.exec(5) says to trust it only when its
 * "DEVICE:INODE" (decimal) names the file fd 2 is open on; a farenad started
 * from a shell inside a service writes to that shell's terminal instead. */
static int log_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int used = 0;

    if (js == NULL || sscanf(js, "%llu:%llu%n", &dev, &ino, &used) != 2 || js[used] != '\0')
        return 0;
    if (fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* Sets the level and output style; see log.h. */
void log_init(enum log_level max_level)
{
    log_max = max_level;
    log_journal = log_stderr_is_journal();
    event_set_log_callback(log_from_libevent);
}

/* Tells whether lvl passes the configured level. */
int log_enabled(enum log_level lvl)
{
    return lvl <= log_max;
}

/* Prints one message at lvl if the level allows it. */
void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(lvl))
        return;
    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

/* Logs at error level, whatever the configured level, and exits 1. */
void fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(LOG_LVL_ERR, fmt, ap);
    va_end(ap);
    exit(1);
}
