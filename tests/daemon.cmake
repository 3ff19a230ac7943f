# farenad's suites (farena_testharness is in CMakeLists.txt).

# Unit: the registry's lifetimes and caps, no networking.
farena_check(check_registry SOURCES check_registry.c LIBS farena_daemon farena_testharness TIMEOUT 60 CASE_TIMEOUT 30)
# Every method, its results and every error it can return; the crate's
# scenarios end to end; sharing between connections; concurrent readers.
farena_check(check_daemon SOURCES check_daemon.c LIBS farena_testharness TIMEOUT 120 CASE_TIMEOUT 60)
# The guards: hostile input, back-pressure, quota, client and descriptor
# limits, pipelining, cleanup on disconnect, the peer-uid check.
farena_check(check_guards SOURCES check_guards.c LIBS farena_testharness TIMEOUT 120 CASE_TIMEOUT 60)
# Start-up and shutdown: socket placement and modes, stale sockets, a second
# daemon, signals and shutting_down, options, start-up warnings.
farena_check(check_lifecycle SOURCES check_lifecycle.c LIBS farena_testharness TIMEOUT 120 CASE_TIMEOUT 30)
# The I/O engine: cold reads, and connections closing, arenas freed and
# SIGTERM arriving while reads and writes are in flight.
farena_check(check_engine SOURCES check_engine.c LIBS farena_testharness TIMEOUT 120 CASE_TIMEOUT 60)
# These four again on the thread-pool I/O engine (the fallback where io_uring
# is unavailable).
farena_check_engine(check_daemon threads)
farena_check_engine(check_guards threads)
farena_check_engine(check_lifecycle threads)
farena_check_engine(check_engine threads)
# Preloaded into a farenad to make its event loop fail (exit status 1).
add_library(farena_fail_epoll MODULE fail_epoll.c)
target_link_libraries(farena_fail_epoll PRIVATE farena_warnings)
target_compile_definitions(check_lifecycle PRIVATE
    FARENA_FAIL_EPOLL="$<TARGET_FILE:farena_fail_epoll>")
add_dependencies(check_lifecycle farena_fail_epoll)
