import ArgumentParser
import Client
import Foundation
import MesaProtocol
import RPC

/// `mesa-client hook <Event>`, for Claude Code's settings.json. Listed here for --help;
/// runs through `HookCLI`, which never exits 2 on a bad command line (to Claude Code, 2
/// means "block": a typo must not stop an agent from stopping).
struct Hook_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "Run a Claude Code hook: reads the event's JSON on stdin, acts on the mount holding cwd or the edited file.",
        discussion: """
        Events: SessionStart (start mesad, mount the repo, print context for the agent), UserPromptSubmit (remember the \
        prompt), PreToolUse (refuse, exit 2, a Write/Edit into a read-only mount), PostToolUse (upload the edit now), \
        Stop (checkpoint with a message from the prompts and changed files). Others do nothing.
        Exit status: 0 done, 1 failed without blocking (mesad unreachable, timeout), 2 blocked (PreToolUse only).
        Install them with `mesa hooks install`.
        """)
    @Argument(help: "The hook event name, e.g. Stop.") var event: String
    @Flag(name: .customLong("session-bookmarks"), help: "Checkpoint onto bookmark session/<session_id> instead of the mount's bookmark.")
    var sessionBookmarks = false
    @Option(help: "Give up (exit 1) after this many seconds.") var timeout: Int = 10
    func run() async throws {
        await HookCLI.main([event, "--timeout", String(timeout)] + (sessionBookmarks ? ["--session-bookmarks"] : []))
    }
}

enum HookCLI {
    static func main(_ arguments: [String]) async -> Never {
        var event: String?
        var options = HookOptions()
        var timeout = 10
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--session-bookmarks": options.sessionBookmarks = true
            case "--timeout":
                index += 1
                if index < arguments.count, let seconds = Int(arguments[index]), seconds > 0 { timeout = seconds }
            default:
                if argument.hasPrefix("-") || event != nil {
                    FileHandle.standardError.write(Data("mesa-client hook: ignoring unknown argument '\(argument)'\n".utf8))
                } else {
                    event = argument
                }
            }
            index += 1
        }
        guard let event else { finish(.failed("hook needs an event name, e.g. `mesa-client hook Stop`")) }
        let seconds = timeout
        // A hook never hangs the agent: whatever is stuck, stop here (non-blocking).
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(seconds)) {
            finish(.failed("hook \(event) gave up after \(seconds) s (is mesad stuck? see `mesa status`)"))
        }
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let payload: HookPayload
        do { payload = try HookPayload.parse(Array(input)) } catch { finish(.failed(error.message)) }
        if let named = payload.hookEventName, named != event {
            FileHandle.standardError.write(Data("mesa: hook command is for \(event) but the input is a \(named) event; acting as \(event)\n".utf8))
        }
        finish(await HookRunner(event: event, payload: payload, options: options).run())
    }

    static func finish(_ outcome: HookOutcome) -> Never {
        if let text = outcome.stdout { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
        if let text = outcome.stderr { FileHandle.standardError.write(Data((text + "\n").utf8)) }
        exit(outcome.status)
    }
}

/// `mesa-client watch`: prints mesad's event notifications as JSON lines until Ctrl+C.
struct Watch_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print mesad's events (files changed, uploads, checkpoints, bookmark moves, lost mounts) as JSON lines.",
        discussion: "Runs until interrupted (Ctrl+C exits 0). Exit 3 when mesad is unreachable or goes away.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Only this mount: a mount id (org/repo, tree) or any path inside it.") var mount: String?
    @Option(help: "Comma-separated events (default all): \(MesaEvents.all.joined(separator: ",")).") var events: String?
    func run() async throws {
        let notifications = Dispatcher()
        for method in MesaEvents.methods {
            notifications.registerNotification(method: method) { params, _ in
                FileHandle.standardOutput.write(Data((Watch_.line(params ?? .null) + "\n").utf8))
            }
        }
        let client: MesaClient
        do { client = try MesaClient.connect(autostart: !options.noStart, notifications: notifications) } catch {
            throw CLIFailure(message: error.description, status: CLIExit.unreachable)
        }
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        signal(SIGINT, SIG_IGN)
        interrupt.setEventHandler { Foundation.exit(CLIExit.success) }
        interrupt.resume()
        let selector = mount.map { $0.hasPrefix("/") ? MountSelector.path($0) : .id($0) } ?? MountSelector()
        let params = Subscribe.Params(selector, .init(events: events.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }))
        do {
            let subscribed = try await client.call(Subscribe.self, params)
            FileHandle.standardError.write(Data("watching \(subscribed.mountId ?? "every mount") for \(subscribed.events.joined(separator: ", ")); Ctrl+C stops\n".utf8))
        } catch {
            throw CLIFailure(error)
        }
        let reason = await client.connection.waitUntilClosed()
        if case .peerClosed = reason { throw CLIFailure(message: "mesad stopped", status: CLIExit.unreachable) }
        throw CLIFailure(message: "mesad closed the connection (\(reason))", status: CLIExit.unreachable)
    }

    /// One JSON line with sorted keys, so lines are easy to read and to diff.
    static func line(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? String(decoding: value.serialized, as: UTF8.self)
    }
}
