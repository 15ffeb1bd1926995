"""Conformance: every endpoint mesa-server implements, called through the generated client
of the official `mesa-rest==0.47.3` package. Each response must parse into the model that
version declares for its status code, with no field the model does not know (a misspelt or
extra field lands in `additional_properties`), and carry the values the call implies.
"""

import base64
import os
import subprocess
import time

import attrs
import pytest
from mesa_rest import errors
from mesa_rest.api.bookmark import (create_bookmark, delete_bookmark, get_bookmark, list_bookmarks, merge_bookmark,
                                    move_bookmark)
from mesa_rest.api.change import create_change, get_change, get_diff, list_changes, update_change
from mesa_rest.api.content import get_content
from mesa_rest.api.org import create_api_key, get_org, list_api_keys, revoke_api_key, update_api_key, whoami
from mesa_rest.api.repo import (bulk_update_repo_tags, create_repo, delete_repo, get_repo, get_repo_upstream_sync,
                                list_repo_upstream_syncs, list_repos, sync_upstream, update_repo)
from mesa_rest.api.webhook_target import (create_webhook_target, delete_webhook_target, get_webhook_target,
                                          list_webhook_targets, update_webhook_target)
from mesa_rest.client import AuthenticatedClient
from mesa_rest.models import (BulkUpdateRepoTagsBody, ListApiKeysStatus, CreateApiKeyBody, CreateBookmarkBody, CreateChangeBody,
                              CreateRepoBody, CreateWebhookTargetBody, MergeBookmarkBody, MoveBookmarkBody, SyncUpstreamBody,
                              UpdateApiKeyBody, UpdateChangeBody, UpdateRepoBody, UpdateWebhookTargetBody)

VIRTUAL_ROOT = "z" * 32
# Models whose additional_properties *are* their content (free-form maps).
FREE_FORM = ("Tags", "Metadata", "Details")


def unknown_fields(model, where="response"):
    """Every field of `model` (recursively) that its generated class does not declare."""
    found = []
    if attrs.has(type(model)):
        extra = getattr(model, "additional_properties", {})
        if extra and not type(model).__name__.endswith(FREE_FORM):
            found += [f"{where}.{key}" for key in extra]
        for field in attrs.fields(type(model)):
            if field.name != "additional_properties":
                found += unknown_fields(getattr(model, field.name), f"{where}.{field.name}")
    elif isinstance(model, list):
        for index, item in enumerate(model):
            found += unknown_fields(item, f"{where}[{index}]")
    return found


def check(response, status, model_name):
    """The response has `status`, parses into `model_name` and has no unknown fields."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    parsed = response.parsed
    assert parsed is not None, f"no model for status {status}: {response.content[:300]}"
    assert type(parsed).__name__ == model_name, (type(parsed).__name__, response.content[:300])
    assert unknown_fields(parsed) == []
    return parsed


def b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def client(mesa_server):
    with AuthenticatedClient(base_url=mesa_server.base_url, token=mesa_server.admin_key,
                             raise_on_unexpected_status=True) as client:
        yield client


def test_every_implemented_endpoint_parses(mesa_server, client):
    org = mesa_server.org

    me = check(whoami.sync_detailed(client=client), 200, "WhoamiResponse200")
    assert me.org.slug == org and "admin" in me.scopes

    repo = check(create_repo.sync_detailed(org, client=client, body=CreateRepoBody.from_dict(
        {"name": "conformance", "default_bookmark": "main"})), 201, "CreateRepoResponse201")
    assert repo.name == "conformance" and repo.head_change_id == VIRTUAL_ROOT
    info = check(get_org.sync_detailed(org, client=client), 200, "GetOrgResponse200")
    assert info.num_repos == 1
    check(get_repo.sync_detailed(org, "conformance", client=client), 200, "GetRepoResponse200")
    listed = check(list_repos.sync_detailed(org, client=client, limit=10), 200, "ListReposResponse200")
    assert [r.name for r in listed.repos] == ["conformance"] and listed.has_more is False
    updated = check(update_repo.sync_detailed(org, "conformance", client=client, body=UpdateRepoBody.from_dict(
        {"tags": {"team": "agents"}})), 200, "UpdateRepoResponse200")
    assert updated.tags.additional_properties == {"team": "agents"}
    bulk = check(bulk_update_repo_tags.sync_detailed(org, client=client, body=BulkUpdateRepoTagsBody.from_dict(
        {"repo_ids": [repo.id], "action": "set", "key": "env", "value": "test"})), 200, "BulkUpdateRepoTagsResponse200")
    assert bulk.updated == 1

    first = check(create_change.sync_detailed(org, "conformance", client=client, body=CreateChangeBody.from_dict({
        "base_change_id": VIRTUAL_ROOT, "message": "first",
        "files": [{"path": "README.md", "content": b64("hello\n"), "action": "upsert"},
                  {"path": "bin/run", "content": b64("#!/bin/sh\n"), "mode": "100755"}]})),
        201, "CreateChangeResponse201")
    assert first.message == "first" and len(first.id) == 32
    check(move_bookmark.sync_detailed(org, "conformance", "main", client=client, body=MoveBookmarkBody.from_dict(
        {"change_id": first.id})), 200, "MoveBookmarkResponse200")
    second = check(create_change.sync_detailed(org, "conformance", client=client, body=CreateChangeBody.from_dict({
        "base_change_id": first.id, "message": "second",
        "files": [{"path": "README.md", "content": b64("hello\nworld\n")}, {"path": "bin/run", "action": "delete"}]})),
        201, "CreateChangeResponse201")
    patched = check(update_change.sync_detailed(org, "conformance", second.id, client=client,
                                                body=UpdateChangeBody.from_dict({"message": "second, reworded"})),
                    200, "UpdateChangeResponse200")
    assert patched.id == second.id and patched.message == "second, reworded"
    detail = check(get_change.sync_detailed(org, "conformance", second.id, client=client), 200, "GetChangeResponse200")
    assert sorted(detail.files) == ["README.md", "bin/run"]
    check(list_changes.sync_detailed(org, "conformance", client=client, bookmark="main"), 200, "ListChangesResponse200")

    root = check(get_content.sync_detailed(org, "conformance", client=client, change_id=first.id, depth=2),
                 200, "GetContentResponse200Type2")
    assert root.type_ == "dir" and sorted(e.path for e in root.entries) == ["README.md", "bin", "bin/run"]
    readme = check(get_content.sync_detailed(org, "conformance", client=client, change_id=second.id, path="README.md"),
                   200, "GetContentResponse200Type0")
    assert base64.b64decode(readme.content) == b"hello\nworld\n"

    diff = check(get_diff.sync_detailed(org, "conformance", client=client, base_change_id=first.id,
                                        head_change_id=second.id), 200, "GetDiffResponse200")
    assert {e.path: e.status for e in diff.entries} == {"README.md": "modified", "bin/run": "deleted"}

    check(create_bookmark.sync_detailed(org, "conformance", client=client, body=CreateBookmarkBody.from_dict(
        {"name": "feature/x", "change_id": second.id})), 201, "CreateBookmarkResponse201")
    got = check(get_bookmark.sync_detailed(org, "conformance", "feature/x", client=client), 200,
                "GetBookmarkResponse200")
    assert got.change_id == second.id and got.is_default is False
    marks = check(list_bookmarks.sync_detailed(org, "conformance", client=client, glob="feature/*"), 200,
                  "ListBookmarksResponse200")
    assert [b.name for b in marks.bookmarks] == ["feature/x"]
    merged = check(merge_bookmark.sync_detailed(org, "conformance", client=client, body=MergeBookmarkBody.from_dict(
        {"target": "main", "source": "feature/x", "delete_source": True})), 200, "MergeBookmarkResponse200")
    assert merged.source_deleted is True and merged.target == "main"
    check(delete_bookmark.sync_detailed(org, "conformance", "main-copy-missing", client=client), 404,
          "DeleteBookmarkResponse404")

    key = check(create_api_key.sync_detailed(org, client=client, body=CreateApiKeyBody.from_dict(
        {"name": "agent", "scopes": ["read", "write"], "repo_ids": [repo.id], "expires_in_seconds": 3600})),
        201, "CreateApiKeyResponse201")
    assert key.key.startswith("mesa_")
    keys = check(list_api_keys.sync_detailed(org, client=client, status=ListApiKeysStatus.ACTIVE), 200, "ListApiKeysResponse200")
    assert key.id in [k.id for k in keys.api_keys]
    tags = check(update_api_key.sync_detailed(org, key.id, client=client, body=UpdateApiKeyBody.from_dict(
        {"tags": {"owner": "ci"}})), 200, "UpdateApiKeyResponse200")
    assert tags.tags.additional_properties == {"owner": "ci"}
    check(revoke_api_key.sync_detailed(org, key.id, client=client), 200, "RevokeApiKeyResponse200")

    check(delete_repo.sync_detailed(org, "conformance", client=client), 200, "DeleteRepoResponse200")
    check(get_repo.sync_detailed(org, "conformance", client=client), 404, "GetRepoResponse404")


def test_errors_parse_into_the_declared_envelopes(mesa_server, client):
    org = mesa_server.org
    missing = check(get_repo.sync_detailed(org, "nope", client=client), 404, "GetRepoResponse404")
    assert missing.error.code == "NOT_FOUND" and "nope" in missing.error.message
    bad = check(create_repo.sync_detailed(org, client=client, body=CreateRepoBody.from_dict({"name": "../x"})),
                400, "CreateRepoResponse400")
    assert bad.error.message
    with AuthenticatedClient(base_url=mesa_server.base_url, token="mesa_not_a_key") as stranger:
        denied = check(whoami.sync_detailed(client=stranger), 401, "WhoamiResponse401")
        assert denied.error.code
    check(create_repo.sync_detailed(org, client=client, body=CreateRepoBody.from_dict({"name": "twice"})), 201,
          "CreateRepoResponse201")
    again = check(create_repo.sync_detailed(org, client=client, body=CreateRepoBody.from_dict({"name": "twice"})),
                  409, "CreateRepoResponse409")
    assert "twice" in again.error.message


def test_webhook_targets_parse(mesa_server, client):
    org = mesa_server.org
    repo = check(create_repo.sync_detailed(org, client=client, body=CreateRepoBody.from_dict({"name": "hooked"})), 201,
                 "CreateRepoResponse201")
    created = check(create_webhook_target.sync_detailed(org, client=client, body=CreateWebhookTargetBody.from_dict(
        {"url": "https://hooks.example.com/mesa", "name": "ci", "events": ["push", "bookmark.moved"],
         "repo_ids": [repo.id]})), 201, "CreateWebhookTargetResponse201")
    assert created.secret.startswith("whsec_") and created.name == "ci" and created.repo_ids == [repo.id]
    assert [e.value for e in created.events] == ["push", "bookmark.moved"]
    everything = check(create_webhook_target.sync_detailed(org, client=client, body=CreateWebhookTargetBody.from_dict(
        {"url": "http://127.0.0.1:9/other"})), 201, "CreateWebhookTargetResponse201")
    assert everything.name is None and everything.repo_ids is None and len(everything.events) == 14

    got = check(get_webhook_target.sync_detailed(org, created.id, client=client), 200, "GetWebhookTargetResponse200")
    assert got.url == "https://hooks.example.com/mesa" and not hasattr(got, "secret")
    page = check(list_webhook_targets.sync_detailed(org, client=client, limit=1), 200, "ListWebhookTargetsResponse200")
    assert [t.id for t in page.webhook_targets] == [created.id] and page.has_more is True and page.next_cursor
    rest = check(list_webhook_targets.sync_detailed(org, client=client, limit=1, cursor=page.next_cursor), 200,
                 "ListWebhookTargetsResponse200")
    assert [t.id for t in rest.webhook_targets] == [everything.id] and rest.has_more is False

    updated = check(update_webhook_target.sync_detailed(org, created.id, client=client, body=UpdateWebhookTargetBody.from_dict(
        {"name": None, "repo_ids": None, "events": ["repo.deleted"]})), 200, "UpdateWebhookTargetResponse200")
    assert updated.name is None and updated.repo_ids is None and [e.value for e in updated.events] == ["repo.deleted"]
    assert updated.url == created.url

    bad = check(create_webhook_target.sync_detailed(org, client=client, body=CreateWebhookTargetBody.from_dict(
        {"url": "ftp://hooks.example.com/x"})), 400, "CreateWebhookTargetResponse400")
    assert "http" in bad.error.message
    bad_patch = check(update_webhook_target.sync_detailed(org, created.id, client=client,
                                                          body=UpdateWebhookTargetBody.from_dict({"url": "nope"})),
                      400, "UpdateWebhookTargetResponse400")
    assert bad_patch.error.code == "INVALID_ARGUMENT"

    check(delete_webhook_target.sync_detailed(org, created.id, client=client), 200, "DeleteWebhookTargetResponse200")
    check(get_webhook_target.sync_detailed(org, created.id, client=client), 404, "GetWebhookTargetResponse404")
    check(delete_webhook_target.sync_detailed(org, created.id, client=client), 404, "DeleteWebhookTargetResponse404")

    writer = check(create_api_key.sync_detailed(org, client=client, body=CreateApiKeyBody.from_dict(
        {"name": "writer", "scopes": ["read", "write"], "expires_in_seconds": 3600})), 201, "CreateApiKeyResponse201")
    with AuthenticatedClient(base_url=mesa_server.base_url, token=writer.key) as weak:
        denied = check(list_webhook_targets.sync_detailed(org, client=weak), 403, "ListWebhookTargetsResponse403")
        assert "admin" in denied.error.message



def make_upstream(root):
    """A bare git repository with two commits on main and a tag, made with the git CLI."""
    env = {**os.environ, "HOME": str(root), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Ada",
           "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}
    bare, work = root / "up.git", root / "up-work"
    def git(*args, cwd=None):
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True,
                              timeout=60).stdout.strip()
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("init", "-q", "-b", "main", str(work))
    for index in range(2):
        (work / f"file{index}.txt").write_text(f"{index}\n")
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"commit {index}", cwd=work)
    git("tag", "v1", cwd=work)
    git("push", "-q", str(bare), "main", "v1", cwd=work)
    return bare, git("rev-parse", "HEAD", cwd=work)


def test_upstream_syncs_parse_and_run(mesa_server, client, tmp_root):
    org = mesa_server.org
    bare, head = make_upstream(tmp_root)
    repo = check(create_repo.sync_detailed(org, client=client, body=CreateRepoBody.from_dict(
        {"name": "mirror", "upstream": {"url": f"file://{bare}", "auth": {"kind": "token", "token": "tok-secret"}}})),
        201, "CreateRepoResponse201")
    assert repo.upstream.url == f"file://{bare}" and repo.upstream.auth_kind == "token"
    assert repo.upstream.latest_sync is None

    queued = check(sync_upstream.sync_detailed(org, "mirror", client=client, body=SyncUpstreamBody.from_dict(
        {"direction": "pull", "ref_globs": {"branches": "*", "tags": "v*"}})), 201, "SyncUpstreamResponse201")
    assert queued.status.value in ("queued", "in_progress", "completed") and queued.direction.value == "pull"
    deadline = time.monotonic() + 60
    while True:
        done = check(get_repo_upstream_sync.sync_detailed(org, "mirror", queued.id, client=client), 200,
                     "GetRepoUpstreamSyncResponse200")
        if done.status.value in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert done.status.value == "completed", done.error
    assert done.attempt == 1 and done.error is None and done.finished_at is not None
    refs = {ref.name: ref for ref in done.stats.refs}
    assert refs["refs/heads/main"].after == head and refs["refs/heads/main"].outcome.value == "updated"
    assert refs["refs/tags/v1"].outcome.value == "updated"

    listed = check(list_repo_upstream_syncs.sync_detailed(org, "mirror", client=client, limit=10), 200,
                   "ListRepoUpstreamSyncsResponse200")
    assert [s.id for s in listed.syncs] == [queued.id] and listed.has_more is False
    got = check(get_repo.sync_detailed(org, "mirror", client=client), 200, "GetRepoResponse200")
    assert got.upstream.latest_sync.id == queued.id
    updated = check(update_repo.sync_detailed(org, "mirror", client=client, body=UpdateRepoBody.from_dict(
        {"upstream": {"url": f"file://{bare}", "auth": None}})), 200, "UpdateRepoResponse200")
    assert updated.upstream.auth_kind is None
    removed = check(update_repo.sync_detailed(org, "mirror", client=client, body=UpdateRepoBody.from_dict(
        {"upstream": None})), 200, "UpdateRepoResponse200")
    assert removed.upstream is None
    # Without an upstream a sync is refused with a clear 400.
    refused = check(sync_upstream.sync_detailed(org, "mirror", client=client, body=SyncUpstreamBody.from_dict(
        {"direction": "push"})), 400, "SyncUpstreamResponse400")
    assert "upstream" in refused.error.message

