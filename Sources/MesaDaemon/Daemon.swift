import Foundation
import Logging
import MesaAPI
import MesaProtocol
import RPC
import Synchronization

/// mesad: owns the org backends (and, from the mount issue on, the mounts) and answers
/// JSON-RPC on stdio or a Unix socket. Transport lives in `RPC`; this type only knows
/// which methods exist and what they do.
public final class Daemon: Sendable {
    public static let version = "0.1.0"
    /// Bumped when a method changes incompatibly; clients compare it after `initialize`.
    public static let protocolVersion = "1"
    public static let notifications = ["$/progress", "window/logMessage"] + MesaEvents.methods

    public let config: DaemonConfig
    let orgs: OrgBackends
    public let dispatcher = Dispatcher()
    let logger: Logger
    /// The FUSE mounts; nil when the blob cache could not be opened (the reason is kept).
    public let mounts: MountManager?
    let mountsUnavailableReason: String?
    /// Subscriptions and the watcher behind `mesa/*` notifications.
    let events: EventHub

    private struct Lifecycle {
        var shutdownRequested = false
        var stopped = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let lifecycle = Mutex(Lifecycle())
    /// For `stats`: when this daemon started, and who counts upstream syncs in flight.
    let startedAt = ContinuousClock.now
    let syncsInFlight = Mutex<(@Sendable () -> Int)?>(nil)

    var backendName: String { config.apiURL ?? "embedded" }

    public init(config: DaemonConfig, orgs: OrgBackends, logger: Logger) {
        self.config = config
        self.orgs = orgs
        self.logger = logger
        do {
            mounts = try MountManager(config: config, orgs: orgs, logger: logger)
            mountsUnavailableReason = nil
        } catch {
            logger.error("mounting disabled: \(error)")
            mounts = nil
            mountsUnavailableReason = "\(error)"
        }
        events = EventHub(mounts: mounts, orgs: orgs, logger: logger)
        // A mount that followed its bookmark changed files: subscribers hear
        // `filesChanged` and `bookmarkMoved` from a look right away.
        mounts?.startFollowing { [weak events] _ in events?.changed(bookmarks: true) }
        registerLifecycleMethods()
        registerRepoAndKeyMethods()
        registerMountMethods()
        registerEventMethods()
        registerStatsMethod()
        // The embedded store runs upstream syncs in this process: `stats` counts them.
        if let store = orgs.store { countSyncsInFlight { (try? store.syncsInFlight()) ?? 0 } }
    }

    /// Every registered method, for `initialize` and the protocol.md check.
    public var methodNames: [String] { dispatcher.methodNames }

    // MARK: Stopping

    /// Asks the daemon to stop: listeners close, in-flight requests finish.
    public func requestStop() {
        let waiters = lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.stopped else { return [] }
            state.stopped = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    public var isStopping: Bool { lifecycle.withLock { $0.stopped } }

    public func waitForStop() async {
        await withCheckedContinuation { continuation in
            let stoppedAlready = lifecycle.withLock { state -> Bool in
                if state.stopped { return true }
                state.waiters.append(continuation)
                return false
            }
            if stoppedAlready { continuation.resume() }
        }
    }

    // MARK: Lifecycle methods

    private func registerLifecycleMethods() {
        dispatcher.register(Initialize.self) { params, _ in
            if let client = params.clientInfo {
                self.logger.info("client initialized", metadata: ["client": "\(client.name) \(client.version ?? "")"])
            }
            return Initialize.Result(
                serverInfo: .init(name: "mesad", version: Self.version),
                protocolVersion: Self.protocolVersion,
                capabilities: .init(methods: self.dispatcher.methodNames, notifications: Self.notifications))
        }
        dispatcher.registerNotification(method: "initialized") { _, _ in }
        dispatcher.register(Shutdown.self) { _, _ in
            self.lifecycle.withLock { $0.shutdownRequested = true }
            self.logger.info("shutdown requested by a client")
            // Answer first; the listeners stop once this response is written.
            Task {
                try? await Task.sleep(for: .milliseconds(50))
                self.requestStop()
            }
            return OK()
        }
        dispatcher.registerNotification(method: "exit") { _, _ in
            self.logger.info("exit notification received")
            self.requestStop()
        }
    }
}
