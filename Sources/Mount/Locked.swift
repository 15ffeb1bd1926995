import Synchronization

/// A `Mutex` several parts of a mount share by reference (the core, its uploader and
/// its revision view all take the core's lock): `Mutex` itself cannot be copied.
final class Locked<Value>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: sending Value) { mutex = Mutex(value) }

    func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try mutex.withLock(body)
    }
}
