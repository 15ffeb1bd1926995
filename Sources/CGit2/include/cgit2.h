#ifndef CGIT2_H
#define CGIT2_H
#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

/* git_libgit2_opts is variadic, which Swift cannot call: one wrapper per option used. */
int cgit2_enable_fsync(int enabled);
int cgit2_set_cache_max_size(long long bytes);
int cgit2_enable_strict_object_creation(int enabled);
int cgit2_set_cache_object_limit(git_object_t type, size_t bytes);
int cgit2_set_mwindow_limits(size_t window_size, size_t mapped_limit);
#endif

/* Routes every object written through `repo` into an in-memory pack until
   cgit2_mempack_flush writes it out as one packfile: 10,000 blobs cost one pack
   (and one fsync) instead of 10,000 loose files. Use on a throw-away handle:
   the backend cannot be detached from the odb again. `pack_config`, when not NULL, is a
   git config file added to this handle only (at the highest level), read by the pack
   builder that cgit2_mempack_flush runs. */
int cgit2_mempack_attach(git_repository *repo, git_odb_backend **backend, const char *pack_config);
int cgit2_mempack_flush(git_repository *repo, git_odb_backend *backend);

/* A loose blob read with read(2) and inflated a chunk at a time. libgit2 1.5's odb read
   stream mmaps the whole object file, so reading a 1 GiB blob maps (and counts in the
   process's RSS) 1 GiB; this keeps a fixed 256 KiB window. `path` is the object file
   (objects/xx/yyyy…). Returns NULL with *error = an errno value (ENOENT: not loose, e.g.
   packed) or -1 (not a well-formed loose blob). */
typedef struct cgit2_loose_reader cgit2_loose_reader;
cgit2_loose_reader *cgit2_loose_open(const char *path, unsigned long long *size, int *error);
/* Bytes inflated into `buffer` (> 0), 0 at the end, -1 on a read or inflate error
   (including data longer or shorter than the header says). */
long cgit2_loose_read(cgit2_loose_reader *reader, void *buffer, size_t length);
void cgit2_loose_close(cgit2_loose_reader *reader);

/* Remotes (fetch and push). libgit2 asks for credentials and reports per-ref push results
   through C callbacks with a payload; these wrappers supply them. `auth` may be NULL (a
   public upstream). A credential is offered once: when the server refuses it, libgit2 asks
   again and the callback fails with GIT_EAUTH instead of looping. Over ssh without a
   stored password the ssh agent is asked. */
typedef struct cgit2_auth {
    const char *username;   /* NULL: no stored credential */
    const char *password;
    int attempts;           /* set by the callbacks */
    /* set by the push callback: the first ref the server refused and its reason */
    char rejected[512];
    unsigned int received_objects;  /* set by the transfer progress callback */
} cgit2_auth;

int cgit2_remote_connect(git_remote *remote, git_direction direction, cgit2_auth *auth);
/* Downloads (and indexes) the objects `refspecs` need, updating no reference. */
int cgit2_remote_download(git_remote *remote, const char **refspecs, size_t count, cgit2_auth *auth);
int cgit2_remote_push(git_remote *remote, const char **refspecs, size_t count, cgit2_auth *auth);
