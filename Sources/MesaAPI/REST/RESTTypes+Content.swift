import Foundation
import Model

// Wire types of `GET /{org}/{repo}/content` (reference §6). Like RESTTypes.swift:
// explicit snake_case keys, Codable both ways, a conversion back to the store model.

/// One entry of a directory listing. Entries never carry content; directories carry
/// neither `size` nor `mode`.
public struct RESTContentEntry: Codable, Sendable, Equatable {
    public var type: EntryType
    public var name: String
    public var path: String
    /// Blob oid for files and symlinks, tree oid for directories.
    public var sha: String
    public var size: Int?
    public var mode: String?

    public init(type: EntryType, name: String, path: String, sha: String, size: Int? = nil, mode: String? = nil) {
        self.type = type
        self.name = name
        self.path = path
        self.sha = sha
        self.size = size
        self.mode = mode
    }

    public init(_ entry: DirectoryEntry) {
        self.init(type: entry.type, name: entry.name, path: entry.path, sha: entry.oid,
                  size: entry.type == .dir ? nil : (entry.size ?? 0), mode: entry.mode?.rawValue)
    }

    /// The store's entry; fails on a mode the store does not know.
    public func entry() throws(MesaError) -> DirectoryEntry {
        var fileMode: FileMode?
        if let mode {
            guard let parsed = FileMode(rawValue: mode) else { throw .invalid("entry '\(path.prefix(200))' has unknown mode '\(mode.prefix(20))'") }
            fileMode = parsed
        } else if type != .dir {
            fileMode = type == .symlink ? .symlink : .regular
        }
        return DirectoryEntry(name: name, path: path, type: type, mode: fileMode, size: type == .dir ? nil : size ?? 0, oid: sha)
    }

    enum CodingKeys: String, CodingKey { case type, name, path, sha, size, mode }
}

/// The content union, discriminated by `type`:
/// - `file` / `symlink`: `{type, name, path, sha, size, encoding: "base64", content, mode}`
///   (a symlink's content is its target, mode 120000);
/// - `dir`: `{type, name, path, sha, child_count, entries}`.
public struct RESTContent: Codable, Sendable, Equatable {
    public var type: EntryType
    public var name: String
    public var path: String
    public var sha: String
    public var size: Int?
    public var encoding: String?
    /// Base64 of the file bytes or the link target.
    public var content: String?
    public var mode: String?
    /// Direct children of a directory (also when `entries` is cut by `depth`).
    public var childCount: Int?
    public var entries: [RESTContentEntry]?

    public init(type: EntryType, name: String, path: String, sha: String, size: Int? = nil, encoding: String? = nil,
                content: String? = nil, mode: String? = nil, childCount: Int? = nil, entries: [RESTContentEntry]? = nil) {
        self.type = type
        self.name = name
        self.path = path
        self.sha = sha
        self.size = size
        self.encoding = encoding
        self.content = content
        self.mode = mode
        self.childCount = childCount
        self.entries = entries
    }

    /// `childCount` defaults to the entries directly inside the directory, which is
    /// right whenever the listing was made with a depth of at least 1.
    public init(_ content: Content, childCount: Int? = nil) {
        switch content {
        case .file(let path, let bytes, let mode, let oid):
            self.init(type: .file, name: Self.name(path), path: path, sha: oid, size: bytes.count, encoding: "base64",
                      content: Data(bytes).base64EncodedString(), mode: mode.rawValue)
        case .symlink(let path, let target, let oid):
            let bytes = Array(target.utf8)
            self.init(type: .symlink, name: Self.name(path), path: path, sha: oid, size: bytes.count, encoding: "base64",
                      content: Data(bytes).base64EncodedString(), mode: FileMode.symlink.rawValue)
        case .directory(let path, let oid, let entries):
            let direct = entries.filter { !$0.path.dropFirst(path.isEmpty ? 0 : path.count + 1).contains("/") }.count
            self.init(type: .dir, name: Self.name(path), path: path, sha: oid, childCount: childCount ?? direct,
                      entries: entries.map(RESTContentEntry.init))
        }
    }

    /// The store's content value; validates base64 and modes.
    public func storeContent() throws(MesaError) -> Content {
        switch type {
        case .dir:
            var list: [DirectoryEntry] = []
            for entry in entries ?? [] { list.append(try entry.entry()) }
            return .directory(path: path, oid: sha, entries: list)
        case .file, .symlink:
            if let encoding, encoding != "base64" {
                throw .invalid("content of '\(path.prefix(200))' has unsupported encoding '\(encoding.prefix(20))'")
            }
            guard let data = Data(base64Encoded: content ?? "") else {
                throw .invalid("content of '\(path.prefix(200))' is not valid base64")
            }
            if type == .symlink || mode == FileMode.symlink.rawValue {
                return .symlink(path: path, target: String(decoding: data, as: UTF8.self), oid: sha)
            }
            let fileMode = FileMode(rawValue: mode ?? FileMode.regular.rawValue) ?? .regular
            return .file(path: path, bytes: [UInt8](data), mode: fileMode, oid: sha)
        }
    }

    static func name(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? "" }

    enum CodingKeys: String, CodingKey {
        case type, name, path, sha, size, encoding, content, mode, entries
        case childCount = "child_count"
    }
}
