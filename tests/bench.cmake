# The benchmark smoke test: bench/run.sh --quick against this build's own
# farenad and farena-bench (no Release rebuild, no package installs), the cold
# section included (64 MiB). It checks only that the run finishes and writes
# its report, and that the cold section could run at all (evicting the
# daemon's files through /proc); it asserts nothing about speed. Not
# registered in sanitized builds, whose timings mean nothing.
if(NOT FARENA_SANITIZE)
    add_test(NAME bench_quick
        COMMAND ${PROJECT_SOURCE_DIR}/bench/run.sh --quick --no-install
                --build-dir ${CMAKE_BINARY_DIR}
                --out ${CMAKE_CURRENT_BINARY_DIR}/bench-quick.md)
    set_tests_properties(bench_quick PROPERTIES TIMEOUT 300 LABELS bench
        FAIL_REGULAR_EXPRESSION "cold section: ")
endif()
