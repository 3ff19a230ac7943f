/* check_client: libfarena against a private farenad (the crate README's
 * scenarios, sharing between processes, batches far above max_message,
 * failure paths), plus a scripted fake peer for the failures a real daemon
 * cannot be made to produce on demand (every error code, malformed replies,
 * silence). Every test starts its own daemon through the harness; the
 * harness makes it die with the test process.
 *
 * One program, one CTest entry, from one file per area: this one holds
 * main and lists them; they share client_test.c, and the fake peer is
 * fake_peer.c. */
#include <check.h>

#include "client_test.h"
#include "th_check.h"

/* The suite: one test case per area, each added by its file. */
static Suite *client_suite(void)
{
    Suite *s = suite_create("client");

    client_crate_cases(s);
    client_sharing_cases(s);
    client_batch_cases(s);
    client_memory_cases(s);
    client_failure_cases(s);
    client_fake_cases(s);
    client_list_cases(s);
    return s;
}

/* Runs the suite inside one harness run directory. */
int main(void)
{
    return th_run_suite(client_suite());
}
