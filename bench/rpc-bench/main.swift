// RPC benchmark: round trips of a trivial request (`listOrgs`) to mesad over its Unix
// socket and over stdio, one client sequentially and 16 clients at once, printed beside
// a raw Unix-socket echo of the same frame measured in the same run. Run it with
// `bash bench/rpc.sh` (release build, a mesad on a temporary HOME).
//
//   rpc-bench --socket PATH --mesad PATH --stdio-home DIR
//             [--requests 5000] [--clients 16] [--per-client 2000] [--method listOrgs]
import Client
import Foundation
import MesaProtocol
import RPC
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Arguments

struct Options {
    var socket = ""
    var mesad = ""
    var stdioHome = ""
    var requests = 5000
    var clients = 16
    var perClient = 2000
    var warmup = 500
    var method = "listOrgs"

    init() {
        var arguments = CommandLine.arguments.dropFirst()
        func value(_ flag: String) -> String {
            guard let next = arguments.popFirst() else { fail("\(flag) needs a value") }
            return next
        }
        while let flag = arguments.popFirst() {
            switch flag {
            case "--socket": socket = value(flag)
            case "--mesad": mesad = value(flag)
            case "--stdio-home": stdioHome = value(flag)
            case "--requests": requests = Int(value(flag)) ?? requests
            case "--clients": clients = Int(value(flag)) ?? clients
            case "--per-client": perClient = Int(value(flag)) ?? perClient
            case "--warmup": warmup = Int(value(flag)) ?? warmup
            case "--method": method = value(flag)
            default: fail("unknown argument \(flag)")
            }
        }
        if socket.isEmpty || mesad.isEmpty || stdioHome.isEmpty {
            fail("usage: rpc-bench --socket PATH --mesad PATH --stdio-home DIR [--requests N] [--clients N] [--per-client N]")
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("rpc-bench: \(message)\n".utf8))
    exit(2)
}

// MARK: - Time and statistics

@inline(__always) func now() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

struct Measurement {
    let name: String
    let latencies: [UInt64]  // nanoseconds, one per request
    let wall: UInt64  // nanoseconds for all of them

    var sorted: [UInt64] { latencies.sorted() }
    func percentile(_ p: Double) -> Double {
        let values = sorted
        guard !values.isEmpty else { return .nan }
        let index = min(values.count - 1, Int((Double(values.count) * p).rounded(.up)) - 1)
        return Double(values[max(index, 0)]) / 1000
    }
    var p50: Double { percentile(0.50) }
    var p99: Double { percentile(0.99) }
    var throughput: Double { Double(latencies.count) / (Double(wall) / 1e9) }
}

// MARK: - Blocking frame I/O (the raw client and the echo server)

/// Writes every byte (MSG_NOSIGNAL on sockets).
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, socket: Bool) {
    var offset = 0
    while offset < bytes.count {
        let written = socket
            ? send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            : write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { fail("write failed: \(String(cString: strerror(errno)))") }
        offset += written
    }
}

/// Reads LSP frames from a blocking descriptor into one reusable buffer.
final class FrameReader {
    let fd: Int32
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var start = 0
    var end = 0
    /// Where the frame last returned by `next()` begins (its header).
    var frameStart = 0

    init(fd: Int32) { self.fd = fd }

    /// The next frame's body as a range of `buffer` (valid until the next call), or nil at EOF.
    func next() -> Range<Int>? {
        while true {
            if let frame = parse() { return frame }
            if start > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + start, end - start)
                }
                end -= start
                start = 0
            }
            if end == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + end, $0.count - end) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return nil }
            end += count
        }
    }

    private func parse() -> Range<Int>? {
        buffer.withUnsafeBytes { raw -> Range<Int>? in
            let bytes = raw.bindMemory(to: UInt8.self)
            var index = start
            var length = -1
            // Headers: lines up to an empty one; only Content-Length matters here.
            var lineStart = start
            while index + 1 < end {
                if bytes[index] == 13 && bytes[index + 1] == 10 {
                    if index == lineStart {
                        let bodyStart = index + 2
                        guard length >= 0, end - bodyStart >= length else { return nil }
                        frameStart = start
                        start = bodyStart + length
                        return bodyStart..<(bodyStart + length)
                    }
                    // "Content-Length: N" (the server writes this exact spelling).
                    if index - lineStart > 16, bytes[lineStart] | 0x20 == UInt8(ascii: "c"), bytes[lineStart + 8] | 0x20 == UInt8(ascii: "l") {
                        var value = 0
                        var digit = lineStart + 15
                        while digit < index {
                            let byte = bytes[digit]
                            if byte >= 48 && byte <= 57 { value = value * 10 + Int(byte - 48) }
                            digit += 1
                        }
                        length = value
                    }
                    index += 2
                    lineStart = index
                    continue
                }
                index += 1
            }
            return nil
        }
    }

    func contains(_ needle: [UInt8], in range: Range<Int>) -> Bool {
        find(needle, in: range) != nil
    }

    /// The index just past the first occurrence of `needle` in `range`.
    func find(_ needle: [UInt8], in range: Range<Int>) -> Int? {
        guard range.count >= needle.count, let first = needle.first else { return nil }
        return buffer.withUnsafeBytes { raw -> Int? in
            let bytes = raw.bindMemory(to: UInt8.self)
            var index = range.lowerBound
            outer: while index + needle.count <= range.upperBound {
                if bytes[index] == first {
                    for offset in 1..<needle.count where bytes[index + offset] != needle[offset] {
                        index += 1
                        continue outer
                    }
                    return index + needle.count
                }
                index += 1
            }
            return nil
        }
    }

    /// The integer after `"id":` in the body (for pipelined answers).
    func id(in range: Range<Int>) -> Int? {
        guard var index = find(idKey, in: range) else { return nil }
        var value = 0
        var digits = 0
        while index < range.upperBound, buffer[index] >= 48, buffer[index] <= 57 {
            value = value * 10 + Int(buffer[index] - 48)
            index += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}

let idKey = Array(#""id":"#.utf8)

func requestFrame(id: Int, method: String) -> [UInt8] {
    let body = #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)"}"#
    return Array("Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
}

let resultKey = Array(#""result""#.utf8)

func connectUnix(_ path: String) -> Int32 {
    do { return try UnixSocketListener.connect(path: path) } catch { fail("cannot connect to \(path): \(error)") }
}

/// `count` sequential round trips on one descriptor pair, each timed; ids start at `firstID`.
func roundTrips(read: Int32, write: Int32, socket: Bool, count: Int, method: String, firstID: Int,
                checkResult: Bool) -> [UInt64] {
    let reader = FrameReader(fd: read)
    var latencies = [UInt64](repeating: 0, count: count)
    for index in 0..<count {
        let frame = requestFrame(id: firstID + index, method: method)
        let started = now()
        frame.withUnsafeBytes { writeAll(write, $0, socket: socket) }
        guard let body = reader.next() else { fail("connection closed after \(index) answers") }
        latencies[index] = now() - started
        if checkResult && !reader.contains(resultKey, in: body) {
            fail("error answer: \(String(decoding: reader.buffer[body], as: UTF8.self))")
        }
    }
    return latencies
}

// MARK: - Echo server (the floor: same frames, no JSON-RPC)

/// Listens on a Unix socket and echoes every frame back on a thread per connection:
/// plain blocking sockets, the same floor before and after the NIO transport.
final class EchoServer: @unchecked Sendable {
    let path: String
    let fd: Int32

    init(path: String) {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 128) == 0 else { fail("echo server: cannot listen on \(path)") }
        let listening = fd
        Thread {
            while true {
                let client = accept(listening, nil, nil)
                guard client >= 0 else { return }
                Thread { Self.echo(client) }.start()
            }
        }.start()
    }

    private static func echo(_ client: Int32) {
        let reader = FrameReader(fd: client)
        while true {
            guard let body = reader.next() else { break }
            // Echo the whole frame (header and body) as received.
            let frameStart = reader.frameStart
            reader.buffer.withUnsafeBytes { raw in
                writeAll(client, UnsafeRawBufferPointer(rebasing: raw[frameStart..<body.upperBound]), socket: true)
            }
        }
        close(client)
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }
}

// MARK: - Runs

func sequential(_ name: String, read: Int32, write: Int32, socket: Bool, options: Options, checkResult: Bool) -> Measurement {
    _ = roundTrips(read: read, write: write, socket: socket, count: options.warmup, method: options.method, firstID: 1,
                   checkResult: checkResult)
    let started = now()
    let latencies = roundTrips(read: read, write: write, socket: socket, count: options.requests, method: options.method,
                               firstID: 1_000_000, checkResult: checkResult)
    return Measurement(name: name, latencies: latencies, wall: now() - started)
}

/// `clients` connections, a thread each, `perClient` sequential round trips each.
func concurrent(_ name: String, path: String, options: Options, checkResult: Bool) -> Measurement {
    let descriptors = (0..<options.clients).map { _ in connectUnix(path) }
    defer { descriptors.forEach { close($0) } }
    for fd in descriptors {
        _ = roundTrips(read: fd, write: fd, socket: true, count: 50, method: options.method, firstID: 1, checkResult: checkResult)
    }
    let results = Mutex<[[UInt64]]>([])
    let group = DispatchGroup()
    let gate = DispatchSemaphore(value: 0)
    for fd in descriptors {
        group.enter()
        let thread = Thread {
            gate.wait()
            let latencies = roundTrips(read: fd, write: fd, socket: true, count: options.perClient, method: options.method,
                                       firstID: 1_000_000, checkResult: checkResult)
            results.withLock { $0.append(latencies) }
            group.leave()
        }
        thread.start()
    }
    let started = now()
    for _ in descriptors { gate.signal() }
    group.wait()
    return Measurement(name: name, latencies: results.withLock { $0.flatMap { $0 } }, wall: now() - started)
}

/// One stdio session, up to `window` requests in flight (pipelined), `total` requests.
func pipelined(_ name: String, read: Int32, write: Int32, window: Int, total: Int, method: String) -> Measurement {
    let sent = UnsafeMutablePointer<UInt64>.allocate(capacity: total)
    defer { sent.deallocate() }
    let box = UncheckedBox(sent)
    let slots = DispatchSemaphore(value: window)
    let done = DispatchSemaphore(value: 0)
    let latencies = Mutex<[UInt64]>([])
    let reading = Thread {
        let reader = FrameReader(fd: read)
        var collected = [UInt64]()
        collected.reserveCapacity(total)
        for _ in 0..<total {
            guard let body = reader.next(), let id = reader.id(in: body) else { fail("stdio session ended early") }
            let index = id - 10_000_000
            collected.append(now() - box.pointer[index])
            slots.signal()
        }
        latencies.withLock { $0 = collected }
        done.signal()
    }
    reading.start()
    let started = now()
    for index in 0..<total {
        slots.wait()
        let frame = requestFrame(id: 10_000_000 + index, method: method)
        box.pointer[index] = now()
        frame.withUnsafeBytes { writeAll(write, $0, socket: false) }
    }
    done.wait()
    return Measurement(name: name, latencies: latencies.withLock { $0 }, wall: now() - started)
}

struct UncheckedBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt64>
    init(_ pointer: UnsafeMutablePointer<UInt64>) { self.pointer = pointer }
}

/// The client library (MesaClient: Connection with its reader and writer threads).
func library(_ name: String, runtimeDirectory: String, clients: Int, perClient: Int) async -> Measurement {
    let paths = Paths(environment: ["HOME": NSHomeDirectory(), "MESA_RUNTIME_DIR": runtimeDirectory])
    var connected: [MesaClient] = []
    for _ in 0..<clients {
        do { connected.append(try MesaClient.connect(paths: paths, autostart: false)) } catch { fail("\(error)") }
    }
    defer { connected.forEach { $0.close() } }
    for client in connected {
        for _ in 0..<50 { _ = try? await client.call(ListOrgs.self, .init()) }
    }
    let started = now()
    let latencies = await withTaskGroup(of: [UInt64].self) { group in
        for client in connected {
            group.addTask {
                var latencies = [UInt64]()
                latencies.reserveCapacity(perClient)
                for _ in 0..<perClient {
                    let begin = now()
                    do { _ = try await client.call(ListOrgs.self, .init()) } catch { fail("library call failed: \(error)") }
                    latencies.append(now() - begin)
                }
                return latencies
            }
        }
        return await group.reduce(into: [UInt64]()) { $0 += $1 }
    }
    return Measurement(name: name, latencies: latencies, wall: now() - started)
}

/// `mesad --stdio` as a child with pipes, in its own HOME (the socket daemon holds the
/// other store).
final class StdioDaemon {
    let pid: pid_t
    let toChild: Int32
    let fromChild: Int32

    init(executable: String, home: String) {
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        guard pipe(&input) == 0, pipe(&output) == 0 else { fail("pipe failed") }
        for fd in input + output { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, home + "/mesad-stdio.log", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        let environment = ["HOME=\(home)", "MESA_RUNTIME_DIR=\(home)/run", "XDG_CONFIG_HOME=\(home)/.config",
                           "XDG_DATA_HOME=\(home)/.local/share", "MESA_NO_CONFIG_FILE=1"]
        let arguments: [String] = [executable, "--stdio"]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var spawned: pid_t = 0
        let status = posix_spawn(&spawned, executable, &actions, nil, argv, envp)
        close(input[0])
        close(output[1])
        guard status == 0 else { fail("cannot start \(executable) --stdio: \(String(cString: strerror(status)))") }
        pid = spawned
        toChild = input[1]
        fromChild = output[0]
    }

    /// Closes stdin (mesad exits) and reaps it; SIGKILL if it does not exit in 10 s.
    func stop() -> Int32 {
        close(toChild)
        var status: Int32 = 0
        let deadline = now() + 10_000_000_000
        while waitpid(pid, &status, WNOHANG) == 0 {
            if now() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(10_000)
        }
        close(fromChild)
        return status
    }
}

// MARK: - Main

func microseconds(_ value: Double) -> String { String(format: "%8.1f", value) }

func report(_ rows: [(Measurement, Measurement?)]) {
    print("")
    print("                                                     p50 µs   p99 µs      req/s   p50 vs echo")
    for (measurement, echo) in rows {
        let ratio = echo.map { String(format: "%6.2f×", measurement.p50 / $0.p50) } ?? ""
        print(measurement.name.padding(toLength: 50, withPad: " ", startingAt: 0)
              + "  " + microseconds(measurement.p50) + " " + microseconds(measurement.p99)
              + String(format: " %10.0f", measurement.throughput) + "   " + ratio)
    }
}

let options = Options()
let runtimeDirectory = (options.socket as NSString).deletingLastPathComponent
let processorCount = ProcessInfo.processInfo.activeProcessorCount
print("rpc-bench: method \(options.method), \(options.requests) sequential requests, \(options.clients) clients × \(options.perClient) concurrent, \(processorCount) cores")

// Echo floor, same frames, same run.
let echoPath = options.stdioHome + "/echo.sock"
let echo = EchoServer(path: echoPath)
let echoFD = connectUnix(echoPath)
let echoSequential = sequential("echo    UDS    1 client  sequential", read: echoFD, write: echoFD, socket: true,
                                options: options, checkResult: false)
close(echoFD)
let echoConcurrent = concurrent("echo    UDS   \(options.clients) clients concurrent", path: echoPath, options: options, checkResult: false)
echo.stop()

// mesad over its socket.
let socketFD = connectUnix(options.socket)
let socketSequential = sequential("mesad   socket 1 client  sequential (raw)", read: socketFD, write: socketFD, socket: true,
                                  options: options, checkResult: true)
close(socketFD)
let socketConcurrent = concurrent("mesad   socket \(options.clients) clients concurrent (raw)", path: options.socket,
                                  options: options, checkResult: true)
let librarySequential = await library("mesad   socket 1 client  sequential (MesaClient)", runtimeDirectory: runtimeDirectory,
                                      clients: 1, perClient: options.requests)
let libraryConcurrent = await library("mesad   socket \(options.clients) clients concurrent (MesaClient)",
                                      runtimeDirectory: runtimeDirectory, clients: options.clients, perClient: options.perClient)

// mesad --stdio.
let stdio = StdioDaemon(executable: options.mesad, home: options.stdioHome)
let stdioSequential = sequential("mesad   stdio  1 client  sequential (raw)", read: stdio.fromChild, write: stdio.toChild,
                                 socket: false, options: options, checkResult: true)
let stdioPipelined = pipelined("mesad   stdio  \(options.clients) in flight (pipelined)", read: stdio.fromChild,
                               write: stdio.toChild, window: options.clients, total: options.clients * options.perClient,
                               method: options.method)
let stdioStatus = stdio.stop()

report([
    (echoSequential, nil), (socketSequential, echoSequential), (librarySequential, echoSequential),
    (stdioSequential, echoSequential),
    (echoConcurrent, nil), (socketConcurrent, echoConcurrent), (libraryConcurrent, echoConcurrent),
    (stdioPipelined, echoConcurrent),
])
print("")
let p50Goal = socketSequential.p50 <= 3 * echoSequential.p50
let throughputGoal = max(socketConcurrent.throughput, libraryConcurrent.throughput) >= 20_000
print("goal p50 within 3× of echo (socket, raw client): \(p50Goal ? "met" : "MISSED") (\(String(format: "%.2f", socketSequential.p50 / echoSequential.p50))×)")
print("goal ≥ 20,000 req/s with \(options.clients) concurrent clients: \(throughputGoal ? "met" : "MISSED") (raw \(Int(socketConcurrent.throughput)), MesaClient \(Int(libraryConcurrent.throughput)))")
if stdioStatus != 0 { print("note: mesad --stdio exited with status \(stdioStatus)") }
