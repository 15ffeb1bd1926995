// JSON benchmark: decoding and encoding of three typical JSON-RPC frames with the
// project's parser (RPC's JSONParser + JSONValueDecoder, Foundation's JSONEncoder for
// results, as the daemon does today), Foundation's JSONDecoder/JSONEncoder and
// JSONSerialization, and libjansson through a small C shim (CJanssonShim, dlopen'ed).
// Run it with `bash bench/json.sh` (release build).
//
//   json-bench [--samples 21] [--sample-ms 20] [--only small|listing|body]
//
// "end to end" rows do what the daemon does per frame: frame bytes -> the method's
// typed params (or result), and a typed result -> the frame bytes of the response.
// "tree" rows only parse to / print from a generic tree and are a lower bound for a
// path built on that library (jansson cannot decode into or encode from Swift types
// without a Decoder/Encoder written for it).
import CJanssonShim
import Foundation
import MesaProtocol
import RPC

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Options

struct Options {
    var samples = 21
    var sampleMilliseconds = 20.0
    var only: String?

    init() {
        var arguments = CommandLine.arguments.dropFirst()
        func value(_ flag: String) -> String {
            guard let next = arguments.popFirst() else { fail("\(flag) needs a value") }
            return next
        }
        while let flag = arguments.popFirst() {
            switch flag {
            case "--samples": samples = max(3, Int(value(flag)) ?? samples)
            case "--sample-ms": sampleMilliseconds = max(1, Double(value(flag)) ?? sampleMilliseconds)
            case "--only": only = value(flag)
            case "-h", "--help":
                print("usage: json-bench [--samples N] [--sample-ms MS] [--only small|listing|body]")
                exit(0)
            default: fail("unknown argument \(flag) (see --help)")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("json-bench: \(message)\n".utf8))
    exit(2)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Frames

/// A file write carrying its content inline: the shape of a large-body frame.
struct WriteParams: Codable, Sendable, Equatable {
    var mountId: String
    var path: String
    var offset: Int
    var content: Data
}

struct RequestEnvelope<P: Codable>: Codable {
    var jsonrpc = "2.0"
    var id: RequestID
    var method: String
    var params: P
}

struct ResponseEnvelope<R: Codable>: Codable {
    var jsonrpc = "2.0"
    var id: RequestID
    var result: R
}

/// What a Foundation-based transport reads first to route a frame (the method decides
/// the params type), before decoding the frame again with that type.
struct Head: Decodable {
    var jsonrpc: String
    var id: RequestID?
    var method: String?
}

enum Direction { case request(method: String), response }

/// One frame: its typed payload and how each library turns it into bytes and back.
struct Frame {
    let name: String
    let describe: String
    let bytes: [UInt8]
    let decoders: [(String, () throws -> Int)]
    let encoders: [(String, () throws -> Int)]

    init<T: Codable>(name: String, describe: String, payload: T, direction: Direction, check: @escaping (T) -> Int) throws {
        self.name = name
        self.describe = describe
        let id = RequestID.int(7)
        let slashless = JSONEncoder()
        slashless.outputFormatting = [.withoutEscapingSlashes]

        // The daemon's own encoding (MessageEncoder around a JSONEncoder payload).
        func ownEncode() throws -> [UInt8] {
            switch direction {
            case .request(let method): return MessageEncoder.request(id: id, method: method, params: try EncodedJSON(encoding: payload))
            case .response: return MessageEncoder.response(id: id, result: .success(try EncodedJSON(encoding: payload)))
            }
        }
        func foundationEncode() throws -> [UInt8] {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            switch direction {
            case .request(let method): return Array(try encoder.encode(RequestEnvelope(id: id, method: method, params: payload)))
            case .response: return Array(try encoder.encode(ResponseEnvelope(id: id, result: payload)))
            }
        }
        let bytes = try ownEncode()
        self.bytes = bytes
        let data = Data(bytes)
        let tree = try JSONValue.parse(bytes)
        let anyTree = try JSONSerialization.jsonObject(with: data)

        // Decoding, end to end: bytes -> the typed payload.
        func ownDecode(_ json: ParsedFrame) throws -> T {
            guard case .single(.message(let message)) = json else { throw BenchError("not a single valid message") }
            switch message {
            case .request(let request): return try (request.params ?? .object([:])).decode(T.self)
            case .response(let response): return try response.result.get().decode(T.self)
            case .notification: throw BenchError("unexpected notification")
            }
        }
        func foundationDecode() throws -> T {
            let data = Data(bytes)
            let decoder = JSONDecoder()
            let head = try decoder.decode(Head.self, from: data)
            if head.method != nil { return try decoder.decode(RequestEnvelope<T>.self, from: data).params }
            return try decoder.decode(ResponseEnvelope<T>.self, from: data).result
        }
        var decoders: [(String, () throws -> Int)] = [
            ("project: JSONParser+JSONValueDecoder (e2e)", { check(try ownDecode(MessageParser.parse(bytes))) }),
            ("Foundation JSONDecoder, head+typed (e2e)", { check(try foundationDecode()) }),
            ("Foundation JSONDecoder, typed only", {
                let data = Data(bytes)
                switch direction {
                case .request: return check(try JSONDecoder().decode(RequestEnvelope<T>.self, from: data).params)
                case .response: return check(try JSONDecoder().decode(ResponseEnvelope<T>.self, from: data).result)
                }
            }),
            ("project: JSONParser, tree only", { try JSONValue.parse(bytes).typeName.count }),
            ("Foundation JSONDecoder -> JSONValue, tree", { try JSONDecoder().decode(JSONValue.self, from: Data(bytes)).typeName.count }),
            ("JSONSerialization, tree only", { (try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)?.count ?? 0 }),
        ]
        var encoders: [(String, () throws -> Int)] = [
            ("project: MessageEncoder+JSONEncoder (e2e)", { try ownEncode().count }),
            ("Foundation JSONEncoder envelope (e2e)", { try foundationEncode().count }),
            ("project: JSONSerializer from tree", { tree.serialized.count }),
            ("JSONSerialization from tree", { try JSONSerialization.data(withJSONObject: anyTree).count }),
        ]
        if Jansson.available {
            decoders.append(("jansson -> JSONValue+JSONValueDecoder (e2e)", {
                let json = try Jansson.parse(bytes)
                defer { jshim_decref(json) }
                return check(try ownDecode(MessageParser.classify(Jansson.value(json))))
            }))
            decoders.append(("jansson, tree only", {
                let json = try Jansson.parse(bytes)
                defer { jshim_decref(json) }
                return Int(jshim_type(json))
            }))
            let janssonTree = Jansson.build(tree)
            let capacity = bytes.count + 64
            encoders.append(("jansson JSONValue -> json_t -> text", {
                let json = Jansson.build(tree)
                defer { jshim_decref(json) }
                return Jansson.dump(json, capacity: capacity).count
            }))
            encoders.append(("jansson dump from json_t, tree only", { Jansson.dump(janssonTree, capacity: capacity).count }))
        }
        self.decoders = decoders
        self.encoders = encoders

        // Every contender must produce the same thing before its speed means anything.
        let expected = check(payload)
        for (name, body) in decoders where name.contains("e2e") || name.contains("typed") {
            guard try body() == expected else { throw BenchError("\(self.name): \(name) decoded something else") }
        }
        let canonical = tree
        for output in [try foundationEncode(), tree.serialized, Array(try JSONSerialization.data(withJSONObject: anyTree))]
            + (Jansson.available ? [Jansson.dump(Jansson.build(tree), capacity: 16)] : [])
        {
            guard try JSONValue.parse(output) == canonical else { throw BenchError("\(self.name): an encoder wrote a different frame") }
        }
    }
}

// MARK: - jansson

enum Jansson {
    static let available: Bool = {
        if jshim_load() == 0 { return true }
        print("jansson: skipped (\(String(cString: jshim_load_error())))")
        return false
    }()

    static func parse(_ bytes: [UInt8]) throws -> UnsafeMutableRawPointer {
        var error = [CChar](repeating: 0, count: 256)
        let json = bytes.withUnsafeBufferPointer { input in
            error.withUnsafeMutableBufferPointer { jshim_parse(input.baseAddress, input.count, $0.baseAddress, $0.count) }
        }
        guard let json else {
            let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw BenchError("jansson: \(message)")
        }
        return json
    }

    /// json_t -> JSONValue, so the daemon's classification and typed decoding can run on it.
    static func value(_ json: UnsafeMutableRawPointer) -> JSONValue {
        switch Int(jshim_type(json)) {
        case Int(JSHIM_OBJECT):
            var object: [String: JSONValue] = [:]
            var iter = jshim_object_iter(json)
            while let current = iter {
                if let key = jshim_object_iter_key(current), let child = jshim_object_iter_value(current) {
                    object[String(cString: key)] = value(child)
                }
                iter = jshim_object_iter_next(json, current)
            }
            return .object(object)
        case Int(JSHIM_ARRAY):
            let count = jshim_array_size(json)
            var array: [JSONValue] = []
            array.reserveCapacity(count)
            for index in 0..<count {
                if let child = jshim_array_get(json, index) { array.append(value(child)) }
            }
            return .array(array)
        case Int(JSHIM_STRING):
            var length = 0
            guard let pointer = jshim_string(json, &length) else { return .string("") }
            return .string(String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self))
        case Int(JSHIM_INTEGER): return .int(Int(jshim_integer(json)))
        case Int(JSHIM_REAL): return .double(jshim_real(json))
        case Int(JSHIM_TRUE): return .bool(true)
        case Int(JSHIM_FALSE): return .bool(false)
        default: return .null
        }
    }

    static func build(_ value: JSONValue) -> UnsafeMutableRawPointer {
        switch value {
        case .null: return jshim_new_null()
        case .bool(let b): return jshim_new_bool(b ? 1 : 0)
        case .int(let i): return jshim_new_integer(Int64(i))
        case .double(let d): return jshim_new_real(d)
        case .string(var s): return s.withUTF8 { jshim_new_string($0.baseAddress, $0.count) }
        case .array(let elements):
            let array = jshim_new_array()!
            for element in elements { _ = jshim_array_append(array, build(element)) }
            return array
        case .object(let members):
            let object = jshim_new_object()!
            for (key, member) in members { _ = jshim_object_set(object, key, build(member)) }
            return object
        }
    }

    static func dump(_ json: UnsafeMutableRawPointer, capacity: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: capacity)
        var needed = out.withUnsafeMutableBufferPointer { jshim_dump(json, $0.baseAddress, $0.count) }
        if needed > capacity {
            out = [UInt8](repeating: 0, count: needed)
            needed = out.withUnsafeMutableBufferPointer { jshim_dump(json, $0.baseAddress, $0.count) }
        }
        out.removeLast(out.count - needed)
        return out
    }
}

// MARK: - Timing

@inline(__always) func now() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Keeps results alive so the optimiser cannot drop the work.
nonisolated(unsafe) var sink = 0

struct Stats {
    let median: Double  // ns per operation
    let spread: Double  // interquartile range / median
}

/// Median of `samples` samples per contender, each sample long enough
/// (`sampleMilliseconds`) to swamp the timer's cost. Contenders take turns sample by
/// sample, so a burst of load from elsewhere on the machine hits all of them alike.
func measure(_ options: Options, _ rows: [(String, () throws -> Int)]) throws -> [Stats] {
    var iterations: [Int] = []
    for (_, body) in rows {  // calibrate (also warms caches and the allocator)
        var count = 1
        while true {
            let start = now()
            for _ in 0..<count { sink &+= try body() }
            let elapsed = Double(now() - start) / 1e6
            if elapsed >= options.sampleMilliseconds / 4 {
                count = max(1, Int(Double(count) * options.sampleMilliseconds / elapsed))
                break
            }
            count *= 4
        }
        iterations.append(count)
    }
    var perOp = [[Double]](repeating: [], count: rows.count)
    for _ in 0..<options.samples {
        for (index, (_, body)) in rows.enumerated() {
            let start = now()
            for _ in 0..<iterations[index] { sink &+= try body() }
            perOp[index].append(Double(now() - start) / Double(iterations[index]))
        }
    }
    return perOp.map { samples in
        let sorted = samples.sorted()
        let median = sorted[sorted.count / 2]
        return Stats(median: median, spread: (sorted[sorted.count * 3 / 4] - sorted[sorted.count / 4]) / median)
    }
}

func format(_ ns: Double) -> String {
    if ns >= 1e6 { return String(format: "%.2f ms", ns / 1e6) }
    if ns >= 1e3 { return String(format: "%.1f µs", ns / 1e3) }
    return String(format: "%.0f ns", ns)
}

func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
func lpad(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }

// MARK: - What users see

/// What each library says about the inputs the transport promises clear errors for:
/// invalid UTF-8, nesting past the limit, a wrong field type. Speed only counts for a
/// library that keeps these (or could be made to, with code the table must pay for).
func behaviour() throws {
    let head = #"{"jsonrpc":"2.0","id":1,"method":"listChanges","params":"#
    let cases: [(String, [UInt8])] = [
        ("invalid UTF-8", Array((head + #"{"bookmark":"a"#).utf8) + [0xFF] + Array(#""}}"#.utf8)),
        ("100,000 nested arrays", Array((head + #"{"cursor":"#).utf8) + [UInt8](repeating: UInt8(ascii: "["), count: 100_000)),
        ("limit: 1.5 (an Int field)", Array((head + #"{"limit":1.5}}"#).utf8)),
    ]
    func pathed(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            let underlying = c.underlyingError.map { " (underlying: \(($0 as NSError).userInfo[NSDebugDescriptionErrorKey] ?? $0))" } ?? ""
            return "at '\(c.codingPath.map(\.stringValue).joined(separator: "."))': \(c.debugDescription)\(underlying)"
        case .keyNotFound(let key, let c):
            return "at '\((c.codingPath + [key]).map(\.stringValue).joined(separator: "."))': \(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
    print("What a user is told (the message each library gives):")
    for (name, bytes) in cases {
        print("  \(name)")
        let project: String
        switch MessageParser.parse(bytes) {
        case .unanswerable(let error): project = error.message
        case .single(.message(.request(let request))):
            do { _ = try (request.params ?? [:]).decode(ListChanges.Params.self); project = "accepted" } catch { project = pathed(error) }
        default: project = "unexpected parse result"
        }
        print("    project:    \(project)")
        do {
            _ = try JSONDecoder().decode(RequestEnvelope<ListChanges.Params>.self, from: Data(bytes))
            print("    Foundation: accepted")
        } catch { print("    Foundation: \(pathed(error))") }
        if Jansson.available {
            do {
                let json = try Jansson.parse(bytes)
                jshim_decref(json)
                print("    jansson:    parsed (no typed decoding: a field error would need a Decoder over json_t)")
            } catch { print("    \(error)") }
        }
    }
}

// MARK: - Main

let options = Options()

do {
    let small = try Frame(
        name: "small", describe: "a `status` request with a mount selector",
        payload: RepoSelector(mountId: "m-4f2a9c0e", path: "/home/agent/work/acme-api"),
        direction: .request(method: MountStatusMethod.name), check: { ($0.mountId?.count ?? 0) + ($0.path?.count ?? 0) })

    let changes = (0..<1000).map { i in
        ChangeInfo(
            id: String(format: "chg_%026d", i), commitOid: String(repeating: String(format: "%02x", i % 256), count: 20),
            parents: [String(format: "chg_%026d", max(0, i - 1))], message: "Update src/module\(i).swift: handle \"edge\" case #\(i)",
            author: "agent-\(i % 7)@acme.dev", createdAt: "2025-06-01T12:\(String(format: "%02d", i % 60)):00Z",
            updatedAt: "2025-06-01T12:\(String(format: "%02d", i % 60)):30Z", conflicts: i % 50 == 0 ? ["src/a/b.swift"] : [])
    }
    let listing = try Frame(
        name: "listing", describe: "a `listChanges` result with 1,000 changes",
        payload: ListChanges.Result(.init(changes: changes), .init(nextCursor: "c-1000", hasMore: true)), direction: .response,
        check: { $0.changes.count + $0.changes.reduce(0) { $0 + $1.message.count } })

    var random = SystemRandomNumberGenerator()
    let content = Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) })
    let body = try Frame(
        name: "body", describe: "a write request with a 1 MiB body (base64)",
        payload: WriteParams(mountId: "m-4f2a9c0e", path: "assets/model.bin", offset: 0, content: content),
        direction: .request(method: "writeFile"), check: { $0.content.count + $0.path.count })

    if options.only == nil || options.only == "behaviour" { try behaviour() }
    if options.only == "behaviour" { exit(0) }

    print("json-bench: median of \(options.samples) samples of ≥\(Int(options.sampleMilliseconds)) ms; spread = IQR/median; ratio to the fastest e2e row")
    for frame in [small, listing, body] where options.only == nil || options.only == frame.name {
        print("")
        print("\(frame.name): \(frame.describe), \(frame.bytes.count) bytes")
        for (op, rows) in [("decode", frame.decoders), ("encode", frame.encoders)] {
            let results = zip(rows.map(\.0), try measure(options, rows)).map { ($0, $1) }
            let best = results.filter { $0.0.contains("e2e") }.map(\.1.median).min() ?? 1
            print("  \(pad(op, 44)) \(lpad("time/op", 10)) \(lpad("MB/s", 8)) \(lpad("spread", 7)) \(lpad("ratio", 6))")
            for (name, stats) in results {
                let mbps = Double(frame.bytes.count) / stats.median * 1e3
                print("  \(pad(name, 44)) \(lpad(format(stats.median), 10)) \(lpad(String(format: "%.0f", mbps), 8)) \(lpad(String(format: "%.0f%%", stats.spread * 100), 7)) \(lpad(String(format: "%.2fx", stats.median / best), 6))")
            }
        }
    }
} catch {
    fail("\(error)")
}
