import RPC

/// One MCP tool: a mesad method whose params are the tool's arguments, unchanged.
public struct MCPTool: Sendable {
    public let name: String
    public let title: String
    public let description: String
    /// The mesad JSON-RPC method it calls (see protocol.md).
    public let method: String
    public let inputSchema: JSONValue
    public let readOnly: Bool

    public var listing: JSONValue {
        .object([
            "name": .string(name), "title": .string(title), "description": .string(description),
            "inputSchema": inputSchema,
            "annotations": .object(["readOnlyHint": .bool(readOnly), "openWorldHint": false]),
        ])
    }
}

/// JSON Schema helpers for the catalogue.
enum Schema {
    static func object(_ properties: [String: JSONValue], required: [String] = []) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "object", "properties": .object(properties), "additionalProperties": false]
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        return .object(schema)
    }

    static func string(_ description: String, oneOf values: [String]? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "string", "description": .string(description)]
        if let values { schema["enum"] = .array(values.map(JSONValue.string)) }
        return .object(schema)
    }

    static func integer(_ description: String, minimum: Int, maximum: Int) -> JSONValue {
        .object(["type": "integer", "description": .string(description), "minimum": .int(minimum), "maximum": .int(maximum)])
    }

    static func boolean(_ description: String) -> JSONValue {
        .object(["type": "boolean", "description": .string(description)])
    }

    static func strings(_ description: String, oneOf values: [String]? = nil) -> JSONValue {
        var items: [String: JSONValue] = ["type": "string"]
        if let values { items["enum"] = .array(values.map(JSONValue.string)) }
        return .object(["type": "array", "description": .string(description), "items": .object(items)])
    }

    static let org = string("Organization; may be omitted when mesad serves exactly one.")
    static let mountId = string("Mount id from list_mounts: \"org/repo\" for a repo in the daemon tree, or the mount's absolute path.")
    static let path = string("Any absolute path inside the mount (for example the current working directory); alternative to mountId.")
    static let repo = string("Repository name (used with org when no mount is given).")
    static let cursor = string("Cursor from a previous page's nextCursor.")
    static let limit = integer("Page size.", minimum: 1, maximum: 100)

    /// mountId / path: which mount.
    static let mountSelector: [String: JSONValue] = ["mountId": mountId, "path": path]
    /// A mount, or org + repo.
    static let repoSelector: [String: JSONValue] = ["mountId": mountId, "path": path, "org": org, "repo": repo]

    static func merged(_ parts: [String: JSONValue]...) -> [String: JSONValue] {
        parts.reduce(into: [:]) { result, part in result.merge(part) { _, new in new } }
    }
}

extension MCPTool {
    /// Every tool mesad offers.
    public static let catalogue: [MCPTool] = [
        MCPTool(name: "list_repos", title: "List repositories",
                description: "List the repositories of an organization that mesad's key can see (name, id, default bookmark, head change).",
                method: "listRepos", inputSchema: Schema.object(["org": Schema.org, "cursor": Schema.cursor, "limit": Schema.limit]),
                readOnly: true),
        MCPTool(name: "create_repo", title: "Create a repository",
                description: "Create an empty repository; its default bookmark starts at the empty root change. Mount it with the mount tool.",
                method: "createRepo",
                inputSchema: Schema.object(["org": Schema.org, "name": Schema.string("Repository name: letters, digits, '.', '_' or '-', up to 100."),
                                            "defaultBookmark": Schema.string("Default bookmark name (main).")], required: ["name"]),
                readOnly: false),
        MCPTool(name: "create_ephemeral_key", title: "Create a short-lived API key",
                description: "Create an API key that expires (default in 3600 s), optionally limited to some repos and scopes, e.g. for a sandbox. The secret is returned once, in 'key'; never write it into a repository.",
                method: "createEphemeralKey",
                inputSchema: Schema.object([
                    "org": Schema.org, "name": Schema.string("A name for the key."),
                    "scopes": Schema.strings("Scopes (default read and write).", oneOf: ["read", "write", "admin"]),
                    "expiresInSeconds": Schema.integer("Lifetime in seconds.", minimum: 100, maximum: 31_536_000),
                    "repos": Schema.strings("Limit the key to these repositories (names or ids)."),
                ]), readOnly: false),
        MCPTool(name: "mount", title: "Mount a repository",
                description: "Mount a repository as a directory. Without 'path' it appears in the daemon tree at <mount-point>/<org>/<repo>; with 'path' it is mounted there on its own (needed for 'at', 'branchedFrom' and mode 'ro'). Without 'repo', mounts the whole tree. Returns the mount id and path.",
                method: "mount",
                inputSchema: Schema.object([
                    "org": Schema.org, "repo": Schema.string("Repository to mount; omitted: the daemon tree of every repo."),
                    "path": Schema.string("Absolute directory to mount the repo at (created if missing)."),
                    "mode": Schema.string("rw (default) or ro.", oneOf: ["rw", "ro"]),
                    "at": Schema.object(["bookmark": Schema.string("Bookmark to show and move on checkpoint."),
                                         "changeId": Schema.string("Change to edit in place.")]),
                    "branchedFrom": Schema.object([
                        "bookmark": Schema.string("Parent bookmark (default: the repo's default)."),
                        "changeId": Schema.string("Parent change."),
                        "as": Schema.object(["bookmark": Schema.string("Bookmark to create on the new change."),
                                             "describe": Schema.string("Description of the new change.")]),
                    ]),
                ]), readOnly: false),
        MCPTool(name: "unmount", title: "Unmount", description: "Unmount a mount after uploading its pending writes. Neither argument: the daemon tree.",
                method: "unmount", inputSchema: Schema.object(Schema.mountSelector), readOnly: false),
        MCPTool(name: "list_mounts", title: "List mounts", description: "List what mesad has mounted: ids, paths, repos, modes, bookmarks.",
                method: "listMounts", inputSchema: Schema.object([:]), readOnly: true),
        MCPTool(name: "status", title: "Mount status",
                description: "Status of a mount (or of every repo mount): bookmark, base and working change, files not uploaded yet, last upload error.",
                method: "status", inputSchema: Schema.object(Schema.mountSelector), readOnly: true),
        MCPTool(name: "flush", title: "Upload pending writes", description: "Upload a mount's pending writes into its working change now, and return its status.",
                method: "flush", inputSchema: Schema.object(Schema.mountSelector), readOnly: false),
        MCPTool(name: "checkpoint", title: "Checkpoint",
                description: "Save the work of a mount: upload pending writes, describe the working change with 'message', move the mount's bookmark onto it. The next write starts a new change.",
                method: "checkpoint",
                inputSchema: Schema.object(Schema.merged(Schema.mountSelector, ["message": Schema.string("Description of the change, like a commit message.")])),
                readOnly: false),
        MCPTool(name: "list_changes", title: "List changes", description: "List changes newest first, reachable from a bookmark (default: the mount's bookmark).",
                method: "listChanges",
                inputSchema: Schema.object(Schema.merged(Schema.repoSelector, ["bookmark": Schema.string("Bookmark to start from."),
                                                                               "cursor": Schema.cursor, "limit": Schema.limit])),
                readOnly: true),
        MCPTool(name: "diff", title: "Diff", description: "Line diff between two revisions (bookmarks or change ids). Defaults: head = the mount's current change, base = head's parent.",
                method: "diff",
                inputSchema: Schema.object(Schema.merged(Schema.repoSelector, ["base": Schema.string("Base revision."), "head": Schema.string("Head revision.")])),
                readOnly: true),
        MCPTool(name: "show", title: "Show a change", description: "A change's description, files and diff against its parent. 'rev' is a bookmark or change id; default: the mount's current change.",
                method: "show", inputSchema: Schema.object(Schema.merged(Schema.repoSelector, ["rev": Schema.string("Bookmark or change id.")])),
                readOnly: true),
        MCPTool(name: "list_bookmarks", title: "List bookmarks", description: "List a repository's bookmarks and the changes they point at.",
                method: "listBookmarks", inputSchema: Schema.object(Schema.merged(Schema.repoSelector, ["cursor": Schema.cursor, "limit": Schema.limit])),
                readOnly: true),
        MCPTool(name: "create_bookmark", title: "Create a bookmark", description: "Create a bookmark at a change (default: the mount's current change).",
                method: "createBookmark",
                inputSchema: Schema.object(Schema.merged(Schema.repoSelector, ["name": Schema.string("New bookmark name."),
                                                                               "changeId": Schema.string("Change id or bookmark to point at.")]),
                                           required: ["name"]),
                readOnly: false),
        MCPTool(name: "move_bookmark", title: "Move a bookmark", description: "Move a bookmark to another change; only forward in history unless allowBackwards.",
                method: "moveBookmark",
                inputSchema: Schema.object(Schema.merged(Schema.repoSelector, ["name": Schema.string("Bookmark to move."),
                                                                               "changeId": Schema.string("Change id or bookmark to move it to."),
                                                                               "allowBackwards": Schema.boolean("Allow moving to a change that is not a descendant.")]),
                                           required: ["name", "changeId"]),
                readOnly: false),
    ]
}
