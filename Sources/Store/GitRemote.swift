import CGit2
import Foundation
import Model

/// A ref an upstream advertises. Annotated tags also carry the commit they peel to.
struct RemoteRef {
    let name: String
    let oid: GitOID
    var peeled: GitOID?
}

/// Why a remote operation failed, worded for the sync's `error`, and whether a retry may help.
struct RemoteFailure: Error {
    let message: String
    let transient: Bool
}

/// One conversation with an upstream through libgit2 (fetch: ls + download; push).
/// Transports are libgit2's: http(s) (smart HTTP, proxy from git config / environment,
/// the system CA store), git://, ssh:// and scp-like (libssh2; the ssh agent or the stored
/// password), file:// and local paths.
final class GitRemoteSession {
    private let repository: GitRepository
    private let url: String
    private var auth: UnsafeMutablePointer<cgit2_auth>
    private var strings: [UnsafeMutablePointer<CChar>] = []

    init(repository: GitRepository, url: String, auth credential: UpstreamAuth?) {
        self.repository = repository
        self.url = url
        auth = .allocate(capacity: 1)
        auth.initialize(to: cgit2_auth())
        if let credential {
            let (username, password) = credential.userpass
            let user = strdup(username)!, pass = strdup(password)!
            strings = [user, pass]
            auth.pointee.username = UnsafePointer(user)
            auth.pointee.password = UnsafePointer(pass)
        }
    }

    deinit {
        // Secrets leave memory with the session.
        for string in strings {
            memset(string, 0, strlen(string))
            free(string)
        }
        auth.deinitialize(count: 1)
        auth.deallocate()
    }

    /// The refs the upstream advertises (for fetch or for push).
    func list(forPush: Bool) throws -> [RemoteRef] {
        try withRemote { remote in
            auth.pointee.attempts = 0
            try check(cgit2_remote_connect(remote, forPush ? GIT_DIRECTION_PUSH : GIT_DIRECTION_FETCH, auth), "cannot connect to")
            defer { git_remote_disconnect(remote) }
            var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
            var count = 0
            try check(git_remote_ls(&heads, &count, remote), "cannot list the refs of")
            var refs: [String: RemoteRef] = [:]
            var peeled: [String: GitOID] = [:]
            for index in 0..<count {
                guard let head = heads?[index]?.pointee, let namePointer = head.name else { continue }
                let name = String(cString: namePointer)
                if name.hasSuffix("^{}") {
                    peeled[String(name.dropLast(3))] = GitOID(head.oid)
                } else if name.hasPrefix("refs/heads/") || name.hasPrefix("refs/tags/") {
                    refs[name] = RemoteRef(name: name, oid: GitOID(head.oid))
                }
            }
            for (name, commit) in peeled { refs[name]?.peeled = commit }
            return refs.values.sorted { $0.name < $1.name }
        }
    }

    /// Fetches the objects of `refs` into the repository's object database as a pack
    /// (libgit2 negotiates with every local ref), updating no reference.
    func download(_ refs: [String]) throws {
        try withRemote { remote in
            auth.pointee.attempts = 0
            try withCStrings(refs) { specs, count in
                try check(cgit2_remote_download(remote, specs, count, auth), "cannot fetch from")
            }
        }
    }

    /// Pushes `refspecs` (never forced). Returns the refs the upstream refused, with its reason.
    func push(_ refspecs: [String]) throws -> [String: String] {
        try withRemote { remote in
            auth.pointee.attempts = 0
            auth.pointee.rejected.0 = 0
            try withCStrings(refspecs) { specs, count in
                try check(cgit2_remote_push(remote, specs, count, auth), "cannot push to")
            }
            let text = withUnsafeBytes(of: auth.pointee.rejected) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard let colon = text.firstIndex(of: ":") else { return [:] }
            return [String(text[..<colon]): text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)]
        }
    }

    private func withRemote<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        var remote: OpaquePointer?
        guard git_remote_create_anonymous(&remote, repository.handle, url) == 0, let remote else {
            throw RemoteFailure(message: "invalid upstream url '\(url)': \(Self.lastError())", transient: false)
        }
        defer { git_remote_free(remote) }
        return try body(remote)
    }

    private func withCStrings<T>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, Int) throws -> T) rethrows -> T {
        let copies = strings.map { UnsafePointer(strdup($0)!) }
        defer { copies.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        var pointers: [UnsafePointer<CChar>?] = copies
        return try pointers.withUnsafeMutableBufferPointer { try body($0.baseAddress!, copies.count) }
    }

    /// Turns a libgit2 failure into a message naming the upstream, and decides whether it
    /// is worth retrying: network and server trouble is, a refused credential or a
    /// missing repository is not.
    private func check(_ result: Int32, _ what: String) throws {
        guard result < 0 else { return }
        let klass = git_error_last()?.pointee.klass ?? 0
        let detail = Self.lastError()
        let refused = result == GIT_EAUTH.rawValue || auth.pointee.attempts > 1
            || detail.contains("401") || detail.contains("403") || detail.lowercased().contains("authentication")
        if refused {
            let message = auth.pointee.username == nil
                ? "the upstream \(url) needs a credential and none is stored: \(detail)"
                : "the upstream \(url) refused the stored credential: \(detail)"
            throw RemoteFailure(message: message, transient: false)
        }
        let permanent = detail.contains("404") || detail.lowercased().contains("not found")
            || detail.lowercased().contains("unsupported url") || detail.lowercased().contains("does not appear to be a git repository")
            || detail.lowercased().contains("could not find repository") || detail.lowercased().contains("not a git repository")
        let network = klass == Int32(GIT_ERROR_NET.rawValue) || klass == Int32(GIT_ERROR_OS.rawValue)
            || klass == Int32(GIT_ERROR_SSL.rawValue) || klass == Int32(GIT_ERROR_SSH.rawValue) || klass == Int32(GIT_ERROR_HTTP.rawValue)
        throw RemoteFailure(message: "\(what) upstream \(url): \(detail)", transient: network && !permanent)
    }

    static func lastError() -> String {
        git_error_last().map { String(cString: $0.pointee.message) } ?? "unknown libgit2 error"
    }
}
