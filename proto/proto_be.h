/* Big-endian field readers for the scanner and the codec. Private to proto/:
 * not installed, not included outside this directory. */
#ifndef FARENA_PROTO_BE_H
#define FARENA_PROTO_BE_H

#include <stdint.h>

/* The 16-bit big-endian field at p. */
static inline uint32_t proto_be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

/* The 32-bit big-endian field at p. */
static inline uint32_t proto_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The 64-bit big-endian field at p. */
static inline uint64_t proto_be64(const uint8_t *p)
{
    return (uint64_t)proto_be32(p) << 32 | proto_be32(p + 4);
}

/* The n-byte (1, 2, 4 or 8) big-endian field at p; a switch on the width
 * lets the compiler load each field whole. */
static inline uint64_t proto_be(const uint8_t *p, unsigned n)
{
    switch (n) {
    case 1:
        return p[0];
    case 2:
        return proto_be16(p);
    case 4:
        return proto_be32(p);
    default:
        return proto_be64(p);
    }
}

#endif
