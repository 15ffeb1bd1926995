#include "copenssl.h"
#include <openssl/evp.h>
#include <stdio.h>

void copenssl_sha256(const void *data, size_t length, unsigned char out[32]) {
    unsigned int written = 0;
    EVP_Digest(data, length, out, &written, EVP_sha256(), NULL);
}

void copenssl_git_blob_sha1(const void *data, size_t length, unsigned char out[20]) {
    char header[48];
    int written = snprintf(header, sizeof header, "blob %zu", length);
    unsigned int size = 0;
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    EVP_DigestInit_ex(context, EVP_sha1(), NULL);
    EVP_DigestUpdate(context, header, (size_t)written + 1); /* including the NUL */
    EVP_DigestUpdate(context, data, length);
    EVP_DigestFinal_ex(context, out, &size);
    EVP_MD_CTX_free(context);
}
