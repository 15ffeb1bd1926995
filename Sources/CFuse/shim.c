#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <stddef.h>
#include "cfuse.h"

struct fuse_session *cfuse_session_new(struct fuse_args *args,
                                       const struct fuse_lowlevel_ops *ops,
                                       void *userdata) {
    return fuse_session_new(args, ops, sizeof(struct fuse_lowlevel_ops), userdata);
}

int cfuse_session_loop_mt(struct fuse_session *session, unsigned int max_idle_threads,
                          int clone_fd) {
    struct fuse_loop_config *config = fuse_loop_cfg_create();
    if (config == NULL) return -1;
    fuse_loop_cfg_set_max_threads(config, max_idle_threads);
    fuse_loop_cfg_set_clone_fd(config, clone_fd);
    int result = fuse_session_loop_mt(session, config);
    fuse_loop_cfg_destroy(config);
    return result;
}

void cfuse_conn_want(struct fuse_conn_info *conn, unsigned int flags) {
    conn->want |= (flags & conn->capable);
}

unsigned int cfuse_version(void) { return (unsigned int)fuse_version(); }

int cfuse_fallocate(int fd, int mode, long long offset, long long length) {
    return fallocate(fd, mode, (off_t)offset, (off_t)length);
}

long long cfuse_copy_file_range(int in_fd, int out_fd, unsigned long long length) {
    return (long long)copy_file_range(in_fd, NULL, out_fd, NULL, (size_t)length, 0);
}
