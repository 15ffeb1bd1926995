import Foundation
import MesaAPI
import Model

/// A change as the patch `git diff --binary` prints, so `git apply` takes it: headers with
/// file modes and full blob ids (new, deleted, renamed, mode changes), the text hunks of
/// the backend's diff, and binary files as `GIT binary patch` literals. The backend's
/// `Diff` carries neither modes nor binary content, so both are read here: one directory
/// listing per changed directory and side, and the new blob of each binary file.
struct GitPatch {
    /// One side of a file: its git mode and blob id.
    struct Side: Equatable {
        let mode: FileMode
        let oid: String
    }

    let org: String
    let repo: String
    let backend: any Backend
    private var listings: [String: [String: Side]] = [:]

    init(org: String, repo: String, backend: any Backend) {
        self.org = org
        self.repo = repo
        self.backend = backend
    }

    /// The patch from `base` to `head` for the entries of `diff`.
    mutating func text(_ diff: Diff, base: ChangeID, head: ChangeID) throws -> String {
        var out = ""
        for entry in diff.entries {
            let oldPath = entry.oldPath ?? entry.path
            let old = entry.status == .added ? nil : try side(oldPath, at: base)
            let new = entry.status == .deleted ? nil : try side(entry.path, at: head)
            out += try Self.header(entry, old: old, new: new)
            guard old?.oid != new?.oid else { continue }  // a pure rename or mode change
            if entry.isBinary {
                let bytes = try new.map { try backend.blob(org: org, repo: repo, oid: $0.oid) } ?? []
                out += "GIT binary patch\n" + Self.binaryLiteral(bytes) + "\n"
            } else if let hunks = entry.hunks, !hunks.isEmpty {
                out += "--- " + (old == nil ? "/dev/null" : "a/" + oldPath) + "\n"
                out += "+++ " + (new == nil ? "/dev/null" : "b/" + entry.path) + "\n"
                out += Self.hunks(hunks)
            }
        }
        return out
    }

    /// `diff --git` and the extended header lines git writes before the hunks.
    static func header(_ entry: DiffEntry, old: Side?, new: Side?) throws -> String {
        let oldPath = entry.oldPath ?? entry.path
        var lines = ["diff --git a/\(oldPath) b/\(entry.path)"]
        switch (old, new) {
        case (nil, let new?): lines.append("new file mode \(new.mode.rawValue)")
        case (let old?, nil): lines.append("deleted file mode \(old.mode.rawValue)")
        case (let old?, let new?):
            if old.mode != new.mode { lines += ["old mode \(old.mode.rawValue)", "new mode \(new.mode.rawValue)"] }
            if entry.status == .renamed { lines += ["rename from \(oldPath)", "rename to \(entry.path)"] }
        case (nil, nil): throw MesaError(.internal, "\(entry.path) is in the diff but on neither side")
        }
        if old?.oid != new?.oid {
            let zero = String(repeating: "0", count: 40)
            let sameMode = old != nil && old?.mode == new?.mode ? " \(old!.mode.rawValue)" : ""
            lines.append("index \(old?.oid ?? zero)..\(new?.oid ?? zero)\(sameMode)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Unified hunks; annotations ("\ No newline at end of file") as git prints them.
    static func hunks(_ hunks: [DiffHunk]) -> String {
        var out = ""
        for hunk in hunks {
            out += "@@ -\(hunk.oldStart),\(hunk.oldLines) +\(hunk.newStart),\(hunk.newLines) @@\n"
            for line in hunk.lines {
                switch line.kind {
                case .added: out += "+" + line.text + "\n"
                case .deleted: out += "-" + line.text + "\n"
                case .context: out += " " + line.text + "\n"
                case .annotation: out += line.text + "\n"
                }
            }
        }
        return out
    }

    /// The mode and blob id of `path` at `change`; nil when it is not there.
    private mutating func side(_ path: String, at change: ChangeID) throws -> Side? {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? ""
        let key = change.rawValue + "\0" + directory
        if listings[key] == nil {
            var sides: [String: Side] = [:]
            do {
                if case .directory(_, _, let entries) = try backend.content(org: org, repo: repo, at: .change(change),
                                                                            path: directory, depth: 1) {
                    for entry in entries { if let mode = entry.mode { sides[entry.path] = Side(mode: mode, oid: entry.oid) } }
                }
            } catch {
                // The root change, or a directory the change does not have: nothing there.
                let failure = MesaError.from(error)
                guard failure.code == .notFound || failure.code == .invalidArgument else { throw failure }
            }
            listings[key] = sides
        }
        return listings[key]?[path]
    }

    // MARK: Binary literals

    /// `literal <size>` and the bytes as git's binary patch encodes them: a zlib
    /// stream, in lines of at most 52 bytes, each a length letter and base85.
    static func binaryLiteral(_ bytes: [UInt8]) -> String {
        let compressed = zlibStored(bytes)
        var out = "literal \(bytes.count)\n"
        var start = 0
        while start < compressed.count {
            let chunk = Array(compressed[start..<min(start + 52, compressed.count)])
            let letter = chunk.count <= 26 ? UInt8(ascii: "A") + UInt8(chunk.count - 1) : UInt8(ascii: "a") + UInt8(chunk.count - 27)
            out += String(UnicodeScalar(letter)) + base85(chunk) + "\n"
            start += 52
        }
        return out
    }

    /// A zlib stream of stored (uncompressed) deflate blocks: every inflater reads it,
    /// and nothing needs linking. Size is the input's plus 5 bytes per 64 KiB.
    static func zlibStored(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let end = min(start + 65535, bytes.count)
            let length = UInt16(end - start)
            out.append(end == bytes.count ? 1 : 0)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            out += bytes[start..<end]
            start = end
        } while start < bytes.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        let adler = b << 16 | a
        out += [UInt8(adler >> 24), UInt8(adler >> 16 & 0xFF), UInt8(adler >> 8 & 0xFF), UInt8(adler & 0xFF)]
        return out
    }

    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~".utf8)

    /// git's base85: each 4 bytes (zero-padded) as 5 characters, most significant first.
    static func base85(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            var value: UInt32 = 0
            for offset in 0..<4 {
                value = value << 8 | UInt32(index + offset < bytes.count ? bytes[index + offset] : 0)
            }
            var group = [UInt8](repeating: 0, count: 5)
            for position in stride(from: 4, through: 0, by: -1) {
                group[position] = alphabet[Int(value % 85)]
                value /= 85
            }
            out += group
            index += 4
        }
        return String(decoding: out, as: UTF8.self)
    }
}
