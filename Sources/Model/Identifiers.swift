import Foundation

/// A jj-style change id: 32 characters of "reverse hex" (`z`=0 … `k`=15).
public struct ChangeID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: String

    package static let digits: [Character] = Array("zyxwvutsrqponmlk")

    /// The virtual root: the empty tree, the head of a never-written repository.
    public static let root = ChangeID(unchecked: String(repeating: "z", count: 32))

    public init(_ text: String) throws(MesaError) {
        guard text.utf8.count == 32, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "k") && $0 <= UInt8(ascii: "z") }) else {
            throw MesaError.invalid("invalid change id '\(text.prefix(64))': expected 32 characters from 'k' to 'z'")
        }
        rawValue = text
    }

    package init(unchecked text: String) { rawValue = text }

    public init(from decoder: any Decoder) throws {
        try self.init(decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var isRoot: Bool { self == .root }
    public var description: String { rawValue }
    public static func < (lhs: ChangeID, rhs: ChangeID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Names and paths the store accepts. Each check throws a message that says what is wrong.
public enum Validation {
    static let reservedRepoNames: Set<String> = ["repo", "repos", "api-key", "api-keys"]

    /// Mesa's repository name rule: `^[A-Za-z0-9._-]{1,100}$`, minus `.`, `..`,
    /// `*.git` and the reserved route words.
    public static func repoName(_ name: String) throws(MesaError) {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        guard !name.isEmpty, name.utf8.count <= 100, allowed else {
            throw MesaError.invalid("invalid repository name '\(name.prefix(120))': use 1 to 100 characters from A-Z a-z 0-9 . _ -")
        }
        if name.hasPrefix("-") {
            throw MesaError.invalid("invalid repository name '\(name)': it must not start with '-' (tools would read it as an option)")
        }
        let lower = name.lowercased()
        if name == "." || name == ".." || lower.hasSuffix(".git") || reservedRepoNames.contains(lower) {
            throw MesaError.invalid("invalid repository name '\(name)': '.', '..', names ending in '.git' and 'repo', 'repos', 'api-key', 'api-keys' are reserved")
        }
    }

    /// Org slugs follow the repository name rule's alphabet.
    public static func orgSlug(_ slug: String) throws(MesaError) {
        let allowed = slug.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
        guard !slug.isEmpty, slug.utf8.count <= 64, allowed, slug != "whoami" else {
            throw MesaError.invalid("invalid organization slug '\(slug.prefix(80))': use 1 to 64 characters from a-z A-Z 0-9 - _")
        }
    }

    /// Bookmark names become `refs/heads/<name>`, so they follow git's ref-name rules,
    /// plus what makes a valid ref a bad branch: git's own special names, a `refs/`
    /// prefix, components too long for the `.lock` file git writes beside them, and
    /// invisible format characters (U+202E and kin) that make two names look alike.
    public static func bookmarkName(_ name: String) throws(MesaError) {
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        let bad = name.isEmpty || name.utf8.count > 255 || name.hasPrefix("/") || name.hasSuffix("/")
            || name.hasPrefix("-") || name.hasSuffix(".") || name.contains("..")
            || name.contains("//") || name.contains("@{") || name == "@"
            || components.contains(where: { $0.hasPrefix(".") || $0.hasSuffix(".lock") })
            || name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || " ~^:?*[\\".unicodeScalars.contains($0) })
        if bad {
            throw MesaError.invalid("invalid bookmark name '\(name.clipped)': it must be a valid git branch name (no spaces, '..', '~^:?*[\\', leading '-' or '.', a component ending in '.lock' or a trailing '/')")
        }
        if let long = components.first(where: { $0.utf8.count > maxRefComponentBytes }) {
            throw MesaError.invalid("invalid bookmark name '\(name.clipped)': the component '\(long.clipped)' is \(long.utf8.count) bytes; at most \(maxRefComponentBytes) (git writes '<name>.lock' files)")
        }
        if reservedRefNames.contains(name) || name.hasPrefix("refs/") {
            throw MesaError.invalid("invalid bookmark name '\(name)': HEAD, FETCH_HEAD, ORIG_HEAD, MERGE_HEAD and names starting with 'refs/' are reserved by git")
        }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .format }) {
            throw MesaError.invalid("invalid bookmark name '\(name.clipped)': it contains an invisible format character (such as U+202E or U+200B) that makes names look like others")
        }
    }

    /// git's own names at the top of `.git` and in `refs/`: never a branch.
    static let reservedRefNames: Set<String> = ["HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "BISECT_HEAD", "AUTO_MERGE"]
    /// A ref component plus `.lock` must fit a 255-byte file name.
    public static let maxRefComponentBytes = 250

    /// Splits a repository-relative path into segments, refusing anything that could
    /// escape the tree or break git: absolute paths, `.`/`..`, empty segments, NUL, `.git`.
    public static func pathComponents(_ path: String, allowRoot: Bool = false) throws(MesaError) -> [String] {
        if path.isEmpty || path == "/" {
            if allowRoot { return [] }
            throw MesaError.invalid("empty path: name a file inside the repository")
        }
        guard !path.hasPrefix("/") else {
            throw MesaError.invalid("invalid path '\(path.prefix(200))': paths are relative to the repository root; drop the leading '/'")
        }
        guard !path.utf8.contains(0) else {
            throw MesaError.invalid("invalid path: it contains a NUL byte")
        }
        if let problem = pathProblem(path) {
            throw MesaError.invalid("invalid path '\(path.prefix(200))': \(problem)")
        }
        return path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    }

    /// Longest path and path segment a repository holds, in UTF-8 bytes.
    public static let maxPathBytes = 4096
    public static let maxSegmentBytes = 255

    /// Why the store cannot hold `path` (relative, no leading '/'), or nil if it can. The
    /// one copy of these rules: the store refuses such paths and the mount refuses to
    /// create them, so nothing written through a mount can block its uploads.
    public static func pathProblem(_ path: String) -> String? {
        if path.utf8.contains(0) { return "it contains a NUL byte" }
        if path.utf8.count > maxPathBytes { return "longer than \(maxPathBytes) bytes" }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty { return "empty segment (double or trailing '/')" }
            if segment == "." || segment == ".." { return "'.' and '..' segments are not allowed" }
            if isDotGit(String(segment)) { return "'.git' (or a name git treats as '.git') is reserved by git and cannot be stored" }
            if segment.utf8.count > maxSegmentBytes { return "a segment is longer than \(maxSegmentBytes) bytes" }
        }
        return nil
    }

    /// What git itself refuses as `.git` (fsck `hasDotgit`, checkout's `verify_path`):
    /// any case, HFS+ ignorable code points inside (`.g\u{200C}it`), and NTFS spellings
    /// (`.git.`, `.git `, `git~1`, `.git:stream`).
    public static func isDotGit(_ segment: String) -> Bool {
        let ignorable: (Unicode.Scalar) -> Bool = { scalar in
            switch scalar.value {
            case 0x200C...0x200F, 0x202A...0x202E, 0x206A...0x206F, 0xFEFF: true
            default: false
            }
        }
        let hfs = String(String.UnicodeScalarView(segment.unicodeScalars.filter { !ignorable($0) })).lowercased()
        if hfs == ".git" { return true }
        let lower = segment.lowercased()
        for stem in [".git", "git~1"] where lower.hasPrefix(stem) {
            let rest = lower.dropFirst(stem.count)
            if let colon = rest.firstIndex(of: ":") {
                if rest[..<colon].allSatisfy({ $0 == "." || $0 == " " }) { return true }
            } else if rest.allSatisfy({ $0 == "." || $0 == " " }) {
                return true
            }
        }
        return false
    }

    /// Author and committer names and emails end up in a commit header: no angle
    /// brackets, line breaks or NUL (git fsck rejects them, libgit2 refuses brackets),
    /// and an email (libgit2 refuses an empty one; a blank name becomes "unknown").
    public static func signature(_ signature: Signature) throws(MesaError) {
        if signature.email.trimmingCharacters(in: .whitespaces).isEmpty {
            throw MesaError.invalid("invalid author/committer '\(signature.name.prefix(100))': the email is empty")
        }
        for (field, value) in [("name", signature.name), ("email", signature.email)] {
            if value.unicodeScalars.contains(where: { "<>\n\r\0".unicodeScalars.contains($0) }) {
                throw MesaError.invalid("invalid author/committer \(field) '\(value.prefix(100))': it must not contain '<', '>', line breaks or NUL")
            }
        }
    }
}

extension StringProtocol {
    /// The value as error messages and logs quote it: a long one is cut, so a 10 MB name
    /// sent by a client is not echoed back (or logged) whole.
    public var clipped: String {
        count <= 100 ? String(self) : "\(prefix(100))… (\(utf8.count) bytes)"
    }
}
