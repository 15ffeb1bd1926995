import ArgumentParser
import Foundation
import MesaProtocol
import RPC

/// Exit statuses shared by `mesa-client` and `mesa`, so scripts can tell failures apart.
public enum CLIExit {
    public static let success: Int32 = 0
    /// The daemon answered with an error (message on stderr).
    public static let methodError: Int32 = 1
    /// The command line was wrong.
    public static let usage: Int32 = 2
    /// No daemon answers and none could be started.
    public static let unreachable: Int32 = 3
}

/// Options every client subcommand takes.
public struct ClientOptions: ParsableArguments {
    @Flag(name: .long, help: "Print the result as JSON.")
    public var json = false

    @Flag(name: .customLong("no-start"), help: "Fail (status 3) instead of starting mesad when it is not running.")
    public var noStart = false

    public init() {}

    public func connect() async throws -> MesaClient {
        do { return try MesaClient.connect(autostart: !noStart) } catch {
            throw CLIFailure(message: error.description, status: CLIExit.unreachable)
        }
    }

    /// Calls `method` and prints its result as JSON or through `render`.
    public func run<M: MesaMethod>(_ method: M.Type, _ params: M.Params, render: (M.Result) -> String) async throws {
        let client = try await connect()
        defer { client.close() }
        let result: M.Result
        do { result = try await client.call(method, params) } catch {
            throw CLIFailure(error)
        }
        print(json ? Output.json(result) : render(result))
    }
}

/// `[--org O] REPO`: the repo a repo-level verb acts on.
public struct RepoArguments: ParsableArguments {
    @Option(help: "Organization.") public var org: String?
    @Argument(help: "Repository name.") public var repo: String
    public init() {}
    public var params: GetRepo.Params { GetRepo.Params(org: org, repo: repo) }
}

/// `--limit N --cursor C`: one page of a listing.
public struct PageOptions: ParsableArguments {
    @Option(help: "Page size, 1 to 100.") public var limit: Int?
    @Option(help: "Cursor from a previous page.") public var cursor: String?
    public init() {}
    public var page: PageRequest { PageRequest(cursor: cursor, limit: limit) }
}

/// A failure carrying the exit status it maps to.
public struct CLIFailure: Error, CustomStringConvertible {
    public let message: String
    public let status: Int32

    public init(message: String, status: Int32) {
        self.message = message
        self.status = status
    }

    public init(_ failure: MesaClient.Failure) {
        switch failure {
        case .unreachable(let message): self.init(message: message, status: CLIExit.unreachable)
        case .method(let error):
            let hint = error.data?["code"]?.stringValue.map { " [\($0)]" } ?? ""
            self.init(message: error.message + hint, status: CLIExit.methodError)
        }
    }

    public var description: String { message }
}

public enum Output {
    public static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// A plain aligned table; the header row is upper-cased, like `docker ps`.
    public static func table(_ header: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "(none)" }
        let all = [header.map { $0.uppercased() }] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// Parses and runs a command tree with the shared exit statuses: usage errors are 2
/// (argument-parser's default is 64), `--help` is 0.
public enum CLIRunner {
    /// Parses `arguments` (without the program name; nil: this process's) and runs the command.
    public static func main<Command: AsyncParsableCommand>(_ type: Command.Type, arguments: [String]? = nil) async -> Never {
        do {
            var command = try type.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(CLIExit.success)
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data("\(type.configuration.commandName ?? "mesa"): \(failure.message)\n".utf8))
            exit(failure.status)
        } catch {
            let code = type.exitCode(for: error)
            if code == .success {
                print(type.fullMessage(for: error))
                exit(CLIExit.success)
            }
            FileHandle.standardError.write(Data((type.fullMessage(for: error) + "\n").utf8))
            exit(code == .failure || code.rawValue == 64 ? CLIExit.usage : code.rawValue)
        }
    }
}
