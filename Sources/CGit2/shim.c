#include "cgit2.h"

int cgit2_enable_fsync(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, enabled);
}

int cgit2_set_cache_max_size(long long bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)bytes);
}

int cgit2_set_cache_object_limit(git_object_t type, size_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, type, bytes);
}

int cgit2_enable_strict_object_creation(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, enabled);
}

int cgit2_mempack_attach(git_repository *repo, git_odb_backend **backend) {
    git_odb *odb = NULL;
    int error = git_repository_odb(&odb, repo);
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
