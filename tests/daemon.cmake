# farenad's suites.

# Unit: the registry's lifetimes and caps, no networking.
farena_check(check_registry SOURCES check_registry.c LIBS farena_daemon TIMEOUT 60)
