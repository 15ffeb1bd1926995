import Foundation
import Model
import Testing

/// The one classification: each projection of a code is what protocol.md and the REST
/// API promise, and an explicit errno changes nothing but the errno.
@Suite struct MesaErrorTests {
    static let errnoNames: [String: Int32] = [
        "EINVAL": EINVAL, "EIO": EIO, "ENOENT": ENOENT, "EEXIST": EEXIST, "EAGAIN": EAGAIN, "EBUSY": EBUSY,
        "EACCES": EACCES, "EROFS": EROFS, "EHOSTUNREACH": EHOSTUNREACH, "ENOSPC": ENOSPC,
    ]

    /// Rows of protocol.md's error table naming a Mesa code: (rpc code, name, class, errno).
    static func documentedRows() throws -> [String: (rpc: Int, errorClass: String, errno: String)] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("protocol.md").path
        var rows: [String: (Int, String, String)] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 6, cells[2].hasPrefix("`"),
                  let rpc = Int(cells[1].replacingOccurrences(of: "\u{2212}", with: "-")) else { continue }
            rows[cells[2].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = (rpc, cells[3], cells[4])
        }
        return rows
    }

    @Test func everyCodeIsDocumentedWithItsRPCCodeClassAndErrno() throws {
        let rows = try Self.documentedRows()
        #expect(rows.count == MesaError.Code.allCases.count, "protocol.md rows: \(rows.keys.sorted())")
        for code in MesaError.Code.allCases {
            let error = MesaError(code, "m")
            let row = try #require(rows[error.name], "protocol.md has no row for \(error.name)")
            #expect(error.rpcCode == row.rpc, "\(error.name)")
            #expect(error.errorClass.rawValue == row.errorClass, "\(error.name)")
            #expect(error.errno == Self.errnoNames[row.errno], "\(error.name)")
        }
    }

    @Test func httpStatusesAreTheRESTOnes() {
        let expected: [MesaError.Code: Int] = [
            .invalidArgument: 400, .unauthenticated: 401, .keyExpired: 401, .keyRevoked: 401, .forbidden: 403,
            .readOnly: 403, .notFound: 404, .alreadyExists: 409, .conflict: 409, .mergeConflict: 409,
            .unavailable: 503, .noSpace: 507, .internal: 500,
        ]
        for code in MesaError.Code.allCases {
            #expect(MesaError(code, "m").httpStatus == expected[code], "\(code)")
        }
    }

    @Test func anExplicitErrnoChangesOnlyTheErrno() {
        let error = MesaError(.invalidArgument, "not a directory", errno: ENOTDIR)
        #expect(error.errno == ENOTDIR)
        #expect(error.errorClass == .badInput && error.rpcCode == -32602 && error.httpStatus == 400)
        #expect(MesaError(.invalidArgument, "m") == MesaError(.invalidArgument, "m", errno: EINVAL))
    }

    @Test func foreignErrorsAreInternalAndMesaErrorsPassThrough() {
        struct Other: Error {}
        #expect(MesaError.from(Other()).code == .internal)
        #expect(MesaError.from(MesaError.notFound("gone")) == MesaError.notFound("gone"))
    }

    @Test func badIdsAndNamesThrowInvalidArgument() {
        #expect(throws: MesaError.self) { try ChangeID("nope") }
        do { _ = try ChangeID("nope") } catch { #expect(error.code == .invalidArgument && error.message.contains("nope")) }
        do { try Validation.repoName("a/b") } catch { #expect(error.code == .invalidArgument) }
    }
}
