# The protocol module: tables, scanner framing and guards, unpacking, codec,
# typed readers, and a replay of the fuzzing corpus through the same harness
# the fuzzer runs. One program from one file per area (check_proto.c holds
# main and lists the others), so it stays one CTest entry; the areas share
# proto_test.c. check_proto_guards.c interposes malloc for the whole program.
farena_check(check_proto
    SOURCES check_proto.c check_proto_scan.c check_proto_guards.c check_proto_unpack.c
            check_proto_codec.c check_proto_readers.c proto_test.c fuzz/pipeline.c
    LIBS farena_proto farena_testharness TIMEOUT 120 CASE_TIMEOUT 60)
target_compile_definitions(check_proto PRIVATE
    FARENA_FUZZ_CORPUS="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus")

# libFuzzer target (configure preset `fuzz`: clang, FARENA_SANITIZE, which
# instruments the proto library it links; run by scripts/fuzz.sh).
if(FARENA_FUZZ)
    add_executable(fuzz_scan_decode fuzz/fuzz_scan_decode.c fuzz/pipeline.c)
    target_compile_options(fuzz_scan_decode PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_scan_decode PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_scan_decode PRIVATE farena_proto farena_warnings)
    # Every seed once, as a quick regression run inside the fuzz build.
    add_test(NAME fuzz_scan_decode_corpus
        COMMAND fuzz_scan_decode -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus)
    set_tests_properties(fuzz_scan_decode_corpus PROPERTIES TIMEOUT 120)
endif()
