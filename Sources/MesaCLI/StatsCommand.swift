import ArgumentParser
import Client
import Foundation
import MesaProtocol

/// `mesa stats [--format table|json] [--pid N | --pid-file P]`: what a running daemon holds.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show what the running mesad holds: mounts, blob cache size and hit rate, pending uploads, syncs in flight.",
        discussion: "Never starts mesad: without a running daemon it fails with status 3.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    @OptionGroup var options: ClientOptions
    @OptionGroup var daemon: DaemonChoice
    @Option(help: "table (default) or json.") var format: Format = .table

    func run() async throws {
        try daemon.check()
        var options = options
        options.noStart = true
        let json = options.json || format == .json
        options.json = false
        try await options.run(DaemonStats.self, .init()) { json ? Output.json($0) : Self.render($0) }
    }

    static func render(_ stats: DaemonStats.Result) -> String {
        var lines = ["mesad \(stats.version), pid \(stats.pid), up \(duration(stats.uptimeSeconds))"]
        if let cache = stats.cache {
            let rate = cache.hitRate.map { String(format: "%.1f%%", $0 * 100) } ?? "-"
            lines.append("cache            \(cache.entries) blobs, \(bytes(cache.usedBytes)) of \(bytes(cache.maxBytes)) (\(cache.path))")
            lines.append("cache hit rate   \(rate) (\(cache.hits) hits, \(cache.misses) misses)")
        } else {
            lines.append("cache            - (mounting is unavailable in this daemon)")
        }
        lines.append("pending uploads  \(stats.pendingUploads)")
        lines.append("syncs in flight  \(stats.syncsInFlight.map(String.init) ?? "- (run by mesa-server)")")
        lines.append("")
        lines.append(Output.table(["mount", "path", "mode", "pending", "dirty", "last error"], stats.mounts.map { mount in
            [mount.mountId, mount.path, mount.mode, mount.pendingUploads.map(String.init) ?? "-",
             mount.dirtyPaths.map(String.init) ?? "-", mount.lastError ?? "-"]
        }))
        return lines.joined(separator: "\n")
    }

    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count), unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f", value) + " " + units[unit]
    }

    static func duration(_ seconds: Int) -> String {
        let (hours, minutes, rest) = (seconds / 3600, seconds / 60 % 60, seconds % 60)
        return hours > 0 ? "\(hours)h \(minutes)m" : minutes > 0 ? "\(minutes)m \(rest)s" : "\(rest)s"
    }
}
