import CSQLite
import Foundation
import Model

/// A minimal SQLite connection: prepared-statement cache, typed binds, row reads.
/// Not thread-safe by itself: `Store` only touches it inside its mutex, which is what
/// makes the unchecked Sendable conformance true.
final class SQLiteDatabase: @unchecked Sendable {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &handle, flags, nil) == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            throw MesaError.internal("cannot open metadata database \(path): \(message)")
        }
        // Another process (a second mesad or mesa-server on the same data directory)
        // may hold the write lock briefly; wait instead of failing.
        sqlite3_busy_timeout(handle, 10_000)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close(handle)
    }

    func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(handle, sql, nil, nil, &error) != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(error)
            throw MesaError.internal("sqlite: \(message) in \(sql.prefix(80))")
        }
    }

    /// Runs `body` in a write transaction. `BEGIN IMMEDIATE` takes the write lock up
    /// front, so a read-check-write inside `body` is atomic across threads and processes.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs a statement and returns every row.
    @discardableResult
    func query(_ sql: String, _ arguments: [SQLValue] = []) throws -> [Row] {
        let statement = try prepare(sql)
        defer { sqlite3_reset(statement); sqlite3_clear_bindings(statement) }
        try bind(arguments, to: statement)
        var rows: [Row] = []
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw lastError(sql) }
            rows.append(Row(statement: statement))
        }
        return rows
    }

    func queryOne(_ sql: String, _ arguments: [SQLValue] = []) throws -> Row? {
        try query(sql, arguments).first
    }

    var changes: Int { Int(sqlite3_changes(handle)) }

    private func prepare(_ sql: String) throws -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw lastError(sql)
        }
        statements[sql] = statement
        return statement
    }

    private func bind(_ arguments: [SQLValue], to statement: OpaquePointer) throws {
        for (offset, argument) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let result: Int32
            switch argument {
            case .null: result = sqlite3_bind_null(statement, index)
            case .int(let value): result = sqlite3_bind_int64(statement, index, Int64(value))
            case .double(let value): result = sqlite3_bind_double(statement, index, value)
            case .text(let value): result = csqlite_bind_text(statement, index, value, -1)
            case .blob(let bytes):
                result = bytes.withUnsafeBytes { csqlite_bind_blob(statement, index, $0.baseAddress, Int32($0.count)) }
            }
            guard result == SQLITE_OK else { throw lastError("bind") }
        }
    }

    private func lastError(_ context: String) -> MesaError {
        let message = String(cString: sqlite3_errmsg(handle))
        return MesaError.internal("sqlite: \(message) (\(context.prefix(80)))")
    }
}

enum SQLValue {
    case null
    case int(Int)
    case double(Double)
    case text(String)
    case blob([UInt8])

    static func optionalText(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    static func optionalDouble(_ value: Double?) -> SQLValue { value.map { .double($0) } ?? .null }
}

/// One result row, copied out of the statement so it outlives the next step.
struct Row {
    private var values: [SQLValue] = []

    init(statement: OpaquePointer) {
        let count = sqlite3_column_count(statement)
        values.reserveCapacity(Int(count))
        for column in 0..<count {
            switch sqlite3_column_type(statement, column) {
            case SQLITE_INTEGER: values.append(.int(Int(sqlite3_column_int64(statement, column))))
            case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(statement, column)))
            case SQLITE_TEXT: values.append(.text(String(cString: sqlite3_column_text(statement, column))))
            case SQLITE_BLOB:
                let length = Int(sqlite3_column_bytes(statement, column))
                if let pointer = sqlite3_column_blob(statement, column), length > 0 {
                    values.append(.blob(Array(UnsafeRawBufferPointer(start: pointer, count: length))))
                } else {
                    values.append(.blob([]))
                }
            default: values.append(.null)
            }
        }
    }

    mutating func removeFirstColumn() { values.removeFirst() }

    func string(_ index: Int) -> String {
        if case .text(let value) = values[index] { return value }
        return ""
    }

    func optionalString(_ index: Int) -> String? {
        if case .text(let value) = values[index] { return value }
        return nil
    }

    func int(_ index: Int) -> Int {
        switch values[index] {
        case .int(let value): return value
        case .double(let value): return Int(value)
        default: return 0
        }
    }

    func double(_ index: Int) -> Double {
        switch values[index] {
        case .double(let value): return value
        case .int(let value): return Double(value)
        default: return 0
        }
    }

    func optionalDouble(_ index: Int) -> Double? {
        switch values[index] {
        case .double(let value): return value
        case .int(let value): return Double(value)
        default: return nil
        }
    }

    func blob(_ index: Int) -> [UInt8] {
        if case .blob(let value) = values[index] { return value }
        return []
    }
}
