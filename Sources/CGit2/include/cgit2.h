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
#endif

/* Routes every object written through `repo` into an in-memory pack until
   cgit2_mempack_flush writes it out as one packfile: 10,000 blobs cost one pack
   (and one fsync) instead of 10,000 loose files. Use on a throw-away handle:
   the backend cannot be detached from the odb again. */
int cgit2_mempack_attach(git_repository *repo, git_odb_backend **backend);
int cgit2_mempack_flush(git_repository *repo, git_odb_backend *backend);
