import MesaProtocol
import RPC

/// A part of a method's params that an MCP tool's input schema is built from: the JSON
/// Schema of each of its properties and which are required. `Flat` params merge their
/// parts, so the shared selectors and paging are described once, here.
protocol ToolInput {
    static var properties: [String: JSONValue] { get }
    static var required: [String] { get }
}

extension ToolInput {
    static var required: [String] { [] }
}

extension Flat: ToolInput where First: ToolInput, Second: ToolInput {
    static var properties: [String: JSONValue] { First.properties.merging(Second.properties) { first, _ in first } }
    static var required: [String] { First.required + Second.required }
}

extension NoParams: ToolInput { static let properties: [String: JSONValue] = [:] }
extension MountSelector: ToolInput { static let properties = ["mountId": Schema.mountId, "path": Schema.path] }
extension OrgSelector: ToolInput { static let properties = ["org": Schema.org] }
extension RepoSelector: ToolInput {
    static let properties = ["mountId": Schema.mountId, "path": Schema.path, "org": Schema.org,
                             "repo": Schema.string("Repository name (used with org when no mount is given).")]
}
extension PageRequest: ToolInput {
    static let properties = ["cursor": Schema.string("Cursor from a previous page's nextCursor."),
                             "limit": Schema.integer("Page size.", minimum: 1, maximum: 100)]
}

// The methods' own fields.

extension CreateRepo.Params: ToolInput {
    static let properties = ["org": Schema.org, "name": Schema.string("Repository name: letters, digits, '.', '_' or '-', up to 100."),
                             "defaultBookmark": Schema.string("Default bookmark name (main).")]
    static let required = ["name"]
}

extension CreateEphemeralKey.Params: ToolInput {
    static let properties = [
        "org": Schema.org, "name": Schema.string("A name for the key."),
        "scopes": Schema.strings("Scopes (default read and write).", oneOf: ["read", "write", "admin"]),
        "expiresInSeconds": Schema.integer("Lifetime in seconds.", minimum: 100, maximum: 31_536_000),
        "repos": Schema.strings("Limit the key to these repositories (names or ids)."),
    ]
}

extension MountMethod.Params: ToolInput {
    static let properties = [
        "org": Schema.org, "repo": Schema.string("Repository to mount; omitted: the daemon tree of every repo."),
        "path": Schema.string("Absolute directory to mount the repo at (created if missing)."),
        "mode": Schema.string("rw (default) or ro.", oneOf: ["rw", "ro"]),
        "at": Schema.object(["bookmark": Schema.string("Bookmark to show and move on checkpoint."), "changeId": Schema.string("Change to edit in place.")]),
        "branchedFrom": Schema.object([
            "bookmark": Schema.string("Parent bookmark (default: the repo's default)."), "changeId": Schema.string("Parent change."),
            "as": Schema.object(["bookmark": Schema.string("Bookmark to create on the new change."),
                                 "describe": Schema.string("Description of the new change.")]),
        ]),
    ]
}

extension Checkpoint.Message: ToolInput { static let properties = ["message": Schema.string("Description of the change, like a commit message.")] }
extension ListChanges.Filter: ToolInput { static let properties = ["bookmark": Schema.string("Bookmark to start from.")] }
extension DiffMethod.Range: ToolInput { static let properties = ["base": Schema.string("Base revision."), "head": Schema.string("Head revision.")] }
extension ShowChange.Rev: ToolInput {
    static let properties = ["rev": Schema.string("Bookmark or change id."),
                             "patch": Schema.boolean("Also return the diff as a git patch that `git apply` accepts.")]
}

extension CreateBookmark.Fields: ToolInput {
    static let properties = ["name": Schema.string("New bookmark name."), "changeId": Schema.string("Change id or bookmark to point at.")]
    static let required = ["name"]
}

extension MoveBookmark.Fields: ToolInput {
    static let properties = ["name": Schema.string("Bookmark to move."), "changeId": Schema.string("Change id or bookmark to move it to."),
                             "allowBackwards": Schema.boolean("Allow moving to a change that is not a descendant.")]
    static let required = ["name", "changeId"]
}

/// JSON Schema builders.
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
}
