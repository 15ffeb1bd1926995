#ifndef COPENSSL_H
#define COPENSSL_H
#include <stddef.h>
/* Only what the store needs: SHA-256 of a key secret. */
void copenssl_sha256(const void *data, size_t length, unsigned char out[32]);
#endif
