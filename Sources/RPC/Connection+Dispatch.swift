import Logging

/// Turning incoming frames into handler tasks, answers and cancellations.
extension Connection {
    func handleFrame(_ body: [UInt8]) {
        switch MessageParser.parse(body) {
        case .unanswerable(let error):
            logger.error("refused message: \(error.message)")
            writeBody(MessageEncoder.response(id: nil, result: .failure(error)))
        case .single(let parsed):
            switch parsed {
            case .invalid(let id, let error):
                logger.error("refused message: \(error.message)")
                writeBody(MessageEncoder.response(id: id, result: .failure(error)))
            case .message(let message):
                handleMessage(message)
            }
        case .batch(let elements):
            handleBatch(elements)
        }
    }

    private func handleMessage(_ message: Message) {
        switch message {
        case .request(let request):
            if request.method == "$/cancelRequest" {
                cancelRequest(params: request.params)
                writeBody(MessageEncoder.response(id: request.id, result: .success(.null)))
                return
            }
            switch startRequest(request, writesOwnAnswer: true) {
            case .started: break
            case .answered(let bytes): writeBody(bytes)
            }
        case .notification(let notification):
            if notification.method == "$/cancelRequest" {
                cancelRequest(params: notification.params)
                return
            }
            startNotification(notification)
        case .response(let response):
            handleResponse(response)
        }
    }

    private enum Started {
        case started(Task<[UInt8], Never>)
        /// Answered without running anything (for example a duplicate id).
        case answered([UInt8])
    }

    /// Starts a request's handler in its own task. With `writesOwnAnswer` the task
    /// writes the response and counts as outstanding; otherwise (batch elements) the
    /// caller collects the returned bytes.
    private func startRequest(_ request: Request, writesOwnAnswer: Bool) -> Started {
        let context = makeContext(id: request.id, method: request.method)
        let dispatcher = self.dispatcher
        return state.withLock { state -> Started in
            if state.running[request.id] != nil {
                let error = ResponseError.invalidRequest(
                    "request id \(request.id) is already in use by a request in flight; ids must be unique among pending requests")
                return .answered(MessageEncoder.response(id: request.id, result: .failure(error)))
            }
            state.nextToken += 1
            let token = state.nextToken
            if writesOwnAnswer { state.outstanding += 1 }
            // Created under the lock so the task cannot finish (and deregister) before
            // it is registered.
            let task = Task(executorPreference: executor) { [self] () -> [UInt8] in
                let result = await dispatcher.dispatch(
                    method: request.method, params: request.params, context: context)
                self.state.withLock { state in
                    if state.running[request.id]?.token == token { state.running[request.id] = nil }
                }
                let bytes = MessageEncoder.response(id: request.id, result: result)
                if writesOwnAnswer {
                    self.writeBody(bytes)
                    self.outstandingFinished()
                }
                return bytes
            }
            state.running[request.id] = Running(token: token, task: task)
            return .started(task)
        }
    }

    /// Queues a notification for the connection's notification task, which handles
    /// them one at a time in arrival order: `$/progress` reports and log messages must
    /// not overtake each other. Requests do not wait for them.
    private func startNotification(_ notification: Notification) {
        guard dispatcher.handles(notification.method) else {
            // JSON-RPC: a notification is never answered, not even when unknown.
            logger.debug("ignoring notification for unknown method '\(notification.method)'")
            return
        }
        state.withLock { $0.outstanding += 1 }
        notificationQueue.continuation.yield(notification)
    }

    /// The body of the notification task started with the connection.
    func runNotifications() async {
        for await notification in notificationQueue.stream {
            if state.withLock({ $0.hard }) {
                // Closing hard: what is still queued is dropped, like unsent answers.
                outstandingFinished()
                continue
            }
            let context = makeContext(id: nil, method: notification.method)
            let result = await dispatcher.dispatch(
                method: notification.method, params: notification.params, context: context)
            if case .failure(let error) = result {
                logger.error("notification '\(notification.method)' failed: \(error.message)")
            }
            outstandingFinished()
        }
    }

    private func handleBatch(_ elements: [ParsedMessage]) {
        enum Answer {
            case ready([UInt8])
            case later(Task<[UInt8], Never>)
        }
        var answers: [Answer] = []
        for element in elements {
            switch element {
            case .invalid(let id, let error):
                answers.append(.ready(MessageEncoder.response(id: id, result: .failure(error))))
            case .message(.request(let request)):
                if request.method == "$/cancelRequest" {
                    cancelRequest(params: request.params)
                    answers.append(.ready(MessageEncoder.response(id: request.id, result: .success(.null))))
                    continue
                }
                switch startRequest(request, writesOwnAnswer: false) {
                case .started(let task): answers.append(.later(task))
                case .answered(let bytes): answers.append(.ready(bytes))
                }
            case .message(let other):
                handleMessage(other)
            }
        }
        // A batch of notifications only is not answered at all.
        guard !answers.isEmpty else { return }
        state.withLock { $0.outstanding += 1 }
        Task(executorPreference: executor) { [self] in
            var parts: [[UInt8]] = []
            parts.reserveCapacity(answers.count)
            for answer in answers {
                switch answer {
                case .ready(let bytes): parts.append(bytes)
                case .later(let task): parts.append(await task.value)
                }
            }
            self.writeBody(MessageEncoder.batch(parts))
            self.outstandingFinished()
        }
    }

    private func cancelRequest(params: JSONValue?) {
        guard let rawID = params?["id"], let id = RequestID(json: rawID) else {
            logger.error("ignoring $/cancelRequest without an integer or string 'id'")
            return
        }
        let task = state.withLock { $0.running[id]?.task }
        // Unknown ids are normal: the request may have finished already.
        task?.cancel()
    }

    private func outstandingFinished() {
        let step = state.withLock { state -> CloseStep in
            state.outstanding -= 1
            return closeStepLocked(&state)
        }
        perform(step)
    }

    private func makeContext(id: RequestID?, method: String) -> RequestContext {
        var logger = self.logger
        logger[metadataKey: "method"] = "\(method)"
        if let id { logger[metadataKey: "request"] = "\(id)" }
        return RequestContext(id: id, method: method, connection: info, peer: self, logger: logger)
    }
}
