import COpenSSL
import Foundation
import Infra
import Logging
import MesaAPI
import Model
import Store
import Synchronization

/// Delivers the store's webhook outbox: one background worker that POSTs each pending
/// event to its target, signed, and writes every attempt into the delivery log.
///
/// Guarantees: per target and repo strictly in event order (the next event of a lane is
/// sent only once the one before it was delivered or given up); at least once (a delivery
/// stays pending in SQLite until a 2xx answer, so a restart resends what was in flight);
/// a failing or hanging target waits out its backoff or timeout without holding up other
/// targets or lanes: each attempt runs on a thread of its own (at most `maxInFlight`
/// at once), and a round never waits for one.
public final class WebhookDeliverer: Sendable {
    public struct Options: Sendable {
        /// The server's address as receivers see it: `repository.url` is `<publicURL>/v1/<org>/<repo>`.
        public var publicURL: String
        /// Between failed attempts of one delivery; after `maxAttempts` it is given up ("failed").
        public var backoff: Backoff
        public var requestTimeout: Duration
        /// How often the outbox is looked at when nothing wakes the worker.
        public var pollInterval: Duration
        /// Finished deliveries stay in the log this long.
        public var retention: Duration
        /// Attempts under way at once (each holds a thread for up to `requestTimeout`).
        public var maxInFlight: Int

        public init(publicURL: String, backoff: Backoff = Backoff(initial: .seconds(1), factor: 2, cap: .seconds(600), jitter: 0.2,
                                                                  maxAttempts: 15),
                    requestTimeout: Duration = .seconds(10), pollInterval: Duration = .seconds(1),
                    retention: Duration = .seconds(7 * 86400), maxInFlight: Int = 16) {
            self.publicURL = publicURL
            self.maxInFlight = maxInFlight
            self.backoff = backoff
            self.requestTimeout = requestTimeout
            self.pollInterval = pollInterval
            self.retention = retention
        }
    }

    public let store: Store
    public let options: Options
    private let session: CurlSession
    private let worker: PeriodicWorker
    private let logger: Logger
    /// Lanes ("<target> <repo>") with an attempt under way: a round skips them, so a lane
    /// never has two attempts at once and its order holds.
    private let inFlight = Mutex<Set<String>>([])

    public init(store: Store, options: Options, logger: Logger = Logger(label: "mesa-server.webhooks")) {
        self.store = store
        self.options = options
        self.logger = logger
        session = CurlSession(options: .init(connectTimeout: min(options.requestTimeout, .seconds(5)),
                                             requestTimeout: options.requestTimeout, userAgent: "mesa-server-webhooks",
                                             maxIdleHandles: 8, maxResponseBytes: 1 << 20))
        worker = PeriodicWorker(name: "mesa-webhooks", interval: options.pollInterval)
    }

    public func start() {
        let lastPrune = Mutex<ContinuousClock.Instant?>(nil)
        worker.start { [self] in
            let now = ContinuousClock.now
            if lastPrune.withLock({ $0.map { $0.duration(to: now) > .seconds(600) } ?? true }) {
                lastPrune.withLock { $0 = now }
                prune()
            }
            return round()
        }
        worker.wake()
    }

    /// Looks at the outbox now (a write just recorded events).
    public func wake() { worker.wake() }

    /// Ends the worker and waits for the attempts under way (at most their timeout);
    /// what is pending stays pending for the next start.
    public func stop() {
        worker.stop()
        let deadline = ContinuousClock.now + options.requestTimeout + .seconds(2)
        while !inFlight.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// Starts an attempt for every due lane head that has none under way; returns at once.
    func round() -> PeriodicWorker.Next {
        let due: [PendingWebhookDelivery], nextDue: Date?
        do {
            (due, nextDue) = try store.dueWebhookDeliveries()
        } catch {
            logger.error("cannot read the webhook outbox", metadata: ["error": "\(error)"])
            return .interval
        }
        for delivery in due {
            let lane = delivery.targetID + " " + (delivery.repoID ?? "")
            let started = inFlight.withLock { lanes in
                lanes.count < options.maxInFlight && lanes.insert(lane).inserted
            }
            guard started else { continue }
            Thread { [self] in
                // The lane is ours now, and any attempt before ours has recorded its outcome:
                // re-read, since `due` may predate it (sending again would duplicate).
                if (try? store.isWebhookDeliveryCurrent(targetID: delivery.targetID, eventSeq: delivery.eventSeq,
                                                        attempts: delivery.attempts)) == true {
                    attempt(delivery)
                }
                inFlight.withLock { _ = $0.remove(lane) }
                worker.wake()  // the lane's next event may be due now
            }.start()
        }
        guard let nextDue else { return .interval }
        let wait = max(nextDue.timeIntervalSinceNow, 0)
        return .after(min(.milliseconds(Int64(wait * 1000)), options.pollInterval))
    }

    private func attempt(_ delivery: PendingWebhookDelivery) {
        let body = Self.envelope(delivery, publicURL: options.publicURL)
        let timestamp = Int(Date().timeIntervalSince1970)
        let request = HTTPRequest(method: "POST", url: delivery.url, headers: [
            "Content-Type: application/json",
            "x-mesa-signature: " + Self.signatureHeader(secret: delivery.secret, timestamp: timestamp, body: body),
            "x-mesa-event: " + delivery.type.rawValue,
            "x-mesa-delivery: " + delivery.eventID,
            "Expect:",
        ], body: body)
        let outcome: Store.WebhookAttemptOutcome
        do {
            let response = try session.perform(request)
            if (200..<300).contains(response.status) {
                outcome = .delivered(statusCode: response.status)
            } else {
                outcome = failure(delivery, status: response.status, "the receiver answered HTTP \(response.status)")
            }
        } catch {
            outcome = failure(delivery, status: nil, error.message)
        }
        do {
            try store.recordWebhookAttempt(targetID: delivery.targetID, eventSeq: delivery.eventSeq, outcome)
        } catch {
            logger.error("cannot record a webhook attempt", metadata: ["target": "\(delivery.targetID)", "error": "\(error)"])
        }
    }

    private func failure(_ delivery: PendingWebhookDelivery, status: Int?, _ error: String) -> Store.WebhookAttemptOutcome {
        let attempt = delivery.attempts + 1
        let retry = options.backoff.nextDelay(after: attempt).map { Date().addingTimeInterval(Self.seconds($0)) }
        logger.warning(retry == nil ? "webhook delivery given up" : "webhook delivery failed; will retry",
                       metadata: ["target": "\(delivery.targetID)", "event": "\(delivery.eventID)", "attempt": "\(attempt)",
                                  "error": "\(error.clipped)"])
        return .failed(statusCode: status, error: error, retryAt: retry)
    }

    private func prune() {
        do {
            try store.pruneWebhookLog(before: Date().addingTimeInterval(-Self.seconds(options.retention)))
        } catch {
            logger.error("cannot prune the webhook log", metadata: ["error": "\(error)"])
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    // MARK: Wire format

    /// `t=<unix seconds>,sha256=<hex HMAC-SHA256(secret, "<t>." + body)>`
    public static func signatureHeader(secret: String, timestamp: Int, body: [UInt8]) -> String {
        let message = Array("\(timestamp).".utf8) + body
        let key = Array(secret.utf8)
        var digest = [UInt8](repeating: 0, count: 32)
        copenssl_hmac_sha256(key, key.count, message, message.count, &digest)
        return "t=\(timestamp),sha256=" + digest.map { String(format: "%02x", $0) }.joined()
    }

    /// `{id, type, occurred_at, organization, repository|null, data}`: the stored `data`
    /// object is spliced in as it was recorded.
    static func envelope(_ delivery: PendingWebhookDelivery, publicURL: String) -> [UInt8] {
        var repository: Envelope.Repository?
        if let id = delivery.repoID, let name = delivery.repoName {
            let segment = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? text }
            repository = .init(id: id, name: name, url: publicURL + "/v1/" + segment(delivery.org.slug) + "/" + segment(name))
        }
        let head = Envelope(id: delivery.eventID, type: delivery.type.rawValue, occurredAt: delivery.occurredAt,
                            organization: .init(id: delivery.org.id, slug: delivery.org.slug, name: delivery.org.name),
                            repository: repository)
        var bytes = Array((try? RESTCoding.encoder().encode(head)) ?? Data("{}".utf8))
        // `{…}` → `{…,"data":<data>}`
        bytes.removeLast()
        return bytes + Array(",\"data\":".utf8) + Array(delivery.data.utf8) + [UInt8(ascii: "}")]
    }

    struct Envelope: Encodable {
        struct Organization: Encodable { let id, slug, name: String }
        struct Repository: Encodable { let id, name, url: String }

        let id, type: String
        let occurredAt: Date
        let organization: Organization
        let repository: Repository?

        enum CodingKeys: String, CodingKey { case id, type, organization, repository, occurredAt = "occurred_at" }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(type, forKey: .type)
            try c.encode(occurredAt, forKey: .occurredAt)
            try c.encode(organization, forKey: .organization)
            try c.encode(repository, forKey: .repository)  // null, not absent, for org-level events
        }
    }
}
