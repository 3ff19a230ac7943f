/* An LD_PRELOAD module for check_lifecycle: every epoll_wait fails with EIO,
 * so farenad's event loop fails as soon as it starts. There is no other way
 * to make event_base_dispatch() fail from outside the process. */
#include <errno.h>
#include <sys/epoll.h>

/* Fails: the event loop's wait is broken. */
int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    (void)epfd;
    (void)events;
    (void)maxevents;
    (void)timeout;
    errno = EIO;
    return -1;
}
