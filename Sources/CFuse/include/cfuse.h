#ifndef CFUSE_H
#define CFUSE_H
/* Must precede the libfuse include; a module map cannot define it.
   Debian 12 ships libfuse 3.14, the floor this project supports. */
#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

/* fuse_session_new and fuse_session_loop_mt become macros in newer libfuse;
   Swift only ever calls these wrappers. */
struct fuse_session *cfuse_session_new(struct fuse_args *args,
                                       const struct fuse_lowlevel_ops *ops,
                                       void *userdata);
int cfuse_session_loop_mt(struct fuse_session *session, unsigned int max_idle_threads,
                          int clone_fd);
/* Sets capability bits directly: 3.14 has no fuse_set_feature_flag. */
void cfuse_conn_want(struct fuse_conn_info *conn, unsigned int flags);
unsigned int cfuse_version(void);

/* Linux calls glibc only declares under _GNU_SOURCE, which Swift's Glibc module
   does not define. */
int cfuse_fallocate(int fd, int mode, long long offset, long long length);
/* FALLOC_FL_KEEP_SIZE: reserve blocks without changing the file's size. */
int cfuse_falloc_keep_size(void);
/* glibc's malloc tuning (malloc.h, not in Swift's Glibc module). */
void cfuse_malloc_arenas(int count);
void cfuse_malloc_trim(void);
/* The uid and gid of the process behind a request (fuse_req_ctx). */
void cfuse_req_caller(fuse_req_t req, unsigned int *uid, unsigned int *gid);
long long cfuse_copy_file_range(int in_fd, int out_fd, unsigned long long length);

/* A session from a comma-separated -o option string (the args are copied). */
struct fuse_session *cfuse_session_new_options(const char *options, const struct fuse_lowlevel_ops *ops,
                                               void *userdata);
/* Replies to a read with `size` bytes of `fd` at `pos`: libfuse preads (or splices)
   them, so the bytes never pass through Swift. */
int cfuse_reply_fd(fuse_req_t req, int fd, long long pos, size_t size);
/* fuse_file_info bitfields, which Swift imports unreliably. */
void cfuse_fi_set_cache(struct fuse_file_info *fi, int keep_cache, int direct_io);
void cfuse_conn_set_sizes(struct fuse_conn_info *conn, unsigned int max_write, unsigned int max_readahead);
#endif
