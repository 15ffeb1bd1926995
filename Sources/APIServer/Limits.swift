import Synchronization

/// What one mesa-server process lets its clients hold: sizes, time and connections.
/// Every value has a default meant for a server facing many sandboxes; `mesa-server serve`
/// exposes each as an option.
public struct Limits: Sendable, Equatable {
    /// A request body above this size is refused with 413, from its `Content-Length`
    /// before any of it is read, or as soon as a chunked body passes it.
    public var maxBodyBytes = 32 << 20
    /// The bytes all requests together may reserve for their bodies. A request that would
    /// pass it gets 503 `UNAVAILABLE` before its body is read.
    public var maxInFlightBodyBytes = 256 << 20
    /// From the first byte of a request to the end of its headers.
    public var headerTimeout: Duration = .seconds(10)
    /// A kept-alive connection with no request under way is closed after this long.
    public var idleTimeout: Duration = .seconds(60)
    /// From the end of a request's headers to the end of its body.
    public var requestTimeout: Duration = .seconds(120)
    /// Open connections at most; a connection past it is answered 503 `UNAVAILABLE`
    /// and closed at once.
    public var maxConnections = 1024

    public init() {}
}

/// The body bytes reserved by requests under way, so that many large bodies at once
/// cannot exhaust memory: each request reserves its size before reading it.
final class BodyBudget: Sendable {
    private let capacity: Int
    private let used = Mutex(0)

    init(capacity: Int) { self.capacity = capacity }

    /// Reserves `bytes`, or returns false when that would pass the capacity.
    func reserve(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard used + bytes <= capacity else { return false }
            used += bytes
            return true
        }
    }

    func release(_ bytes: Int) {
        used.withLock { $0 -= bytes }
    }

    var reserved: Int { used.withLock { $0 } }
}
