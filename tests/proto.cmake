# The protocol module: tables, scanner guards, codec.
farena_check(check_proto SOURCES check_proto.c LIBS farena_proto TIMEOUT 120)
