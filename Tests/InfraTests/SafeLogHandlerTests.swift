import Infra
import Logging
import Synchronization
import Testing

final class Lines: Sendable {
    let value = Mutex<[String]>([])
}

/// Collects what reaches the wrapped handler.
struct Capture: LogHandler {
    let lines: Lines
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        lines.value.withLock { $0.append(([event.message.description] + fields).joined(separator: " ")) }
    }
}

@Suite struct SafeLogHandlerTests {
    @Test func controlCharactersInMessagesAndMetadataCannotForgeOrCutALine() {
        let sink = Capture(lines: Lines())
        let logger = Logger(label: "t") { _ in SafeLogHandler(sink) }
        let hostile = "Content-Length: 5\nmesad: info: FORGED admin logged in\0tail\r\u{1B}[2J\u{202E}txt.exe"
        logger.warning("bad header: \(hostile)", metadata: ["header": "\(hostile)", "list": .array([.string("a\nb")]),
                                                              "k\ney": "v"])
        let lines = sink.lines.value.withLock { $0 }
        #expect(lines.count == 1)
        let line = lines[0]
        #expect(!line.contains("\n") && !line.contains("\0") && !line.contains("\r") && !line.contains("\u{1B}"))
        #expect(!line.contains("\u{202E}"))
        #expect(line.contains(#"5\nmesad: info: FORGED admin logged in\0tail\r\u{1B}[2J\u{202E}txt.exe"#), "\(line)")
        #expect(line.contains(#"k\ney=v"#) && line.contains("list="), "\(line)")
    }

    @Test func plainTextPassesUnchanged() {
        #expect(SafeLogHandler.escape("path=/a b/ü.txt") == "path=/a b/ü.txt")
        #expect(SafeLogHandler.escape("tab\there") == #"tab\there"#)
    }
}
