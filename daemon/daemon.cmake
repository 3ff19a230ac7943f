# farenad, the daemon. farena_daemon holds every daemon module except main.c
# so the test suites can link the registry and friends directly.
add_library(farena_daemon STATIC
    config.c
    log.c
    u64map.c
    obuf.c
    outq.c
    io.c
    io_ring.c
    io_pool.c
    io_pipe.c
    registry.c
    nametree.c
    methods.c
    server.c
    sock.c)
target_include_directories(farena_daemon PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
# Public, so main.c (--version) sees the same definition as hello's reply.
target_compile_definitions(farena_daemon PUBLIC FARENAD_VERSION="${PROJECT_VERSION}")
target_link_libraries(farena_daemon
    PUBLIC farena_store farena_proto PkgConfig::LIBEVENT
    PRIVATE PkgConfig::LIBURING Threads::Threads farena_warnings)

add_executable(farenad main.c)
target_link_libraries(farenad PRIVATE farena_daemon farena_sysd farena_warnings)
install(TARGETS farenad RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES farenad.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
