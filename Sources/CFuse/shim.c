#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <malloc.h>
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

int cfuse_falloc_keep_size(void) { return FALLOC_FL_KEEP_SIZE; }

void cfuse_malloc_arenas(int count) { mallopt(M_ARENA_MAX, count); }

void cfuse_malloc_trim(void) { malloc_trim(0); }

void cfuse_req_caller(fuse_req_t req, unsigned int *uid, unsigned int *gid) {
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    *uid = ctx ? ctx->uid : 0;
    *gid = ctx ? ctx->gid : 0;
}

long long cfuse_copy_file_range(int in_fd, int out_fd, unsigned long long length) {
    return (long long)copy_file_range(in_fd, NULL, out_fd, NULL, (size_t)length, 0);
}

struct fuse_session *cfuse_session_new_options(const char *options, const struct fuse_lowlevel_ops *ops,
                                               void *userdata) {
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    if (fuse_opt_add_arg(&args, "mesad") != 0 || fuse_opt_add_arg(&args, "-o") != 0 ||
        fuse_opt_add_arg(&args, options) != 0) {
        fuse_opt_free_args(&args);
        return NULL;
    }
    struct fuse_session *session = fuse_session_new(&args, ops, sizeof(struct fuse_lowlevel_ops), userdata);
    fuse_opt_free_args(&args);
    return session;
}

int cfuse_reply_fd(fuse_req_t req, int fd, long long pos, size_t size) {
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    buf.buf[0].fd = fd;
    buf.buf[0].pos = (off_t)pos;
    return fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void cfuse_fi_set_cache(struct fuse_file_info *fi, int keep_cache, int direct_io) {
    fi->keep_cache = keep_cache ? 1 : 0;
    fi->direct_io = direct_io ? 1 : 0;
}

void cfuse_conn_set_sizes(struct fuse_conn_info *conn, unsigned int max_write, unsigned int max_readahead) {
    conn->max_write = max_write;
    /* The kernel's offer is the ceiling. */
    if (max_readahead < conn->max_readahead) conn->max_readahead = max_readahead;
}
