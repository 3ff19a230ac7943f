# cmake --install into a temporary prefix, then consumers built with
# pkg-config and with find_package(farena), and the installed Python package,
# run against the installed farenad.
# Not in sanitized builds: an ASan-instrumented libfarena cannot be linked
# into an uninstrumented consumer.
if(NOT FARENA_SANITIZE)
    add_test(NAME install_consumers
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh ${PROJECT_BINARY_DIR}
                     ${PROJECT_SOURCE_DIR} ${FARENA_PYTHON_INSTALL_DIR} "${FARENA_PREFIX_PYTHON}"
                     ${CMAKE_INSTALL_PREFIX})
    set_tests_properties(install_consumers PROPERTIES TIMEOUT 180)
endif()
