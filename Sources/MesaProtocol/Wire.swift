import Foundation
@_exported import RPC

/// A Mesa JSON-RPC method: its name, parameters and result, shared by mesad and its
/// clients. Parameters and results are camelCase JSON objects (never bare arrays), so
/// fields can be added without breaking anyone.
public protocol MesaMethod: RPCMethod where Params: Encodable, Result: Decodable {}

/// The result of methods that only succeed or fail.
public struct OK: Codable, Sendable, Equatable {
    public var ok: Bool
    public init() { ok = true }
}

/// Timestamps travel as ISO-8601 strings with milliseconds.
public enum Timestamp {
    public static func string(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    public static func string(_ date: Date?) -> String? { date.map(string) }
}
