import Foundation
import TOMLKit

/// `config.toml` (and the secrets file, which has its `[organizations.<org>] api-key`
/// shape) as TOMLKit's Codable decoder and encoder see it: every key optional, values
/// checked afterwards by `DaemonConfig` with the messages users know.
struct ConfigFile: Codable, Equatable {
    var mountPoint: String?
    var apiURL: String?
    var cache: Cache?
    var daemon: DaemonSection?
    var organizations: [String: Organization]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mountPoint = "mount-point", apiURL = "api-url", cache, daemon, organizations
    }

    struct Cache: Codable, Equatable {
        var path: String?
        var maxSize: ByteSize?
        var prefetch: String?

        enum CodingKeys: String, CodingKey { case path, maxSize = "max-size", prefetch }
    }

    struct DaemonSection: Codable, Equatable {
        var logLevel: String?
        var logFile: String?
        var maxFrameSize: ByteSize?
        var maxConnections: Int?
        var flushDebounceMilliseconds: Int?
        var followIntervalMilliseconds: Int?
        var durability: String?
        var allowOther: Bool?

        enum CodingKeys: String, CodingKey {
            case logLevel = "log-level", logFile = "log-file", maxFrameSize = "max-frame-size"
            case maxConnections = "max-connections"
            case flushDebounceMilliseconds = "flush-debounce-ms", followIntervalMilliseconds = "follow-interval-ms", durability
            case allowOther = "allow-other"
        }
    }

    struct Organization: Codable, Equatable {
        var apiKey: String?
        var mount: String?
        var repos: [String: Repo]?

        enum CodingKeys: String, CodingKey { case apiKey = "api-key", mount, repos }
    }

    struct Repo: Codable, Equatable {
        var rev: Revision?
    }

    struct Revision: Codable, Equatable {
        var bookmark: String?
        var changeID: String?

        enum CodingKeys: String, CodingKey { case bookmark, changeID = "change-id" }
    }

    /// A size as written: a number of bytes or a string such as "10GB".
    enum ByteSize: Codable, Equatable {
        case bytes(Int)
        case text(String)

        init(from decoder: any Decoder) throws {
            let value = try decoder.singleValueContainer()
            if let number = try? value.decode(Int.self) {
                self = .bytes(number)
            } else {
                self = .text(try value.decode(String.self))
            }
        }

        func encode(to encoder: any Encoder) throws {
            var value = encoder.singleValueContainer()
            switch self {
            case .bytes(let number): try value.encode(number)
            case .text(let text): try value.encode(text)
            }
        }
    }

    // MARK: Reading

    /// Parses and decodes `text`; `source` names the file in errors. Also returns the
    /// top-level keys, so unknown ones can be reported.
    static func decode(_ text: String, source: String) throws -> (ConfigFile, keys: [String]) {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw ConfigError("\(source): invalid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        }
        do {
            return (try TOMLDecoder().decode(ConfigFile.self, from: table), table.keys.sorted())
        } catch let error as DecodingError {
            throw ConfigError("\(source): \(describe(error))")
        }
    }

    /// "cache.max-size must be a size …": the key and what it must hold. TOMLKit reports
    /// a value of the wrong type as a missing key of the expected type; every key here
    /// is optional, so a decoding error always means a value of the wrong type.
    static func describe(_ error: DecodingError) -> String {
        let path: [any CodingKey]
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context): path = context.codingPath
        case .keyNotFound(let key, let context):
            path = context.codingPath.last?.stringValue == key.stringValue ? context.codingPath : context.codingPath + [key]
        @unknown default: return "\(error)"
        }
        let names = path.map(\.stringValue)
        return "\(names.joined(separator: ".")) must be \(expectation(names))"
    }

    /// What the value at `path` must be; org and repo names are the user's.
    static func expectation(_ path: [String]) -> String {
        var shape = path
        if shape.count > 1, shape[0] == "organizations" { shape[1] = "*" }
        if shape.count > 3, shape[2] == "repos" { shape[3] = "*" }
        switch shape.joined(separator: ".") {
        case "cache", "daemon", "organizations", "organizations.*", "organizations.*.repos", "organizations.*.repos.*",
             "organizations.*.repos.*.rev":
            return "a table"
        case "cache.max-size", "daemon.max-frame-size": return "a size such as \"10GB\" or \"512MB\""
        case "daemon.flush-debounce-ms": return flushDebounceRange
        case "daemon.follow-interval-ms": return followIntervalRange
        case "daemon.max-connections": return maxConnectionsRange
        default: return "a string"
        }
    }

    static let maxConnectionsRange = "an integer from 1 to 1000000"
    static let flushDebounceRange = "an integer from 0 to 60000"
    static let followIntervalRange = "an integer from 0 (never follow) to 3600000 milliseconds"

    // MARK: Writing

    /// TOML for this file, `header` (comment lines) first. Strings are written by
    /// TOMLKit, escaped as TOML requires, whatever characters they hold.
    func toml(header: String) throws -> String {
        let body: String = try TOMLEncoder(options: [.allowUnicodeStrings]).encode(self)
        return header + "\n\n" + body + (body.hasSuffix("\n") ? "" : "\n")
    }
}
