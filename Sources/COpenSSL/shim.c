#include "copenssl.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

void copenssl_sha256(const void *data, size_t length, unsigned char out[32]) {
    unsigned int written = 0;
    EVP_Digest(data, length, out, &written, EVP_sha256(), NULL);
}

void copenssl_hmac_sha256(const void *key, size_t key_length, const void *data, size_t length, unsigned char out[32]) {
    unsigned int written = 0;
    HMAC(EVP_sha256(), key, (int)key_length, data, length, out, &written);
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

int copenssl_git_blob_sha1_fd(int fd, unsigned char out[20]) {
    struct stat info;
    if (fstat(fd, &info) != 0) return errno;
    enum { chunk = 1 << 20 };
    unsigned char *buffer = malloc(chunk);
    if (!buffer) return ENOMEM;
    char header[48];
    int written = snprintf(header, sizeof header, "blob %lld", (long long)info.st_size);
    unsigned int size = 0;
    int result = 0;
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    EVP_DigestInit_ex(context, EVP_sha1(), NULL);
    EVP_DigestUpdate(context, header, (size_t)written + 1);
    off_t offset = 0;
    while (offset < info.st_size) {
        ssize_t count = pread(fd, buffer, chunk, offset);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) { result = count < 0 ? errno : EIO; break; }
        EVP_DigestUpdate(context, buffer, (size_t)count);
        offset += count;
    }
    EVP_DigestFinal_ex(context, out, &size);
    EVP_MD_CTX_free(context);
    free(buffer);
    return result;
}
