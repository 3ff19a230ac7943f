/* The daemon's receive path as a fuzzing harness: shared by the libFuzzer
 * target and by check_proto's corpus replay, so every fuzz finding that is
 * committed to the corpus is re-run by the ordinary test suite. */
#ifndef FARENA_TESTS_FUZZ_PIPELINE_H
#define FARENA_TESTS_FUZZ_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input: byte 0 picks the scanner limits, byte 1 seeds the chunk
 * sizes, the rest is a byte stream fed to the scanner in those chunks; every
 * message the scanner delimits is copied to an exact-size buffer and run
 * through proto_unpack, proto_request_decode, proto_response_decode and every
 * typed reader. A broken invariant prints a line to stderr and aborts.
 * Returns the number of complete messages. Allocates only transiently. */
size_t fuzz_pipeline_run(const uint8_t *data, size_t size);

#endif
