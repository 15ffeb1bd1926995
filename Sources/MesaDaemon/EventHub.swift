import Foundation
import Infra
import Logging
import MesaAPI
import MesaProtocol
import Mount
import RPC
import Synchronization

/// Subscriptions of each connection, and the watcher that turns mount state into
/// `mesa/*` notifications for them.
///
/// Why a watcher that looks at the mounts, rather than callbacks from the filesystem
/// core: most events are changes of state the core already keeps (`status()`: pending
/// uploads, last error, last upload), and comparing two looks gives exactly one event
/// per transition, coalesced, without putting daemon code on FUSE threads. The one thing
/// a look can miss — a file written and uploaded between two looks, which is what a
/// PostToolUse flush does — the core records in a small change log the watcher drains.
/// Looks happen every 200 ms only while someone subscribed, and at once after methods
/// that change things, so their events come in causal order.
final class EventHub: Sendable {
    struct Subscription: Sendable {
        let id: Int
        let mountId: String?
        let org: String?
        let repo: String?
        let events: Set<String>

        func matches(_ event: MesaEvent) -> Bool {
            guard events.contains(event.event) else { return false }
            guard let mountId else { return true }
            guard let eventMount = event.mountId else {
                // A bookmark move concerns the repo: every mount of it, every repo of the tree.
                return mountId == "tree" || (event.org == org && event.repo == repo)
            }
            // The tree's subscribers hear of the repos inside it ("org/repo" ids).
            return eventMount == mountId || (mountId == "tree" && !eventMount.hasPrefix("/"))
        }
    }

    struct Subscriber {
        let sender: any NotificationSender
        var subscriptions: [Subscription] = []
    }

    struct Watch {
        var baseline = false
        var mounts: [String: MountSnapshot] = [:]
        var bookmarks: [String: [String: String]] = [:]
        var lastBookmarkLook = ContinuousClock.now
        var reportedLost: Set<String> = []
    }

    private struct State {
        var subscribers: [UInt64: Subscriber] = [:]
        var nextID = 0
        /// Runs while someone is subscribed; the next first subscriber starts a new one.
        var worker: PeriodicWorker?
    }

    private let state = Mutex(State())
    /// Held for a whole look, so looks (and the events they send) never interleave.
    private let watch = Mutex(Watch())
    let mounts: MountManager?
    let orgs: OrgBackends
    let logger: Logger
    /// Between two looks while someone is subscribed.
    static let interval: Duration = .milliseconds(200)
    static let bookmarkInterval: Duration = .seconds(2)

    init(mounts: MountManager?, orgs: OrgBackends, logger: Logger) {
        self.mounts = mounts
        self.orgs = orgs
        self.logger = logger
    }

    // MARK: Subscriptions

    func subscribe(connection: UInt64, sender: any NotificationSender, mountId: String?, org: String?, repo: String?,
                   events: Set<String>) -> Int {
        let (id, firstOfConnection, firstOverall) = state.withLock { state -> (Int, Bool, Bool) in
            state.nextID += 1
            let firstOverall = state.subscribers.isEmpty
            let first = state.subscribers[connection] == nil
            state.subscribers[connection, default: Subscriber(sender: sender)].subscriptions.append(
                Subscription(id: state.nextID, mountId: mountId, org: org, repo: repo, events: events))
            return (state.nextID, first, firstOverall)
        }
        // Nobody listened until now: what was seen before is stale, start a new baseline.
        if firstOverall { watch.withLock { $0 = Watch() } }
        if firstOfConnection, let connectionObject = sender as? Connection {
            connectionObject.onClose { [weak self] _ in self?.drop(connection: connection) }
        }
        look(extra: [], bookmarks: true)  // the baseline: only what happens from now on is reported
        startThreadIfNeeded()
        return id
    }

    /// Removes one subscription (or all of the connection's); returns how many.
    func unsubscribe(connection: UInt64, id: Int?) -> Int {
        state.withLock { state in
            guard var subscriber = state.subscribers[connection] else { return 0 }
            let before = subscriber.subscriptions.count
            subscriber.subscriptions.removeAll { id == nil || $0.id == id }
            let removed = before - subscriber.subscriptions.count
            state.subscribers[connection] = subscriber.subscriptions.isEmpty ? nil : subscriber
            return removed
        }
    }

    func drop(connection: UInt64) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: connection) }
    }

    var hasSubscribers: Bool { state.withLock { !$0.subscribers.isEmpty } }

    /// Sends each event to every connection with a matching subscription (once per
    /// connection). A connection that cannot be written to any more is dropped.
    func publish(_ events: [MesaEvent]) {
        guard !events.isEmpty else { return }
        let subscribers = state.withLock { $0.subscribers }
        for (connection, subscriber) in subscribers {
            for event in events where subscriber.subscriptions.contains(where: { $0.matches(event) }) {
                if !subscriber.sender.sendNotification(method: MesaEvents.method(event.event), params: event) {
                    drop(connection: connection)
                    break
                }
            }
        }
    }

    // MARK: Looking

    /// Looks now, after a method changed something; `extra` (a checkpoint) is sent after
    /// the mount events and before the bookmark moves it caused. Blocking (backend calls).
    func changed(extra: [MesaEvent] = [], bookmarks: Bool = false) {
        guard hasSubscribers else { return }
        look(extra: extra, bookmarks: bookmarks)
    }

    private func startThreadIfNeeded() {
        let worker = state.withLock { state -> PeriodicWorker? in
            guard state.worker == nil else { return nil }
            let worker = PeriodicWorker(name: "mesad.events", interval: Self.interval)
            state.worker = worker
            return worker
        }
        worker?.start { [weak self] in
            guard let hub = self else { return .stop }
            let keepGoing = hub.state.withLock { state -> Bool in
                if state.subscribers.isEmpty { state.worker = nil }
                return !state.subscribers.isEmpty
            }
            guard keepGoing else { return .stop }  // the next first subscriber starts a new baseline
            hub.look(extra: [], bookmarks: false)
            return .interval
        }
    }

    private func look(extra: [MesaEvent], bookmarks forceBookmarks: Bool) {
        guard let mounts else {
            publish(extra)
            return
        }
        watch.withLock { watch in
            let now = Date()
            let reporting = watch.baseline
            var events: [MesaEvent] = []
            var current: [String: MountSnapshot] = [:]
            for mount in mounts.repoMounts() {
                let snapshot = MountSnapshot(id: mount.id, path: mount.path, status: mount.fs.status())
                let changed = mount.fs.drainChangedPaths()
                current[mount.id] = snapshot
                guard reporting else { continue }
                // A mount opened since the last look starts from a clean slate.
                let previous = watch.mounts[mount.id] ?? snapshot.clean
                events += EventRules.mountEvents(previous: previous, current: snapshot, changed: changed, now: now)
            }
            let lostNow = mounts.lostMounts()
            if reporting {
                for (id, gone) in watch.mounts.sorted(by: { $0.key < $1.key }) where current[id] == nil && !watch.reportedLost.contains(id) {
                    events.append(EventRules.lost(gone, reason: "unmounted", now: now))
                }
                for lost in lostNow where !watch.reportedLost.contains(lost.id) {
                    watch.reportedLost.insert(lost.id)
                    let snapshot = current[lost.id]
                    events.append(MesaEvent(event: MesaEvents.mountLost, mountId: lost.id, mountPath: lost.path, org: snapshot?.org,
                                            repo: snapshot?.repo,
                                            reason: "the FUSE session ended without mesad unmounting it (fusermount -u, or the kernel aborted the connection); mount it again",
                                            time: now))
                }
            }
            // Forget lost mounts once mesad dropped them (their removal is not news twice).
            watch.reportedLost.formIntersection(lostNow.map(\.id))
            watch.mounts = current
            events += extra
            let repos = Set(current.values.map { "\($0.org)/\($0.repo)" })
            // A repo mounted since the last look gets its bookmarks read at once: the
            // baseline its later moves are compared with.
            let newRepos = repos.contains { watch.bookmarks[$0] == nil }
            if forceBookmarks || !reporting || newRepos || ContinuousClock.now - watch.lastBookmarkLook >= Self.bookmarkInterval {
                watch.lastBookmarkLook = .now
                events += lookAtBookmarks(&watch, repos: repos, reporting: reporting, now: now)
            }
            watch.baseline = true
            publish(events)
        }
    }

    /// Bookmarks of every mounted repo, compared with the last look.
    private func lookAtBookmarks(_ watch: inout Watch, repos: Set<String>, reporting: Bool, now: Date) -> [MesaEvent] {
        var events: [MesaEvent] = []
        var seen: [String: [String: String]] = [:]
        for key in repos.sorted() {
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let backend = try? orgs.backend(for: parts[0]).1 else { continue }
            var names: [String: String] = [:]
            var cursor: String?
            do {
                repeat {
                    let page = try backend.listBookmarks(org: parts[0], repo: parts[1], cursor: cursor, limit: 100)
                    for bookmark in page.items { names[bookmark.name] = bookmark.changeID.rawValue }
                    cursor = page.nextCursor
                } while cursor != nil
            } catch {
                logger.debug("cannot list bookmarks for events", metadata: ["repo": "\(key)", "error": "\(error)"])
                if let known = watch.bookmarks[key] { seen[key] = known }
                continue
            }
            seen[key] = names
            if reporting, let previous = watch.bookmarks[key] {
                events += EventRules.bookmarkEvents(org: parts[0], repo: parts[1], previous: previous, current: names, now: now)
            }
        }
        watch.bookmarks = seen
        return events
    }
}
