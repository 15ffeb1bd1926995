import Foundation
import Model

/// A filter over `{key: value}` tags, as the repo list's `tags` parameter takes it.
/// Two spellings:
/// - legacy: `env:prod,team:agents` — every pair must match;
/// - JSON: `{"env": "prod", "team": ["a","b"], "owner": {"$starts_with": "ada"},
///   "$or": [...], "$and": [...], "$not": {...}}` with the operators `$eq`, `$in`,
///   `$contains`, `$starts_with`, `$ends_with`, `$exists`.
/// Matching is case-insensitive for keys and values (keys are stored lower-cased).
public indirect enum TagFilter: Sendable, Equatable {
    case all([TagFilter])
    case any([TagFilter])
    case not(TagFilter)
    case equals(key: String, value: String)
    case oneOf(key: String, values: [String])
    case contains(key: String, text: String)
    case startsWith(key: String, text: String)
    case endsWith(key: String, text: String)
    case exists(key: String, Bool)

    /// Parses either spelling; a JSON object is recognised by its leading `{`.
    public static func parse(_ text: String) throws -> TagFilter {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("{") else { return try legacy(trimmed) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) else {
            throw MesaError.invalid("invalid tags filter: it starts with '{' but is not valid JSON")
        }
        return try filter(object, at: "tags")
    }

    public func matches(_ tags: [String: String]) -> Bool {
        func value(_ key: String) -> String? { tags[key.lowercased()]?.lowercased() }
        switch self {
        case .all(let filters): return filters.allSatisfy { $0.matches(tags) }
        case .any(let filters): return filters.contains { $0.matches(tags) }
        case .not(let filter): return !filter.matches(tags)
        case .equals(let key, let expected): return value(key) == expected.lowercased()
        case .oneOf(let key, let values): return value(key).map { v in values.contains { $0.lowercased() == v } } ?? false
        case .contains(let key, let text): return value(key)?.contains(text.lowercased()) ?? false
        case .startsWith(let key, let text): return value(key)?.hasPrefix(text.lowercased()) ?? false
        case .endsWith(let key, let text): return value(key)?.hasSuffix(text.lowercased()) ?? false
        case .exists(let key, let wanted): return (value(key) != nil) == wanted
        }
    }

    // MARK: Parsing

    private static func legacy(_ text: String) throws -> TagFilter {
        var pairs: [TagFilter] = []
        for item in text.split(separator: ",") {
            let item = item.trimmingCharacters(in: .whitespaces)
            guard let colon = item.firstIndex(of: ":"), colon != item.startIndex else {
                throw MesaError.invalid("invalid tags filter item '\(item.prefix(100))': use key:value pairs separated by commas, or a JSON filter object")
            }
            pairs.append(.equals(key: String(item[..<colon]), value: String(item[item.index(after: colon)...])))
        }
        return .all(pairs)
    }

    private static func filter(_ json: Any, at where_: String) throws -> TagFilter {
        guard let object = json as? [String: Any] else {
            throw MesaError.invalid("invalid tags filter at \(where_): expected a JSON object")
        }
        var parts: [TagFilter] = []
        for key in object.keys.sorted() {
            let value = object[key]!
            switch key {
            case "$and", "$or":
                guard let list = value as? [Any] else {
                    throw MesaError.invalid("invalid tags filter: '\(key)' takes an array of filter objects")
                }
                let filters = try list.enumerated().map { try filter($1, at: "\(key)[\($0)]") }
                parts.append(key == "$and" ? .all(filters) : .any(filters))
            case "$not":
                parts.append(.not(try filter(value, at: "$not")))
            default:
                if key.hasPrefix("$") {
                    throw MesaError.invalid("invalid tags filter: unknown operator '\(key.prefix(40))' (use $and, $or or $not at this level)")
                }
                parts.append(try condition(key: key, value))
            }
        }
        return parts.count == 1 ? parts[0] : .all(parts)
    }

    private static func condition(key: String, _ value: Any) throws -> TagFilter {
        if let text = value as? String { return .equals(key: key, value: text) }
        if let list = value as? [Any] { return .oneOf(key: key, values: try strings(list, key: key, op: "[]")) }
        guard let operators = value as? [String: Any] else {
            throw MesaError.invalid("invalid tags filter for '\(key.prefix(64))': expected a string, an array of strings or an operator object")
        }
        var parts: [TagFilter] = []
        for op in operators.keys.sorted() {
            let argument = operators[op]!
            func text() throws -> String {
                guard let text = argument as? String else {
                    throw MesaError.invalid("invalid tags filter: '\(key.prefix(64))'.\(op) takes a string")
                }
                return text
            }
            switch op {
            case "$eq": parts.append(.equals(key: key, value: try text()))
            case "$in":
                guard let list = argument as? [Any] else {
                    throw MesaError.invalid("invalid tags filter: '\(key.prefix(64))'.$in takes an array of strings")
                }
                parts.append(.oneOf(key: key, values: try strings(list, key: key, op: op)))
            case "$contains": parts.append(.contains(key: key, text: try text()))
            case "$starts_with": parts.append(.startsWith(key: key, text: try text()))
            case "$ends_with": parts.append(.endsWith(key: key, text: try text()))
            case "$exists":
                guard let flag = argument as? Bool else {
                    throw MesaError.invalid("invalid tags filter: '\(key.prefix(64))'.$exists takes true or false")
                }
                parts.append(.exists(key: key, flag))
            default:
                throw MesaError.invalid("invalid tags filter: unknown operator '\(op.prefix(40))' for '\(key.prefix(64))'; use $eq, $in, $contains, $starts_with, $ends_with or $exists")
            }
        }
        return parts.count == 1 ? parts[0] : .all(parts)
    }

    private static func strings(_ list: [Any], key: String, op: String) throws -> [String] {
        try list.map {
            guard let text = $0 as? String else {
                throw MesaError.invalid("invalid tags filter: '\(key.prefix(64))' \(op) must list strings only")
            }
            return text
        }
    }
}
