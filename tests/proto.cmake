# The protocol module: tables, scanner guards, codec, and a replay of the
# fuzzing corpus through the same harness the fuzzer runs.
farena_check(check_proto SOURCES check_proto.c fuzz/pipeline.c LIBS farena_proto TIMEOUT 120)
target_compile_definitions(check_proto PRIVATE
    FARENA_FUZZ_CORPUS="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus")

# libFuzzer target (configure preset `fuzz`; run by scripts/fuzz.sh). It
# compiles its own copy of the proto sources so that they carry the
# fuzzer's coverage instrumentation and the sanitizers.
if(FARENA_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "FARENA_FUZZ needs clang (use the fuzz preset)")
    endif()
    set(farena_fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
    add_executable(fuzz_scan_decode
        fuzz/fuzz_scan_decode.c fuzz/pipeline.c
        ${PROJECT_SOURCE_DIR}/proto/errors.c ${PROJECT_SOURCE_DIR}/proto/methods.c
        ${PROJECT_SOURCE_DIR}/proto/scan.c ${PROJECT_SOURCE_DIR}/proto/codec.c)
    target_compile_options(fuzz_scan_decode PRIVATE ${farena_fuzz_flags} -O1 -g
        -fno-omit-frame-pointer "-iquote${PROJECT_SOURCE_DIR}/proto")
    target_link_options(fuzz_scan_decode PRIVATE ${farena_fuzz_flags})
    target_link_libraries(fuzz_scan_decode PRIVATE farena_warnings PkgConfig::MSGPACK)
    # Every seed once, as a quick regression run inside the fuzz build.
    add_test(NAME fuzz_scan_decode_corpus
        COMMAND fuzz_scan_decode -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus)
    set_tests_properties(fuzz_scan_decode_corpus PROPERTIES TIMEOUT 120)
endif()
