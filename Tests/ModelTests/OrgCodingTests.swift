import Foundation
import Model
import Testing

/// `whoami` sends the Model `Org` itself: its JSON must stay what `OrgInfo` sent.
@Suite struct OrgCodingTests {
    let org = Org(id: "org_0123", slug: "acme", name: "Acme/Inc", createdAt: Date(timeIntervalSince1970: 1_700_000_000.125))

    /// The transport's settings (`RPC.EncodedJSON`).
    func encoded(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Same keys and values (Foundation on Linux does not keep key order, for OrgInfo neither).
    @Test func encodesTheJSONRPCShape() throws {
        let object = try JSONDecoder().decode([String: String].self, from: Data(try encoded(org).utf8))
        #expect(object == ["id": "org_0123", "slug": "acme", "name": "Acme/Inc", "createdAt": "2023-11-14T22:13:20.125Z"])
        #expect(try encoded(org).contains(#""Acme/Inc""#), "slashes unescaped as before")
    }

    @Test func roundTripsToTheMillisecond() throws {
        let decoded = try JSONDecoder().decode(Org.self, from: Data(try encoded(org).utf8))
        #expect(decoded == org)
    }

    @Test func aCreatedAtThatIsNotATimeIsRefusedNamingIt() {
        let json = #"{"id":"o","slug":"s","name":"n","createdAt":"yesterday"}"#
        #expect { try JSONDecoder().decode(Org.self, from: Data(json.utf8)) } throws: { error in
            "\(error)".contains("yesterday")
        }
    }
}
