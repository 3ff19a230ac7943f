# farenad's suites.
#
# farena_testharness: starts a private farenad (this build's binary) on a
# temporary socket and scratch directory, reads its /proc numbers, and speaks
# raw MessagePack-RPC with bounded waits. Check-independent, so other suites
# (the client's) can use it too.
add_library(farena_testharness STATIC harness.c)
target_include_directories(farena_testharness PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(farena_testharness PRIVATE FARENAD_PATH="$<TARGET_FILE:farenad>")
target_link_libraries(farena_testharness PUBLIC farena_proto PRIVATE farena_warnings)
add_dependencies(farena_testharness farenad)

# Unit: the registry's lifetimes and caps, no networking.
farena_check(check_registry SOURCES check_registry.c LIBS farena_daemon TIMEOUT 60)
# Every method, its results and every error it can return; the crate's
# scenarios end to end; sharing between connections; concurrent readers.
farena_check(check_daemon SOURCES check_daemon.c LIBS farena_testharness TIMEOUT 120)
# The guards: hostile input, back-pressure, quota, client and descriptor
# limits, pipelining, cleanup on disconnect, the peer-uid check.
farena_check(check_guards SOURCES check_guards.c LIBS farena_testharness TIMEOUT 120)
# Start-up and shutdown: socket placement and modes, stale sockets, a second
# daemon, signals and shutting_down, options, start-up warnings.
farena_check(check_lifecycle SOURCES check_lifecycle.c LIBS farena_testharness TIMEOUT 120)
