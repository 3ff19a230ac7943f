# farenad under systemd: the units verify; socket activation and readiness
# work with systemd's own tools and protocols.
add_test(NAME systemd_units
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/verify_units.sh ${PROJECT_BINARY_DIR}/systemd/build)
set_tests_properties(systemd_units PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77)

farena_check(check_systemd SOURCES check_systemd.c LIBS farena_testharness TIMEOUT 60)
