/* libFuzzer target: arbitrary bytes through the guarding scanner, in chunks
 * derived from the input, and every complete message through the codec
 * (see pipeline.h for the input layout and the invariants). */
#include <stddef.h>
#include <stdint.h>

#include "pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer's entry point: any input, never a crash. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)fuzz_pipeline_run(data, size);
    return 0;
}
