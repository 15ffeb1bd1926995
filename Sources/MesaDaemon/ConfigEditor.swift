import Foundation
import Infra
import Model

/// `openRepo` / `closeRepo` in explicit mode: adds or removes the repo's
/// `[organizations.<org>.repos.<repo>]` table in config.toml, as Mesa's `mesa repo
/// open|close` do. The file is edited as text, so comments and layout survive; the result
/// is read back with the daemon's own parser before it replaces the file (atomically), so
/// an edit that would not mean what was asked changes nothing and says why.
enum ConfigEditor {
    /// Adds the repo to the org's explicit list (nothing to do when it is listed).
    static func addRepo(_ repo: String, org: String, file: String) throws(MesaError) {
        let text = try read(file)
        if try repos(of: org, in: text, file).contains(repo) { return }
        var edited = text
        if !edited.isEmpty, !edited.hasSuffix("\n") { edited += "\n" }
        edited += "\n[organizations.\(key(org)).repos.\(key(repo))]\n"
        guard (try? repos(of: org, in: edited, file).contains(repo)) == true else {
            throw MesaError.invalid("cannot add \(repo) to \(file): organizations.\(org).repos is written in a form this edit cannot extend; add [organizations.\(key(org)).repos.\(key(repo))] by hand")
        }
        try write(edited, to: file)
    }

    /// Removes the repo's table; the org stays in explicit mode even when it was the last.
    static func removeRepo(_ repo: String, org: String, file: String) throws(MesaError) {
        let text = try read(file)
        guard try repos(of: org, in: text, file).contains(repo) else { return }
        var lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { isHeader($0, ["organizations", org, "repos", repo]) }) else {
            throw MesaError.invalid("cannot remove \(repo) from \(file): it is not written as its own [organizations.\(key(org)).repos.\(key(repo))] table; remove it by hand")
        }
        let end = lines[(start + 1)...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("[") }) ?? lines.count
        lines.removeSubrange(start..<end)
        var edited = lines.joined(separator: "\n")
        // Without `mount`, an org with no repos left would be read as `all` at the next start.
        if (try? mode(of: org, in: edited, file)) != .explicit {
            if let header = lines.firstIndex(where: { isHeader($0, ["organizations", org]) }) {
                lines.insert("mount = \"explicit\"", at: header + 1)
                edited = lines.joined(separator: "\n")
            } else {
                edited += (edited.hasSuffix("\n") ? "" : "\n") + "\n[organizations.\(key(org))]\nmount = \"explicit\"\n"
            }
        }
        guard (try? repos(of: org, in: edited, file).contains(repo)) == false, (try? mode(of: org, in: edited, file)) == .explicit else {
            throw MesaError.invalid("cannot remove \(repo) from \(file) safely; remove [organizations.\(key(org)).repos.\(key(repo))] by hand")
        }
        try write(edited, to: file)
    }

    // MARK: Reading back

    private static func parsed(_ text: String, _ file: String) throws -> DaemonConfig {
        var config = DaemonConfig(paths: Paths())
        try config.apply(toml: text, source: file)
        return config
    }

    private static func repos(of org: String, in text: String, _ file: String) throws(MesaError) -> [String] {
        do { return try parsed(text, file).organizations.first { $0.name == org }?.repos.map(\.name) ?? [] } catch {
            throw MesaError.invalid("cannot edit \(file): \(error)")
        }
    }

    private static func mode(of org: String, in text: String, _ file: String) throws -> OrgMountMode? {
        try parsed(text, file).organizations.first { $0.name == org }?.mount
    }

    // MARK: Text

    /// A TOML key: bare when it can be, else a basic string.
    static func key(_ name: String) -> String {
        let bare = !name.isEmpty && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "-" || $0 == "_" }
        if bare { return name }
        return "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Whether `line` is the table header `[a.b.c]` (keys bare or quoted, spaces allowed).
    static func isHeader(_ line: String, _ path: [String]) -> Bool {
        var text = Substring(line.trimmingCharacters(in: .whitespaces))
        guard text.hasPrefix("["), !text.hasPrefix("[[") else { return false }
        text = text.dropFirst()
        for (index, name) in path.enumerated() {
            text = text.drop { $0 == " " || $0 == "\t" }
            let forms = [key(name), "\"\(name)\"", "'\(name)'"]
            guard let form = forms.first(where: { text.hasPrefix($0) }) else { return false }
            text = text.dropFirst(form.count).drop { $0 == " " || $0 == "\t" }
            let separator: Character = index == path.count - 1 ? "]" : "."
            guard text.first == separator else { return false }
            text = text.dropFirst()
        }
        let rest = text.trimmingCharacters(in: .whitespaces)
        return rest.isEmpty || rest.hasPrefix("#")
    }

    private static func read(_ file: String) throws(MesaError) -> String {
        do { return try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw MesaError.invalid("cannot read the config file \(file): \(error.localizedDescription)")
        }
    }

    private static func write(_ text: String, to file: String) throws(MesaError) {
        var info = stat()
        let mode = stat(file, &info) == 0 ? info.st_mode & 0o7777 : 0o600
        do { try AtomicFile.write(file, Array(text.utf8), mode: mode) } catch {
            throw MesaError.invalid("cannot write the config file \(file): \(error.description)")
        }
    }
}
