# farenad, the daemon. farena_daemon holds every daemon module except main.c
# so the test suites can link the registry and friends directly.
add_library(farena_daemon STATIC
    log.c
    u64map.c
    registry.c)
target_include_directories(farena_daemon PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(farena_daemon
    PUBLIC farena_store farena_proto PkgConfig::LIBEVENT
    PRIVATE farena_warnings)
