import Foundation

/// Decodes `Decodable` types straight from a `JSONValue` tree.
///
/// Exists because Foundation's `JSONDecoder` loses the coding path for some wrong
/// types (a fractional number for an `Int` field is reported as "not valid JSON" at the
/// root), and the transport promises to name the offending field. It also saves
/// re-serialising parameters just to parse them again.
///
/// Compatible with `JSONEncoder`'s defaults, so values encoded by Foundation decode
/// here: `Data` as base64, `URL` as a string, `Date` as seconds since 2001.
public enum JSONValueDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try unbox(value, as: type, path: [])
    }

    static func unbox<T: Decodable>(_ value: JSONValue, as type: T.Type, path: [any CodingKey]) throws -> T {
        // A JSONValue field keeps the raw tree. The metatype test first spares every
        // other value a dynamic cast.
        if T.self == JSONValue.self, let raw = value as? T { return raw }
        if T.self == Data.self {
            guard case .string(let string) = value else { throw mismatch(type, "a base64 string", value, path) }
            guard let data = Data(base64Encoded: string) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "expected base64 data"))
            }
            return try cast(data, path)
        }
        if T.self == URL.self {
            guard case .string(let string) = value else { throw mismatch(type, "a URL string", value, path) }
            guard let url = URL(string: string) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "'\(string)' is not a valid URL"))
            }
            return try cast(url, path)
        }
        if T.self == Decimal.self {
            switch value {
            case .int(let i): return try cast(Decimal(i), path)
            case .double(let d): return try cast(Decimal(d), path)
            default: throw mismatch(type, "a number", value, path)
            }
        }
        return try T(from: ValueDecoder(value: value, codingPath: path))
    }

    private static func cast<T, U>(_ value: U, _ path: [any CodingKey]) throws -> T {
        guard let result = value as? T else {
            throw DecodingError.typeMismatch(T.self, .init(codingPath: path, debugDescription: "internal type mismatch"))
        }
        return result
    }

    static func mismatch(_ type: Any.Type, _ expected: String, _ found: JSONValue, _ path: [any CodingKey]) -> DecodingError {
        if found.isNull {
            return .valueNotFound(type, .init(codingPath: path, debugDescription: "expected \(expected), found null"))
        }
        return .typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(expected), found \(describe(found))"))
    }

    /// A short, bounded rendering of what was found, for error messages.
    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return "the boolean \(b)"
        case .int(let i): return "the number \(i)"
        case .double(let d): return "the number \(d)"
        case .string(let s): return s.count <= 40 ? "the string \"\(s)\"" : "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    // The scalar readers take the coding path as a closure: it is only needed for an
    // error. Not building `codingPath + [key]` for every field (and the cast above) took
    // decoding a 1,000-entry listing from 4.58 to 3.94 ms (bench/json.sh).
    typealias Path = () -> [any CodingKey]

    static func bool(_ value: JSONValue, _ path: Path) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch(Bool.self, "a boolean", value, path()) }
        return b
    }

    static func string(_ value: JSONValue, _ path: Path) throws -> String {
        guard case .string(let s) = value else { throw mismatch(String.self, "a string", value, path()) }
        return s
    }

    static func integer<I: FixedWidthInteger>(_ value: JSONValue, _ type: I.Type, _ path: Path) throws -> I {
        switch value {
        case .int(let i):
            guard let result = I(exactly: i) else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: path(), debugDescription: "the number \(i) is out of range for \(I.self)"))
            }
            return result
        case .double(let d) where d.rounded() == d:
            // 3.0 and 1e3 are integers written differently; accept them when exact.
            guard let result = I(exactly: d) else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: path(), debugDescription: "the number \(d) is out of range for \(I.self)"))
            }
            return result
        default:
            throw mismatch(type, "an integer", value, path())
        }
    }

    static func floating<F: BinaryFloatingPoint>(_ value: JSONValue, _ type: F.Type, _ path: Path) throws -> F {
        switch value {
        case .int(let i): return F(i)
        case .double(let d): return F(d)
        default: throw mismatch(type, "a number", value, path())
        }
    }
}

/// An index in an array, named like Foundation's ("Index 3") so paths read alike.
struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { return nil }
}

private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = value else {
            throw JSONValueDecoder.mismatch([String: JSONValue].self, "an object", value, codingPath)
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let array) = value else {
            throw JSONValueDecoder.mismatch([JSONValue].self, "an array", value, codingPath)
        }
        return UnkeyedContainer(array: array, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueContainer(value: value, codingPath: codingPath)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

    private func value(_ key: Key) throws -> JSONValue {
        guard let value = object[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "required field is missing"))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try value(key).isNull }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try JSONValueDecoder.bool(value(key), { codingPath + [key] })
    }
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try JSONValueDecoder.string(value(key), { codingPath + [key] })
    }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try JSONValueDecoder.floating(value(key), type, { codingPath + [key] })
    }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        try JSONValueDecoder.floating(value(key), type, { codingPath + [key] })
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(key) }

    private func integer<I: FixedWidthInteger>(_ key: Key) throws -> I {
        try JSONValueDecoder.integer(value(key), I.self, { codingPath + [key] })
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONValueDecoder.unbox(value(key), as: type, path: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        ValueDecoder(value: object["super"] ?? .null, codingPath: codingPath)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        ValueDecoder(value: object[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let array: [JSONValue]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(array: [JSONValue], codingPath: [any CodingKey]) {
        self.array = array
        self.codingPath = codingPath
    }

    var count: Int? { array.count }
    var isAtEnd: Bool { currentIndex >= array.count }

    private var path: [any CodingKey] { codingPath + [IndexKey(intValue: currentIndex)] }

    private var endOfArray: String { "the array has only \(array.count) elements" }

    /// Decodes the current element; advances only on success, as Foundation does.
    private mutating func take<T>(_ body: (JSONValue, JSONValueDecoder.Path) throws -> T) throws -> T {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(T.self, .init(codingPath: path, debugDescription: endOfArray))
        }
        let (parent, index) = (codingPath, currentIndex)
        let result = try body(array[currentIndex], { parent + [IndexKey(intValue: index)] })
        currentIndex += 1
        return result
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: path, debugDescription: endOfArray))
        }
        if array[currentIndex].isNull {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try take(JSONValueDecoder.bool) }
    mutating func decode(_ type: String.Type) throws -> String { try take(JSONValueDecoder.string) }
    mutating func decode(_ type: Double.Type) throws -> Double { try take { try JSONValueDecoder.floating($0, type, $1) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try take { try JSONValueDecoder.floating($0, type, $1) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try integer() }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try integer() }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }

    private mutating func integer<I: FixedWidthInteger>() throws -> I {
        try take { try JSONValueDecoder.integer($0, I.self, $1) }
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try take { try JSONValueDecoder.unbox($0, as: type, path: $1()) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try take { try ValueDecoder(value: $0, codingPath: $1()).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try take { try ValueDecoder(value: $0, codingPath: $1()).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder {
        try take { ValueDecoder(value: $0, codingPath: $1()) }
    }
}

private struct SingleValueContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value.isNull }
    func decode(_ type: Bool.Type) throws -> Bool { try JSONValueDecoder.bool(value, { codingPath }) }
    func decode(_ type: String.Type) throws -> String { try JSONValueDecoder.string(value, { codingPath }) }
    func decode(_ type: Double.Type) throws -> Double { try JSONValueDecoder.floating(value, type, { codingPath }) }
    func decode(_ type: Float.Type) throws -> Float { try JSONValueDecoder.floating(value, type, { codingPath }) }
    func decode(_ type: Int.Type) throws -> Int { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: Int8.Type) throws -> Int8 { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: Int16.Type) throws -> Int16 { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: Int32.Type) throws -> Int32 { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: Int64.Type) throws -> Int64 { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: UInt.Type) throws -> UInt { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONValueDecoder.integer(value, type, { codingPath }) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONValueDecoder.unbox(value, as: type, path: codingPath)
    }
}
