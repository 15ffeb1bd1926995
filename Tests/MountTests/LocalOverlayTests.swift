import Foundation
import MesaIgnore
import Model
@testable import Mount
import Store
import Testing

/// Stands in for the core during a replay: every directory of the table is listed
/// (a fresh, empty repository), and rename moves the entry as the core would.
private final class TableHost: ReplayHost {
    let state: Locked<CoreState>
    let unreachable: Bool

    init(_ state: Locked<CoreState>, unreachable: Bool = false) {
        self.state = state
        self.unreachable = unreachable
    }

    func ensureListed(_ ino: UInt64, mayBlock: Bool) throws(FSError) {
        if unreachable { throw FSError(EIO, "backend unreachable (test)") }
    }

    func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32,
                mayBlock: Bool) throws(FSError) {
        try state.withLock { state throws(FSError) in
            guard let ino = state.table.nodes[parent]?.children?[name] else { throw FSError.noEntry(name) }
            let from = state.table.path(of: ino) ?? name
            state.table.nodes[parent]?.children?[name] = nil
            state.table.nodes[ino]?.parent = newParent
            state.table.nodes[ino]?.name = newName
            state.table.nodes[newParent]?.children?[newName] = ino
            state.table.touch(from)
            state.table.touch(state.table.path(of: ino) ?? newName)
        }
    }
}

/// `LocalOverlay` alone: journal replay onto a bare inode table, the records that
/// recreate what no upload can, data-file reuse. No `RepoFileSystem`, no backend.
@Suite struct LocalOverlayTests {
    private struct Harness {
        let fx: MountFixture
        let journal: Journal
        let state: Locked<CoreState>
        let overlay: LocalOverlay

        init() throws {
            fx = try MountFixture()
            journal = try Journal(directory: fx.journalDirectory)
            try journal.rewrite(header: JournalHeader(org: fx.org, repo: fx.repo, bookmark: "main", bookmarkExpected: nil,
                                                      base: ChangeID.root.rawValue, working: nil, baseTime: Timestamp.now()),
                                keep: { _, _ in true })
            let now = Timestamp.now()
            let root = Node(ino: InodeTable.rootIno, parent: InodeTable.rootIno, name: "", kind: .directory, permissions: 0o755,
                            uid: 1234, gid: 5678, size: 4096, atime: now, mtime: now, ctime: now, content: .none, children: [:])
            var table = InodeTable(root: root)
            table.defaultUID = 1234
            table.defaultGID = 5678
            state = Locked(CoreState(table: table, readChange: .root, baseTime: now))
            overlay = LocalOverlay(journal: journal, state: state, uid: 1234, gid: 5678, org: fx.org, repo: fx.repo,
                                   logger: .init(label: "test.overlay"))
        }

        func node(_ path: String) -> Node? {
            state.withLock { state in RepoFileSystem.lookupPath(state.table, path).flatMap { state.table.nodes[$0] } }
        }

        func bytes(_ path: String) throws -> String {
            guard case .data(let id)? = node(path)?.content else { return "(no data file)" }
            return String(decoding: try readFile(journal.dataPath(id)), as: UTF8.self)
        }

        /// A node as a listing or a write would leave it.
        func insert(_ path: String, kind: NodeKind, permissions: UInt32? = nil, content: FileContent = .none) {
            state.withLock { state in
                let now = Timestamp.now()
                let parent = RepoFileSystem.lookupPath(state.table, parentPath(path)) ?? InodeTable.rootIno
                let node = Node(ino: state.table.allocateIno(), parent: parent, name: lastComponent(path), kind: kind,
                                permissions: permissions ?? (kind == .directory ? 0o755 : 0o644), uid: 1234, gid: 5678, size: 0, atime: now, mtime: now, ctime: now,
                                content: content, children: kind == .directory ? [:] : nil)
                state.table.insert(node)
                state.table.noteMetadata(node.ino)
            }
        }
    }

    @Test func replayRebuildsTheLocalTreeFromItsRecords() throws {
        let h = try Harness()
        let large = try h.journal.createData(with: Data("written before the crash".utf8))
        let losses = try h.overlay.replay([
            .mkdir(path: "d", permissions: 0o750),
            .file(path: "d/f", data: 12345, permissions: 0o644, inline: Data("hello".utf8)),
            .file(path: "big", data: large, permissions: 0o644),
            .symlink(path: "ln", target: "d/f"),
            .rename(from: "ln", to: "ln2"),
            .special(path: "pipe", kind: .fifo, permissions: 0o640, rdev: 0),
            .attributes(path: "pipe", permissions: 0o600, uid: 1000, gid: 1000),
            .link(from: "d/f", to: "hard"),
            .chmod(path: "d/f", permissions: 0o755),
            .file(path: "gone", data: 54321, permissions: 0o644, inline: Data("x".utf8)),
            .remove(path: "gone"),
        ], host: TableHost(h.state))
        #expect(losses.isEmpty)
        #expect(!h.journal.isMuted, "the journal records again after a replay")
        let d = try #require(h.node("d"))
        #expect(d.kind == .directory && d.permissions == 0o750 && d.uid == 1234 && d.gid == 5678)
        let f = try #require(h.node("d/f"))
        #expect(f.kind == .file && f.size == 5 && f.permissions == 0o755)
        #expect(try h.bytes("d/f") == "hello")
        #expect(f.content != .data(12345), "inline bytes go to a fresh data file")
        #expect(try h.bytes("big") == "written before the crash" && h.node("big")?.content == .data(large))
        #expect(h.node("hard")?.ino == f.ino && f.links.count == 1)
        #expect(h.node("ln") == nil && h.node("ln2")?.content == .target("d/f"))
        let pipe = try #require(h.node("pipe"))
        #expect(pipe.kind == .fifo && pipe.permissions == 0o600 && pipe.uid == 1000)
        #expect(h.node("gone") == nil)
        let touched = h.state.withLock { Set($0.table.touched.keys) }
        #expect(touched.isSuperset(of: ["d", "d/f", "big", "ln", "ln2", "pipe", "hard", "gone"]), "replayed work is uploaded again")
    }

    @Test func aMissingDataFileIsReportedAndKeepsThePreviousStateUnlessALaterRecordSettlesIt() throws {
        let h = try Harness()
        h.insert("kept", kind: .file, content: .blob("0123456789abcdef0123456789abcdef01234567"))
        let losses = try h.overlay.replay([
            .file(path: "kept", data: 901, permissions: 0o644),
            .file(path: "new", data: 902, permissions: 0o644),
            .file(path: "deleted", data: 903, permissions: 0o644),
            .remove(path: "deleted"),
            .file(path: "moved", data: 904, permissions: 0o644),
            .rename(from: "moved", to: "moved2"),
        ], host: TableHost(h.state))
        #expect(losses == ["kept", "moved2", "new"])
        #expect(h.node("kept")?.content == .blob("0123456789abcdef0123456789abcdef01234567"), "never replayed as empty")
        #expect(h.node("new") == nil && h.node("deleted") == nil && h.node("moved2") == nil)
    }

    @Test func aRecordThatNoLongerFitsIsSkippedButAnUnreachableBackendStopsTheReplay() throws {
        let h = try Harness()
        let losses = try h.overlay.replay([
            .file(path: "no/such/dir/f", data: 1, permissions: 0o644, inline: Data("x".utf8)),
            .link(from: "missing", to: "link"),
            .mkdir(path: "after", permissions: 0o755),
        ], host: TableHost(h.state))
        #expect(losses.isEmpty)
        #expect(h.node("after")?.kind == .directory && h.node("link") == nil && h.node("no") == nil)

        let offline = try Harness()
        expectErrno(EIO) {
            try offline.overlay.replay([.mkdir(path: "a", permissions: 0o755)], host: TableHost(offline.state, unreachable: true))
        }
        #expect(offline.node("a") == nil && !offline.journal.isMuted)
    }

    @Test func discardedDataFilesGoBackToThePoolExceptDuringReplay() throws {
        let h = try Harness()
        let (used, descriptor) = try h.journal.createData()
        close(descriptor)
        h.journal.setMuted(true)
        h.overlay.discard([used])
        #expect(!h.journal.pooledData.contains(used), "a replay never frees a data file")
        h.journal.setMuted(false)
        h.overlay.discard([used])
        #expect(h.journal.pooledData.contains(used))
        h.journal.waitForRefills()
    }

    @Test func onlyWhatNoUploadCanRecreateIsRecorded() throws {
        let h = try Harness()
        h.insert("empty", kind: .directory)
        h.insert("src", kind: .directory)
        let source = try h.journal.createData(with: Data("code".utf8))
        h.insert("src/a.swift", kind: .file, content: .data(source))
        h.insert(".git", kind: .directory)
        let head = try h.journal.createData(with: Data("ref: refs/heads/main".utf8))
        h.insert(".git/HEAD", kind: .file, content: .data(head))
        h.insert("pipe", kind: .fifo, permissions: 0o600)
        let rules = IgnoreRules(mesaignore: nil)
        let table = h.state.withLock { $0.table }
        let records = LocalOverlay.unversionedRecords(table, withFiles: true, rules: rules)
        #expect(records.contains(.mkdir(path: "empty", permissions: 0o755)))
        #expect(records.contains(.mkdir(path: ".git", permissions: 0o755)))
        #expect(records.contains(.file(path: ".git/HEAD", data: head, permissions: 0o644)))
        #expect(records.contains(.special(path: "pipe", kind: .fifo, permissions: 0o600, rdev: 0)))
        #expect(records.contains(.attributes(path: "pipe", permissions: 0o600, uid: 1234, gid: 5678)))
        #expect(!records.flatMap(\.paths).contains { $0.hasPrefix("src") }, "uploadable content comes back from the store")
        let withoutFiles = LocalOverlay.unversionedRecords(table, withFiles: false, rules: rules)
        #expect(!withoutFiles.contains { if case .file = $0 { true } else { false } })
        #expect(withoutFiles.contains(.mkdir(path: ".git", permissions: 0o755)))
    }
}
