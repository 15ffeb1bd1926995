import Foundation
import Model
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

/// Timestamps travel as ISO-8601 strings with milliseconds (`WireTime`).
public enum Timestamp {
    public static func string(_ date: Date) -> String { WireTime.string(date) }
    public static func string(_ date: Date?) -> String? { date.map(string) }
}
