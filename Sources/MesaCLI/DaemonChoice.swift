import ArgumentParser
import Client
import Foundation
import MesaProtocol

/// `--pid N | --pid-file P`, as Mesa's `mesa show` and `mesa stats` take them: which
/// running daemon to ask. mesad runs one daemon per runtime directory, so this checks
/// that the daemon of `$MESA_RUNTIME_DIR` (its `mesad.pid`) is the one named, and fails
/// (status 3) otherwise instead of asking another.
struct DaemonChoice: ParsableArguments {
    @Option(help: "Ask the running daemon with this process id.") var pid: Int32?
    @Option(name: .customLong("pid-file"), help: "Ask the running daemon whose pid this file holds.") var pidFile: String?

    func validate() throws {
        if pid != nil && pidFile != nil { throw ValidationError("--pid and --pid-file cannot be used together") }
        if let pid, pid <= 0 { throw ValidationError("--pid must be a positive process id, not \(pid)") }
    }

    /// Throws unless the named daemon is the one serving this runtime directory.
    func check(paths: Paths = Paths()) throws {
        guard pid != nil || pidFile != nil else { return }
        let wanted: Int32
        if let pid { wanted = pid } else {
            let file = pidFile ?? ""
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CLIFailure(message: "cannot read the pid file \(file)", status: CLIExit.unreachable)
            }
            guard let number = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), number > 0 else {
                throw CLIFailure(message: "the pid file \(file) holds no process id", status: CLIExit.unreachable)
            }
            wanted = number
        }
        let serving = (try? String(contentsOfFile: paths.pidFile, encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard let serving, serving == wanted, kill(wanted, 0) == 0 || errno == EPERM else {
            let current = serving.map { "pid \($0)" } ?? "none"
            throw CLIFailure(message: "no mesad with pid \(wanted) serves \(paths.runtimeDirectory) (its daemon: \(current))",
                             status: CLIExit.unreachable)
        }
    }
}
