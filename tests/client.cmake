# libfarena's suites: the C API against private farenads (check_client), the
# shared library's exported symbols, the farena command, the Python module.

# One program from one file per area (check_client.c holds main and lists
# them), so it stays one CTest entry; the areas and check_direct share
# client_test.c; fake_peer.c is the scripted fake daemon.
farena_check(check_client
    SOURCES check_client.c check_client_crate.c check_client_sharing.c check_client_batches.c
            check_client_memory.c check_client_failures.c check_client_fake.c check_client_list.c
            client_test.c fake_peer.c
    LIBS farena farena_testharness TIMEOUT 300 CASE_TIMEOUT 120)
farena_check_engine(check_client threads)
# The same suite with direct reads off (FARENA_DIRECT=0): both read paths
# must give the same results and error codes.
add_test(NAME check_client_daemon_path COMMAND check_client)
set_tests_properties(check_client_daemon_path PROPERTIES
    TIMEOUT 300
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=120;FARENA_DIRECT=0")

# Direct reads (arena_fds, descriptors, the read handle), run in both modes.
farena_check(check_direct SOURCES check_direct.c client_test.c LIBS farena farena_testharness TIMEOUT 300 CASE_TIMEOUT 120)
add_test(NAME check_direct_daemon_path COMMAND check_direct)
set_tests_properties(check_direct_daemon_path PROPERTIES
    TIMEOUT 300
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=120;FARENA_DIRECT=0")

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

# The Python package over this build's libfarena.so: LD_LIBRARY_PATH puts
# this build's library first in the dynamic loader's search (the package's
# first lookup), so an installed libfarena.so.1 cannot shadow it; FARENA_LIB
# names it too, and test_python.py checks that it is the one loaded. Not
# registered in a sanitized build: loading an ASan-instrumented library into
# an uninstrumented python3 needs libasan preloaded, which would test the
# sanitizer setup more than the package.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND NOT FARENA_SANITIZE)
    set(farena_py_env
        "LD_LIBRARY_PATH=$<TARGET_FILE_DIR:farena>"
        "FARENA_LIB=$<TARGET_FILE:farena>"
        "FARENA_PYTHON_DIR=${PROJECT_SOURCE_DIR}/client/python"
        "PYTHONDONTWRITEBYTECODE=1")
    add_test(NAME client_python
             COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_python.py
                     $<TARGET_FILE:farenad>)
    set_tests_properties(client_python PROPERTIES TIMEOUT 120 ENVIRONMENT "${farena_py_env}")
    # Again with direct reads off.
    add_test(NAME client_python_daemon_path
             COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_python.py
                     $<TARGET_FILE:farenad>)
    set_tests_properties(client_python_daemon_path PROPERTIES
        TIMEOUT 120
        ENVIRONMENT "${farena_py_env};FARENA_DIRECT=0")

    # SpillMapping (zict's checks), the Dask LocalCluster and the pip install
    # need the distribution's python3-zict, python3-distributed and setuptools
    # (scripts/deps.sh test), which only the distribution's interpreter
    # imports: the first of the python3 CMake found and /usr/bin/python3 that
    # has them runs these. Where none has, the tests are still registered
    # and fail saying what is missing.
    set(FARENA_DASK_PYTHON "")
    foreach(py IN ITEMS ${Python3_EXECUTABLE} /usr/bin/python3)
        if(EXISTS ${py})
            execute_process(COMMAND ${py} -c "import zict, distributed, numpy, pytest, setuptools, wheel"
                            RESULT_VARIABLE farena_py_rc OUTPUT_QUIET ERROR_QUIET)
            if(farena_py_rc EQUAL 0)
                set(FARENA_DASK_PYTHON ${py})
                break()
            endif()
        endif()
    endforeach()
    if(FARENA_DASK_PYTHON)
        add_test(NAME client_python_spill
                 COMMAND ${FARENA_DASK_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_python_spill.py
                         $<TARGET_FILE:farenad>)
        add_test(NAME client_python_dask
                 COMMAND ${FARENA_DASK_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_python_dask.py
                         $<TARGET_FILE:farenad>)
        add_test(NAME client_python_pip
                 COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_python_pip.sh ${FARENA_DASK_PYTHON}
                         ${PROJECT_SOURCE_DIR} $<TARGET_FILE_DIR:farena>)
    else()
        foreach(t client_python_spill client_python_dask client_python_pip)
            add_test(NAME ${t} COMMAND sh -c "echo 'no python3 here imports zict, distributed, numpy, \
pytest, setuptools and wheel: run scripts/deps.sh test'; exit 1")
        endforeach()
    endif()
    set_tests_properties(client_python_spill PROPERTIES TIMEOUT 120 ENVIRONMENT "${farena_py_env}")
    set_tests_properties(client_python_dask PROPERTIES TIMEOUT 120 ENVIRONMENT "${farena_py_env}")
    set_tests_properties(client_python_pip PROPERTIES TIMEOUT 120)
endif()
