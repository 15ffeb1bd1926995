import ArgumentParser
import Client
import Foundation
import MesaProtocol

/// `layout.json` (Mesa's format): absolute paths → a repo declaration or an array of
/// them. Unknown keys are refused, as Mesa's own loader does.
enum Layout {
    static let declarationKeys: Set<String> = ["kind", "name", "mode", "at", "branchedFrom", "alias", "subPaths"]

    static func load(_ file: String) throws -> [MountMethod.Params] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIFailure(message: "cannot read layout \(file)", status: CLIExit.usage)
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CLIFailure(message: "\(file): a layout is a JSON object mapping absolute paths to repo declarations", status: CLIExit.usage)
        }
        var mounts: [MountMethod.Params] = []
        for (path, value) in root.sorted(by: { $0.key < $1.key }) {
            try collect(path: path, value, file: file, into: &mounts)
        }
        return mounts
    }

    private static func collect(path: String, _ value: Any, file: String, into mounts: inout [MountMethod.Params]) throws {
        func fail(_ message: String) -> CLIFailure { CLIFailure(message: "\(file): \(path): \(message)", status: CLIExit.usage) }
        guard path.hasPrefix("/"), path != "/" else { throw fail("paths must be absolute and '/' cannot be a mount") }
        let declarations: [Any] = (value as? [Any]) ?? [value]
        for item in declarations {
            guard let declaration = item as? [String: Any] else { throw fail("expected a repo declaration object") }
            if let unknown = declaration.keys.sorted().first(where: { !declarationKeys.contains($0) }) {
                throw fail("unknown key '\(unknown)' (allowed: \(declarationKeys.sorted().joined(separator: ", ")))")
            }
            guard declaration["kind"] as? String == "repo" else { throw fail("\"kind\" must be \"repo\"") }
            guard let name = declaration["name"] as? String, !name.isEmpty, !name.contains("/") else {
                throw fail("\"name\" must be a repo name of this org")
            }
            guard let mode = declaration["mode"] as? String, mode == "ro" || mode == "rw" else {
                throw fail("\"mode\" is required: \"ro\" or \"rw\"")
            }
            let at = try revision(declaration["at"], fail)
            var branched: BranchedFromSpec?
            if let raw = declaration["branchedFrom"] {
                guard let object = raw as? [String: Any] else { throw fail("\"branchedFrom\" must be an object") }
                if let unknown = object.keys.first(where: { !["bookmark", "changeId", "as"].contains($0) }) {
                    throw fail("unknown key '\(unknown)' in branchedFrom")
                }
                let alias = object["as"] as? [String: Any]
                branched = BranchedFromSpec(bookmark: object["bookmark"] as? String, changeId: object["changeId"] as? String,
                                            as: alias.map { .init(bookmark: $0["bookmark"] as? String, describe: $0["describe"] as? String) })
            }
            if at != nil && branched != nil { throw fail("\"at\" and \"branchedFrom\" cannot be combined") }
            if branched != nil && mode != "rw" { throw fail("\"branchedFrom\" needs mode \"rw\"") }
            let directory = (declarations.count > 1 ? path + "/" + ((declaration["alias"] as? String) ?? name) : path)
            mounts.append(MountMethod.Params(repo: name, at: at, branchedFrom: branched, mode: mode, path: directory))
            if let sub = declaration["subPaths"] as? [String: Any] {
                for (subPath, subValue) in sub.sorted(by: { $0.key < $1.key }) {
                    try collect(path: directory + (subPath.hasPrefix("/") ? subPath : "/" + subPath), subValue, file: file, into: &mounts)
                }
            }
        }
    }

    private static func revision(_ raw: Any?, _ fail: (String) -> CLIFailure) throws -> RevisionSpec? {
        guard let raw else { return nil }
        guard let object = raw as? [String: Any], object.count == 1,
              object["bookmark"] is String || object["changeId"] is String else {
            throw fail("\"at\" must be {\"bookmark\": …} or {\"changeId\": …}")
        }
        return RevisionSpec(bookmark: object["bookmark"] as? String, changeId: object["changeId"] as? String)
    }
}
