import Foundation
import MesaAPI
import Model
@testable import Mount
// @testable only to age a key in the metadata database (as StoreTests' KeyTests do).
@testable import Store
import StoreBackend
import Testing

/// A mount re-checks its key: revoked or expired after mounting, every call fails with
/// EACCES, status and RPC errors say KEY_REVOKED / KEY_EXPIRED, nothing more uploads.
@Suite struct KeyRecheckTests {
    let root = InodeTable.rootIno

    func mount(_ fx: MountFixture, scopes: [Scope] = [.read, .write]) throws -> (RepoFileSystem, String) {
        let key = try fx.store.createAPIKey(org: fx.org, name: "sandbox", scopes: scopes)
        let backend = try LocalBackend(store: fx.store, secret: key.secret, recheck: true)
        return (try fx.mount(backend: backend), key.key.id)
    }

    @Test func aReadOnlyKeyMakesARwMountReadOnlyInStatusAndModes() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "a\n", "tool.sh": "#!/bin/sh\n", "d/x": "x"])
        let (fs, _) = try mount(fx, scopes: [.read])
        #expect(fs.isReadOnly)
        #expect(fs.status().mode == .ro)
        for path in ["a.txt", "tool.sh", "d"] {
            let attributes = try fs.getattr(try fs.ino(path))
            #expect(attributes.permissions & 0o222 == 0, "\(path): \(String(attributes.permissions, radix: 8))")
            #expect(attributes.permissions & 0o444 == 0o444, "\(path) stays readable")
        }
        #expect(try fs.getattr(InodeTable.rootIno).permissions == 0o555)
        // A key with write keeps the modes git versions.
        let (writable, _) = try mount(try MountFixture(), scopes: [.read, .write])
        #expect(writable.status().mode == .rw)
        #expect(try writable.getattr(InodeTable.rootIno).permissions == 0o755)
    }

    @Test func aRevokedKeyStopsEveryCallWithEACCESAndSaysKeyRevoked() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "a\n"])
        let (fs, keyID) = try mount(fx)
        try fs.writeText("before.txt", "uploaded\n")
        try fs.flush()
        try fx.store.revokeAPIKey(org: fx.org, id: keyID)
        fs.recheckKey()
        expectErrno(EACCES) { try fs.lookup(parent: root, name: "a.txt") }
        expectErrno(EACCES) { try fs.create(parent: root, name: "after.txt", permissions: 0o644, flags: OpenFlags(write: true)) }
        expectErrno(EACCES) { try fs.mkdir(parent: root, name: "d", permissions: 0o755) }
        expectErrno(EACCES) { try fs.getattr(root) }
        #expect(fs.status().lastError?.hasPrefix("KEY_REVOKED") == true, "\(fs.status().lastError ?? "-")")
        do {
            _ = try fs.lookup(parent: root, name: "a.txt")
        } catch {
            #expect(error.mesaError.code == .keyRevoked, "RPC callers get KEY_REVOKED, not INTERNAL")
        }
        #expect(throws: MesaError.self) { try fs.checkpoint(message: "after revocation") }
        #expect(try fx.store.bookmark(org: fx.org, repo: fx.repo, bookmark: "main").changeID != fs.status().workingChange)
    }

    @Test func anExpiredKeyIsFoundByTheNextUploadAndTheNextCheck() throws {
        let fx = try MountFixture()
        let (fs, keyID) = try mount(fx)
        try fs.writeText("pending.txt", "p\n")
        _ = try fx.store.withDatabase { db in
            try db.query("UPDATE api_keys SET expires_at = ? WHERE id = ?", [.double(Date().timeIntervalSince1970 - 1), .text(keyID)])
        }
        #expect(throws: MesaError.self) { try fs.flush() }
        #expect(fs.status().lastError?.hasPrefix("KEY_EXPIRED") == true, "\(fs.status().lastError ?? "-")")
        expectErrno(EACCES) { try fs.open(try fs.ino("pending.txt"), flags: OpenFlags()) }
        #expect(fs.status().pendingUploads == 1, "the work stays in the journal")
    }

    @Test func anUnreachableBackendIsNotARefusal() throws {
        let fx = try MountFixture()
        let faulty = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try fx.mount(backend: faulty)
        _ = try fs.list(root)  // listed while online; the journal needs no backend after that
        faulty.setOffline(true)
        fs.recheckKey()
        try fs.writeText("offline.txt", "still works\n")
        #expect(try fs.readText("offline.txt") == "still works\n")
    }
}
