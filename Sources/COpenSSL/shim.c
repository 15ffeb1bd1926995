#include "copenssl.h"
#include <openssl/evp.h>

void copenssl_sha256(const void *data, size_t length, unsigned char out[32]) {
    unsigned int written = 0;
    EVP_Digest(data, length, out, &written, EVP_sha256(), NULL);
}
