# libfarena's suites: the C API against private farenads (check_client), the
# shared library's exported symbols, the farena command, the Python module.

farena_check(check_client SOURCES check_client.c LIBS farena farena_testharness TIMEOUT 300)
# The same suite with direct reads off (FARENA_DIRECT=0): both read paths
# must give the same results and error codes.
add_test(NAME check_client_daemon_path COMMAND check_client)
set_tests_properties(check_client_daemon_path PROPERTIES
    TIMEOUT 300
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=300;FARENA_DIRECT=0")

# Direct reads (arena_fds, descriptors, the read handle), run in both modes.
farena_check(check_direct SOURCES check_direct.c LIBS farena farena_testharness TIMEOUT 300)
add_test(NAME check_direct_daemon_path COMMAND check_direct)
set_tests_properties(check_direct_daemon_path PROPERTIES
    TIMEOUT 300
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=300;FARENA_DIRECT=0")

# Only farena_* symbols leave libfarena.so, and its SONAME is the ABI major's.
add_test(NAME client_exports
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/client_exports.sh $<TARGET_FILE:farena>
                 libfarena.so.${FARENA_ABI_MAJOR})
set_tests_properties(client_exports PROPERTIES TIMEOUT 30)

# The command line: put, get, info, rm round trip against a private farenad
# the script starts itself (and kills by pid on exit).
add_test(NAME client_cli
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:farena_cli>
                 $<TARGET_FILE:farenad>)
set_tests_properties(client_cli PROPERTIES TIMEOUT 60)

# The Python module over this build's libfarena.so. Not registered in a
# sanitized build: loading an ASan-instrumented library into an
# uninstrumented python3 needs libasan preloaded, which would test the
# sanitizer setup more than the module.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND NOT CMAKE_C_FLAGS MATCHES "-fsanitize")
    add_test(NAME client_python
             COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_python.py
                     $<TARGET_FILE:farenad>)
    set_tests_properties(client_python PROPERTIES
        TIMEOUT 120
        ENVIRONMENT "FARENA_LIB=$<TARGET_FILE:farena>;FARENA_PYTHON_DIR=${PROJECT_SOURCE_DIR}/client/python")
    # Again with direct reads off.
    add_test(NAME client_python_daemon_path
             COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_python.py
                     $<TARGET_FILE:farenad>)
    set_tests_properties(client_python_daemon_path PROPERTIES
        TIMEOUT 120
        ENVIRONMENT "FARENA_DIRECT=0;FARENA_LIB=$<TARGET_FILE:farena>;FARENA_PYTHON_DIR=${PROJECT_SOURCE_DIR}/client/python")
endif()
