# The storage engine's Check suite (daemon/store.c).
farena_check(check_store SOURCES check_store.c LIBS farena_store farena_testharness TIMEOUT 120)
