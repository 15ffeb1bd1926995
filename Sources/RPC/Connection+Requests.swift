/// Requests from this side to the peer: what the client library uses, and what lets
/// tests drive a server `Connection` with another `Connection`.
extension Connection {
    /// Sends a request and waits for its answer; a server error is thrown as
    /// `ResponseError`, a closed connection as `ConnectionClosedError`. Cancelling the
    /// calling task sends `$/cancelRequest` to the peer, which decides the answer.
    public func sendRequest(method: String, params: EncodedJSON?) async throws -> JSONValue {
        let id = RequestID.int(state.withLock { state in
            state.nextOutgoingID += 1
            return state.nextOutgoingID
        })
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let closedReason = state.withLock { state -> CloseReason? in
                    if state.closed || state.stopRequested { return state.reason ?? .closedLocally }
                    state.pending[id] = continuation
                    return nil
                }
                if let closedReason {
                    continuation.resume(throwing: ConnectionClosedError(reason: closedReason))
                    return
                }
                if !writeBody(MessageEncoder.request(id: id, method: method, params: params)) {
                    let (taken, reason) = state.withLock { state in
                        (state.pending.removeValue(forKey: id), state.reason ?? .closedLocally)
                    }
                    taken?.resume(throwing: ConnectionClosedError(reason: reason))
                    return
                }
                // Cancelled between registering and writing: the handler below may
                // have sent the cancel before the request itself, so send it again.
                if Task.isCancelled { sendCancel(id) }
            }
        } onCancel: {
            sendCancel(id)
        }
    }

    public func sendRequest(method: String, params: JSONValue? = nil) async throws -> JSONValue {
        try await sendRequest(method: method, params: params.map(EncodedJSON.init))
    }

    /// Typed form of `sendRequest` for methods whose types work in both directions.
    public func send<M: RPCMethod>(_ method: M.Type, _ params: M.Params) async throws -> M.Result
    where M.Params: Encodable, M.Result: Decodable {
        let encoded: EncodedJSON
        do {
            encoded = try EncodedJSON(encoding: params)
        } catch {
            throw ResponseError.invalidParams("could not encode params of '\(M.name)': \(error)")
        }
        let result = try await sendRequest(method: M.name, params: encoded)
        do {
            return try result.decode(M.Result.self)
        } catch {
            throw ResponseError(
                code: .internalError, message: "could not decode the result of '\(M.name)': \(error)",
                errorClass: .fatal)
        }
    }

    private func sendCancel(_ id: RequestID) {
        guard state.withLock({ $0.pending[id] != nil }) else { return }
        sendNotification(method: "$/cancelRequest", params: CancelParams(id: id))
    }

    func handleResponse(_ response: Response) {
        guard let id = response.id,
            let continuation = state.withLock({ $0.pending.removeValue(forKey: id) })
        else {
            // Also covers a peer's error about input we sent that it could not parse.
            switch response.result {
            case .failure(let error):
                logger.error("peer reported an error without a matching request: \(error.message)")
            case .success:
                logger.debug("ignoring response for unknown request id \(response.id?.description ?? "null")")
            }
            return
        }
        switch response.result {
        case .success(let value): continuation.resume(returning: value)
        case .failure(let error): continuation.resume(throwing: error)
        }
    }
}
