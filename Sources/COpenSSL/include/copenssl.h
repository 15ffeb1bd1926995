#ifndef COPENSSL_H
#define COPENSSL_H
#include <stddef.h>
/* Only what mesad needs: SHA-256 of a key secret, HMAC-SHA256 of a webhook, SHA-1 of a git object. */
void copenssl_sha256(const void *data, size_t length, unsigned char out[32]);
/* HMAC-SHA256 of `data` under `key` (webhook signatures). */
void copenssl_hmac_sha256(const void *key, size_t key_length, const void *data, size_t length, unsigned char out[32]);
/* The git object id of a blob: SHA-1 of "blob <length>\0" followed by the bytes. */
void copenssl_git_blob_sha1(const void *data, size_t length, unsigned char out[20]);
/* The same for the whole file open at `fd`, read in chunks with pread. 0 on success,
   else an errno value. */
int copenssl_git_blob_sha1_fd(int fd, unsigned char out[20]);
#endif
