#include "cgit2.h"
#include <stdio.h>

int cgit2_enable_fsync(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, enabled);
}

int cgit2_set_cache_max_size(long long bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)bytes);
}

int cgit2_set_cache_object_limit(git_object_t type, size_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, type, bytes);
}

int cgit2_set_mwindow_limits(size_t window_size, size_t mapped_limit) {
    int error = git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, window_size);
    return error ? error : git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, mapped_limit);
}

int cgit2_enable_strict_object_creation(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, enabled);
}

int cgit2_mempack_attach(git_repository *repo, git_odb_backend **backend, const char *pack_config) {
    git_odb *odb = NULL;
    int error = 0;
    if (pack_config) {
        git_config *config = NULL;
        error = git_repository_config(&config, repo);
        if (error == 0) error = git_config_add_file_ondisk(config, pack_config, GIT_CONFIG_LEVEL_APP, repo, 0);
        git_config_free(config);
        if (error < 0) return error;
    }
    error = git_repository_odb(&odb, repo);
    if (error < 0) return error;
    error = git_mempack_new(backend);
    if (error == 0) error = git_odb_add_backend(odb, *backend, 1000);
    git_odb_free(odb);
    return error;
}

int cgit2_mempack_flush(git_repository *repo, git_odb_backend *backend) {
    git_buf pack = {0};
    git_odb *odb = NULL;
    git_odb_writepack *writer = NULL;
    git_indexer_progress stats = {0};
    int error = git_mempack_dump(&pack, repo, backend);
    if (error == 0) error = git_repository_odb(&odb, repo);
    if (error == 0) error = git_odb_write_pack(&writer, odb, NULL, NULL);
    if (error == 0) error = writer->append(writer, pack.ptr, pack.size, &stats);
    if (error == 0) error = writer->commit(writer, &stats);
    if (writer) writer->free(writer);
    git_odb_free(odb);
    git_buf_dispose(&pack);
    git_mempack_reset(backend);
    return error;
}

#include <zlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { loose_window = 256 * 1024 };

struct cgit2_loose_reader {
    int fd;
    z_stream zs;
    int finished;
    unsigned long long size, produced;
    /* Object bytes inflated together with the header, served first. */
    unsigned char pending[64];
    size_t pending_start, pending_end;
    unsigned char input[loose_window];
};

/* Refills the input window when it is empty; -1 on a read error, 0 at end of file. */
static int loose_fill(cgit2_loose_reader *r) {
    if (r->zs.avail_in > 0) return 1;
    for (;;) {
        ssize_t count = read(r->fd, r->input, sizeof r->input);
        if (count < 0 && errno == EINTR) continue;
        if (count < 0) return -1;
        r->zs.next_in = r->input;
        r->zs.avail_in = (uInt)count;
        return count > 0;
    }
}

/* Inflates into out[0..length); returns bytes produced or -1. */
static long loose_inflate(cgit2_loose_reader *r, unsigned char *out, size_t length) {
    r->zs.next_out = out;
    r->zs.avail_out = (uInt)(length > UINT32_MAX ? UINT32_MAX : length);
    while (r->zs.avail_out > 0 && !r->finished) {
        int filled = loose_fill(r);
        if (filled < 0) return -1;
        int status = inflate(&r->zs, Z_NO_FLUSH);
        if (status == Z_STREAM_END) { r->finished = 1; break; }
        if (status == Z_BUF_ERROR && filled == 0) return -1; /* truncated file */
        if (status != Z_OK && status != Z_BUF_ERROR) return -1;
    }
    return (long)(r->zs.next_out - out);
}

cgit2_loose_reader *cgit2_loose_open(const char *path, unsigned long long *size, int *error) {
    cgit2_loose_reader *r = calloc(1, sizeof *r);
    if (!r) { *error = ENOMEM; return NULL; }
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) { *error = errno; free(r); return NULL; }
    if (inflateInit(&r->zs) != Z_OK) { close(r->fd); free(r); *error = ENOMEM; return NULL; }
    long got = loose_inflate(r, r->pending, sizeof r->pending);
    unsigned char *nul = got > 0 ? memchr(r->pending, 0, (size_t)got) : NULL;
    if (!nul || got < 6 || memcmp(r->pending, "blob ", 5) != 0) { cgit2_loose_close(r); *error = -1; return NULL; }
    unsigned long long length = 0;
    for (unsigned char *p = r->pending + 5; p < nul; p++) {
        if (*p < '0' || *p > '9') { cgit2_loose_close(r); *error = -1; return NULL; }
        length = length * 10 + (unsigned long long)(*p - '0');
    }
    r->size = length;
    r->pending_start = (size_t)(nul + 1 - r->pending);
    r->pending_end = (size_t)got;
    *size = length;
    return r;
}

long cgit2_loose_read(cgit2_loose_reader *r, void *buffer, size_t length) {
    unsigned char *out = buffer;
    size_t done = 0;
    if (r->pending_start < r->pending_end && length > 0) {
        size_t count = r->pending_end - r->pending_start;
        if (count > length) count = length;
        memcpy(out, r->pending + r->pending_start, count);
        r->pending_start += count;
        done = count;
    }
    if (done < length && !r->finished) {
        long got = loose_inflate(r, out + done, length - done);
        if (got < 0) return -1;
        done += (size_t)got;
    }
    r->produced += done;
    if (r->produced > r->size) return -1;
    if (done == 0 && r->produced != r->size) return -1;
    return (long)done;
}

void cgit2_loose_close(cgit2_loose_reader *r) {
    if (!r) return;
    inflateEnd(&r->zs);
    close(r->fd);
    free(r);
}

static int cgit2_credentials(git_credential **out, const char *url, const char *username_from_url,
                             unsigned int allowed_types, void *payload) {
    (void)url;
    cgit2_auth *auth = payload;
    if (!auth) return GIT_PASSTHROUGH;
    auth->attempts++;
    if (auth->attempts > 1) {
        git_error_set_str(GIT_ERROR_NET, "the upstream refused the stored credential");
        return GIT_EAUTH;
    }
    if (auth->username && auth->password && (allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
        return git_credential_userpass_plaintext_new(out, auth->username, auth->password);
    if (allowed_types & GIT_CREDENTIAL_SSH_KEY)
        return git_credential_ssh_key_from_agent(out, username_from_url ? username_from_url
                                                      : (auth->username ? auth->username : "git"));
    if (allowed_types & GIT_CREDENTIAL_USERNAME)
        return git_credential_username_new(out, username_from_url ? username_from_url : "git");
    git_error_set_str(GIT_ERROR_NET, auth->username ? "the upstream does not accept this kind of credential"
                                                    : "the upstream needs a credential and none is stored");
    return GIT_EAUTH;
}

static int cgit2_transfer_progress(const git_indexer_progress *stats, void *payload) {
    cgit2_auth *auth = payload;
    if (!auth) return 0;
    auth->received_objects = stats->received_objects;
    return 0;
}

static int cgit2_push_update(const char *refname, const char *status, void *payload) {
    cgit2_auth *auth = payload;
    if (status && auth && !auth->rejected[0])
        snprintf(auth->rejected, sizeof auth->rejected, "%s: %s", refname, status);
    return 0;
}

static void cgit2_callbacks(git_remote_callbacks *callbacks, cgit2_auth *auth) {
    callbacks->credentials = cgit2_credentials;
    callbacks->transfer_progress = cgit2_transfer_progress;
    callbacks->push_update_reference = cgit2_push_update;
    callbacks->payload = auth;
}

int cgit2_remote_connect(git_remote *remote, git_direction direction, cgit2_auth *auth) {
    git_remote_callbacks callbacks = GIT_REMOTE_CALLBACKS_INIT;
    cgit2_callbacks(&callbacks, auth);
    git_proxy_options proxy = GIT_PROXY_OPTIONS_INIT;
    proxy.type = GIT_PROXY_AUTO;
    return git_remote_connect(remote, direction, &callbacks, &proxy, NULL);
}

int cgit2_remote_download(git_remote *remote, const char **refspecs, size_t count, cgit2_auth *auth) {
    git_fetch_options options = GIT_FETCH_OPTIONS_INIT;
    cgit2_callbacks(&options.callbacks, auth);
    options.proxy_opts.type = GIT_PROXY_AUTO;
    options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    git_strarray specs = { (char **)refspecs, count };
    return git_remote_download(remote, &specs, &options);
}

int cgit2_remote_push(git_remote *remote, const char **refspecs, size_t count, cgit2_auth *auth) {
    git_push_options options = GIT_PUSH_OPTIONS_INIT;
    cgit2_callbacks(&options.callbacks, auth);
    options.proxy_opts.type = GIT_PROXY_AUTO;
    git_strarray specs = { (char **)refspecs, count };
    return git_remote_push(remote, &specs, &options);
}
