import Foundation
@testable import MesaDaemon
import Model
import Testing

/// `openRepo` / `closeRepo`'s edits of config.toml: the rest of the file kept as written,
/// what the daemon reads back is what was asked, and an edit it cannot make changes nothing.
@Suite struct ConfigEditorTests {
    let directory: String
    let file: String

    init() throws {
        directory = try makeTemporaryDirectory("mesa-config-editor")
        file = directory + "/config.toml"
    }

    func write(_ text: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: file)) }
    func text() -> String { (try? String(contentsOfFile: file, encoding: .utf8)) ?? "" }
    func org(_ name: String) throws -> OrgConfig? {
        try DaemonConfig.load(.init(configPath: file, environment: ["HOME": directory])).organizations.first { $0.name == name }
    }

    @Test func openAddsATableAndKeepsCommentsAndPins() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let original = """
            # mine
            mount-point = "/tmp/x"   # where

            [organizations.acme]
            mount = "explicit" # keep me
            [organizations.acme.repos.web]
            rev = { bookmark = "stable" }
            """
        try write(original)
        try ConfigEditor.addRepo("docs", org: "acme", file: file)
        #expect(text().hasPrefix(original), "the file was rewritten: \(text())")
        #expect(try org("acme")?.repos.map(\.name).sorted() == ["docs", "web"])
        #expect(try org("acme")?.repos.first { $0.name == "web" }?.rev == .bookmark("stable"))
        // Opening twice changes nothing more.
        let once = text()
        try ConfigEditor.addRepo("docs", org: "acme", file: file)
        #expect(text() == once)
    }

    @Test func closeRemovesOnlyThatTableAndKeepsTheOrgExplicit() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("""
            # mine
            [organizations.acme.repos.web]
            rev = { bookmark = "stable" } # pinned

            [organizations.acme.repos."odd name"]
            [organizations.other]
            api-key = "k"
            """)
        try ConfigEditor.removeRepo("odd name", org: "acme", file: file)
        #expect(try org("acme")?.repos.map(\.name) == ["web"])
        #expect(text().contains("# pinned") && text().contains("api-key = \"k\""))
        // The last repo: the org had no `mount`, so it says explicit now instead of turning `all`.
        try ConfigEditor.removeRepo("web", org: "acme", file: file)
        #expect(try org("acme")?.repos.isEmpty == true)
        #expect(try org("acme")?.mount == .explicit, "\(text())")
        #expect(try org("other")?.apiKey == "k")
        #expect(text().hasPrefix("# mine\n"))
    }

    @Test func namesThatNeedQuotingRoundTrip() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("[organizations.\"acme corp\"]\nmount = \"explicit\"\n")
        try ConfigEditor.addRepo("a.b", org: "acme corp", file: file)
        #expect(try org("acme corp")?.repos.map(\.name) == ["a.b"])
        try ConfigEditor.removeRepo("a.b", org: "acme corp", file: file)
        #expect(try org("acme corp")?.repos.isEmpty == true)
        #expect(try org("acme corp")?.mount == .explicit)
    }

    @Test func anEditItCannotMakeChangesNothingAndSaysWhy() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // An inline table cannot be extended by a [header], nor has a header to remove.
        let original = "[organizations.acme]\nmount = \"explicit\"\nrepos = { web = {} }\n"
        try write(original)
        #expect(throws: MesaError.self) { try ConfigEditor.addRepo("docs", org: "acme", file: file) }
        #expect(text() == original)
        do {
            try ConfigEditor.removeRepo("web", org: "acme", file: file)
            Issue.record("removing an inline repo succeeded")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("by hand"), "\(error.message)")
        }
        #expect(text() == original)
        // A file that does not parse is never written.
        try write("[organizations.acme\n")
        #expect(throws: MesaError.self) { try ConfigEditor.addRepo("docs", org: "acme", file: file) }
        #expect(text() == "[organizations.acme\n")
    }

    @Test func theFileKeepsItsMode() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("[organizations.acme]\nmount = \"explicit\"\n")
        chmod(file, 0o640)
        try ConfigEditor.addRepo("docs", org: "acme", file: file)
        var info = stat()
        #expect(stat(file, &info) == 0 && info.st_mode & 0o777 == 0o640)
    }
}
