# farenad with a stock JavaScript client: npm's @msgpack/msgpack, installed by
# the test command itself (npm ci from tests/node/package-lock.json into the
# build directory; nothing global), then tests/test_node.mjs against a
# private farenad. Missing node or npm, or an unreachable registry, fails
# these tests loudly: scripts/deps.sh test installs Debian's nodejs and npm.
find_program(FARENA_NODE node)
find_program(FARENA_NPM npm)
set(farena_node_dir ${CMAKE_CURRENT_BINARY_DIR}/node)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/node/package.json ${farena_node_dir}/package.json COPYONLY)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/node/package-lock.json
               ${farena_node_dir}/package-lock.json COPYONLY)
if(FARENA_NODE AND FARENA_NPM)
    add_test(NAME client_node_deps
             COMMAND ${FARENA_NPM} ci --no-audit --no-fund --loglevel=error
             WORKING_DIRECTORY ${farena_node_dir})
    set_tests_properties(client_node_deps PROPERTIES TIMEOUT 300 FIXTURES_SETUP node_modules)
    add_test(NAME client_node
             COMMAND ${FARENA_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/test_node.mjs $<TARGET_FILE:farenad>
                     ${farena_node_dir} ${PROJECT_SOURCE_DIR}/proto/PROTOCOL.md)
    set_tests_properties(client_node PROPERTIES TIMEOUT 90 FIXTURES_REQUIRED node_modules)
else()
    add_test(NAME client_node
             COMMAND sh -c "echo 'FAIL: node and npm are needed (scripts/deps.sh test installs them)' >&2; exit 1")
endif()
