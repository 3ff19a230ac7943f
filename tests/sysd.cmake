# systemd glue: socket activation and readiness, unit-tested without systemd.
farena_check(check_sysd SOURCES check_sysd.c LIBS farena_sysd TIMEOUT 60)
