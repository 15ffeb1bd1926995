import MesaProtocol
import RPC

/// One MCP tool: a mesad method whose params are the tool's arguments, unchanged. The
/// method's name and the input schema come from the method's type: the schema is the
/// merge of what each part of its params (`MountSelector`, `PageRequest`, its own
/// fields) describes, so a tool cannot name a method or a selector that does not exist.
public struct MCPTool: Sendable {
    public let name: String
    public let title: String
    public let description: String
    /// The mesad JSON-RPC method it calls (see protocol.md).
    public let method: String
    public let inputSchema: JSONValue
    public let readOnly: Bool
    /// Decodes arguments as the method's params and encodes them again: what the daemon
    /// reads of them (a property that is no param disappears). For tests.
    public let asParams: @Sendable (JSONValue) throws -> JSONValue

    init<M: MesaMethod>(_ method: M.Type, name: String, title: String, description: String, readOnly: Bool)
    where M.Params: ToolInput {
        self.name = name
        self.title = title
        self.description = description
        self.method = M.name
        self.readOnly = readOnly
        inputSchema = Schema.object(M.Params.properties, required: M.Params.required)
        asParams = { arguments in try JSONValue(encoding: try arguments.decode(M.Params.self)) }
    }

    public var listing: JSONValue {
        .object([
            "name": .string(name), "title": .string(title), "description": .string(description),
            "inputSchema": inputSchema,
            "annotations": .object(["readOnlyHint": .bool(readOnly), "openWorldHint": false]),
        ])
    }
}

extension MCPTool {
    /// Every tool mesad offers.
    public static let catalogue: [MCPTool] = [
        MCPTool(ListRepos.self, name: "list_repos", title: "List repositories",
                description: "List the repositories of an organization that mesad's key can see (name, id, default bookmark, head change).",
                readOnly: true),
        MCPTool(CreateRepo.self, name: "create_repo", title: "Create a repository",
                description: "Create an empty repository; its default bookmark starts at the empty root change. Mount it with the mount tool.",
                readOnly: false),
        MCPTool(CreateEphemeralKey.self, name: "create_ephemeral_key", title: "Create a short-lived API key",
                description: "Create an API key that expires (default in 3600 s), optionally limited to some repos and scopes, e.g. for a sandbox. The secret is returned once, in 'key'; never write it into a repository.",
                readOnly: false),
        MCPTool(MountMethod.self, name: "mount", title: "Mount a repository",
                description: "Mount a repository as a directory. Without 'path' it appears in the daemon tree at <mount-point>/<org>/<repo>; with 'path' it is mounted there on its own (needed for 'at', 'branchedFrom' and mode 'ro'). Without 'repo', mounts the whole tree. Returns the mount id and path.",
                readOnly: false),
        MCPTool(UnmountMethod.self, name: "unmount", title: "Unmount",
                description: "Unmount a mount after uploading its pending writes. Neither argument: the daemon tree.", readOnly: false),
        MCPTool(ListMounts.self, name: "list_mounts", title: "List mounts",
                description: "List what mesad has mounted: ids, paths, repos, modes, bookmarks.", readOnly: true),
        MCPTool(MountStatusMethod.self, name: "status", title: "Mount status",
                description: "Status of a mount (or of every repo mount): bookmark, base and working change, files not uploaded yet, last upload error.",
                readOnly: true),
        MCPTool(Flush.self, name: "flush", title: "Upload pending writes",
                description: "Upload a mount's pending writes into its working change now, and return its status.", readOnly: false),
        MCPTool(Checkpoint.self, name: "checkpoint", title: "Checkpoint",
                description: "Save the work of a mount: upload pending writes, describe the working change with 'message', move the mount's bookmark onto it. The next write starts a new change.",
                readOnly: false),
        MCPTool(ListChanges.self, name: "list_changes", title: "List changes",
                description: "List changes newest first, reachable from a bookmark (default: the mount's bookmark).", readOnly: true),
        MCPTool(DiffMethod.self, name: "diff", title: "Diff",
                description: "Line diff between two revisions (bookmarks or change ids). Defaults: head = the mount's current change, base = head's parent.",
                readOnly: true),
        MCPTool(ShowChange.self, name: "show", title: "Show a change",
                description: "A change's description, files and diff against its parent. 'rev' is a bookmark or change id; default: the mount's current change.",
                readOnly: true),
        MCPTool(ListBookmarks.self, name: "list_bookmarks", title: "List bookmarks",
                description: "List a repository's bookmarks and the changes they point at.", readOnly: true),
        MCPTool(CreateBookmark.self, name: "create_bookmark", title: "Create a bookmark",
                description: "Create a bookmark at a change (default: the mount's current change).", readOnly: false),
        MCPTool(MoveBookmark.self, name: "move_bookmark", title: "Move a bookmark",
                description: "Move a bookmark to another change; only forward in history unless allowBackwards.", readOnly: false),
    ]
}
