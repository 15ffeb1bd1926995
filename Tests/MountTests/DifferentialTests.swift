import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

/// A deterministic generator (SplitMix64) so a failing sequence can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One filesystem operation, run with raw POSIX calls so errnos can be compared.
enum Operation: CustomStringConvertible {
    case write(String, [UInt8]), append(String, [UInt8]), pwrite(String, Int, [UInt8]), truncate(String, Int)
    case unlink(String), mkdir(String), rmdir(String), rename(String, String), symlink(String, String)
    case chmod(String, mode_t), read(String)
    case link(String, String), mkfifo(String), mknod(String, mode_t, dev_t), chown(String, uid_t, gid_t)

    var description: String {
        switch self {
        case .write(let p, let b): "write \(p) \(b.count)B"
        case .append(let p, let b): "append \(p) \(b.count)B"
        case .pwrite(let p, let o, let b): "pwrite \(p) @\(o) \(b.count)B"
        case .truncate(let p, let s): "truncate \(p) \(s)"
        case .unlink(let p): "unlink \(p)"
        case .mkdir(let p): "mkdir \(p)"
        case .rmdir(let p): "rmdir \(p)"
        case .rename(let a, let b): "rename \(a) \(b)"
        case .symlink(let t, let p): "symlink \(t) \(p)"
        case .chmod(let p, let m): "chmod \(p) \(String(m, radix: 8))"
        case .read(let p): "read \(p)"
        case .link(let a, let b): "link \(a) \(b)"
        case .mkfifo(let p): "mkfifo \(p)"
        case .mknod(let p, let m, let d): "mknod \(p) \(String(m, radix: 8)) \(d)"
        case .chown(let p, let u, let g): "chown \(p) \(u):\(g)"
        }
    }

    /// Runs the operation under `root`; returns 0 or the errno, plus bytes read.
    func run(in root: String) -> (Int32, [UInt8]) {
        func check(_ result: Int) -> Int32 { result < 0 ? errno : 0 }
        func writeAt(_ path: String, _ flags: Int32, _ bytes: [UInt8], _ offset: Int?) -> Int32 {
            // O_NONBLOCK: opening a FIFO for writing without a reader fails (ENXIO) instead of waiting.
            let fd = open(root + "/" + path, flags | O_WRONLY | O_CREAT | O_NONBLOCK, 0o644)
            guard fd >= 0 else { return errno }
            defer { close(fd) }
            let result = bytes.withUnsafeBytes { raw in
                offset.map { Glibc.pwrite(fd, raw.baseAddress, raw.count, off_t($0)) } ?? Glibc.write(fd, raw.baseAddress, raw.count)
            }
            return check(result)
        }
        switch self {
        case .write(let p, let b): return (writeAt(p, O_TRUNC, b, nil), [])
        case .append(let p, let b): return (writeAt(p, O_APPEND, b, nil), [])
        case .pwrite(let p, let o, let b): return (writeAt(p, 0, b, o), [])
        case .truncate(let p, let s): return (check(Int(Glibc.truncate(root + "/" + p, off_t(s)))), [])
        case .unlink(let p): return (check(Int(Glibc.unlink(root + "/" + p))), [])
        case .mkdir(let p): return (check(Int(Glibc.mkdir(root + "/" + p, 0o755))), [])
        case .rmdir(let p): return (check(Int(Glibc.rmdir(root + "/" + p))), [])
        case .rename(let a, let b): return (check(Int(Glibc.rename(root + "/" + a, root + "/" + b))), [])
        case .symlink(let t, let p): return (check(Int(Glibc.symlink(t, root + "/" + p))), [])
        case .chmod(let p, let m): return (check(Int(Glibc.chmod(root + "/" + p, m))), [])
        case .link(let a, let b): return (check(Int(Glibc.link(root + "/" + a, root + "/" + b))), [])
        case .mkfifo(let p): return (check(Int(Glibc.mkfifo(root + "/" + p, 0o640))), [])
        case .mknod(let p, let m, let d): return (check(Int(Glibc.mknod(root + "/" + p, m, d))), [])
        case .chown(let p, let u, let g): return (check(Int(Glibc.lchown(root + "/" + p, u, g))), [])
        case .read(let p):
            // Opening a FIFO for reading would wait for a writer: read only regular files.
            var info = Glibc.stat()
            if stat(root + "/" + p, &info) == 0, info.st_mode & S_IFMT != S_IFREG, info.st_mode & S_IFMT != S_IFDIR {
                return (0, [])
            }
            let fd = open(root + "/" + p, O_RDONLY)
            guard fd >= 0 else { return (errno, []) }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            return count < 0 ? (errno, []) : (0, Array(buffer.prefix(count)))
        }
    }

    static func random(_ rng: inout SeededGenerator) -> Operation {
        let files = ["a", "b", "d/a", "d/b", "d/e/a", "e/a", "e/b"]
        let directories = ["d", "d/e", "e"]
        // Mostly file names, sometimes a directory, so both success and refusal paths run.
        func name() -> String {
            (Int.random(in: 0..<8, using: &rng) == 0 ? directories : files).randomElement(using: &rng) ?? "a"
        }
        func directory() -> String {
            (Int.random(in: 0..<4, using: &rng) == 0 ? files : directories).randomElement(using: &rng) ?? "d"
        }
        func bytes() -> [UInt8] { (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 97...122, using: &rng) } }
        let modes: [mode_t] = [0o600, 0o111, 0o4755, 0o2755, 0o1777, 0o700, 0o640]
        switch Int.random(in: 0..<18, using: &rng) {
        case 12: return .link(name(), name())
        case 13: return .mkfifo(name())
        case 14: return .mknod(name(), [S_IFCHR | 0o600, S_IFBLK | 0o660, S_IFSOCK | 0o755][Int.random(in: 0..<3, using: &rng)], 0x103)
        case 15: return .chown(name(), [0, 1000, 65534][Int.random(in: 0..<3, using: &rng)], [0, 1000, 100][Int.random(in: 0..<3, using: &rng)])
        case 16: return .chmod(directory(), modes[Int.random(in: 0..<modes.count, using: &rng)])
        case 17: return .chmod(name(), modes[Int.random(in: 0..<modes.count, using: &rng)])
        case 0, 1: return .write(name(), bytes())
        case 2: return .append(name(), bytes())
        case 3: return .pwrite(name(), Int.random(in: 0...100, using: &rng), bytes())
        case 4: return .truncate(name(), Int.random(in: 0...80, using: &rng))
        case 5: return .unlink(name())
        case 6: return .mkdir(directory())
        case 7: return .rmdir(directory())
        case 8: return .rename(name(), name())
        case 9: return .symlink(name(), name())
        case 10: return .chmod(name(), Bool.random(using: &rng) ? 0o755 : 0o644)
        default: return .read(name())
        }
    }
}

/// Everything observable about a tree: type, every mode bit, owner, link count, which
/// paths share an inode, device numbers, content or target.
func snapshot(_ root: String) -> [String: String] {
    var result: [String: String] = [:]
    var firstPathOfInode: [UInt: String] = [:]
    func walk(_ relative: String) {
        let directory = relative.isEmpty ? root : root + "/" + relative
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
            let path = relative.isEmpty ? name : relative + "/" + name
            var info = Glibc.stat()
            guard lstat(root + "/" + path, &info) == 0 else { result[path] = "lstat failed"; continue }
            let mode = String(info.st_mode & 0o7777, radix: 8)
            let owner = "\(info.st_uid):\(info.st_gid)"
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                result[path] = "dir \(mode) \(owner)"
                walk(path)
            case S_IFLNK:
                result[path] = "link \(owner) " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + path)) ?? "?")
            case S_IFREG:
                let bytes = (try? Data(contentsOf: URL(fileURLWithPath: root + "/" + path))) ?? Data()
                let group = firstPathOfInode[UInt(info.st_ino)] ?? path
                firstPathOfInode[UInt(info.st_ino)] = group
                result[path] = "file \(mode) \(owner) nlink=\(info.st_nlink) same=\(group) \(info.st_size) \(Array(bytes))"
            default:
                let group = firstPathOfInode[UInt(info.st_ino)] ?? path
                firstPathOfInode[UInt(info.st_ino)] = group
                result[path] = "special \(String(info.st_mode & S_IFMT, radix: 8)) \(mode) \(owner) nlink=\(info.st_nlink) same=\(group) rdev=\(info.st_rdev)"
            }
        }
    }
    walk("")
    return result
}

@Suite(.enabled(if: fuseAvailable, "needs /dev/fuse"), .timeLimit(.minutes(5)))
struct DifferentialTests {
    @Test(arguments: [UInt64(1), 7, 42])
    func randomOperationsMatchTheNativeFilesystem(seed: UInt64) throws {
        let fx = try MountFixture()
        var mount: RepoFileSystem? = try fx.mount()
        let fs = try #require(mount)
        let native = fx.scratch("native")
        try FileManager.default.createDirectory(atPath: native, withIntermediateDirectories: true)
        var rng = SeededGenerator(state: seed)
        var outcomes: [Int32: Int] = [:]
        try fx.withMount(fs) { mounted in
            for directory in ["d", "d/e", "e"] {
                #expect(Operation.mkdir(directory).run(in: native).0 == Operation.mkdir(directory).run(in: mounted).0)
            }
            for step in 0..<400 {
                let operation = Operation.random(&rng)
                let expected = operation.run(in: native)
                outcomes[expected.0, default: 0] += 1
                let actual = operation.run(in: mounted)
                #expect(actual.0 == expected.0, "seed \(seed) step \(step) \(operation): errno \(actual.0), native \(expected.0)")
                #expect(actual.1 == expected.1, "seed \(seed) step \(step) \(operation): read differs")
                if actual.0 != expected.0 { break }
            }
            #expect(snapshot(mounted) == snapshot(native), "seed \(seed): trees differ")
        }
        // The sequence must exercise both successes and several kinds of refusal.
        #expect(outcomes[0, default: 0] > 100)
        #expect(outcomes.keys.filter { $0 != 0 }.count >= 4, "errnos seen: \(outcomes)")
        print("seed \(seed) outcomes by errno: \(outcomes.sorted { $0.key < $1.key })")
        // What reached the store is the native tree's files (git keeps no empty dirs
        // and versions only the exec bit).
        try fs.flush()
        var expected: [String: String] = [:]
        // Special files, owners and mode bits other than a file's exec bit stay local;
        // each hard-linked path is a file of its own.
        for (path, description) in snapshot(native) where description.hasPrefix("file") || description.hasPrefix("link") {
            if description.hasPrefix("link ") {
                expected[path] = "->" + (try FileManager.default.destinationOfSymbolicLink(atPath: native + "/" + path))
            } else {
                let data = (try? Data(contentsOf: URL(fileURLWithPath: native + "/" + path))) ?? Data()
                var info = Glibc.stat()
                _ = lstat(native + "/" + path, &info)
                let executable = info.st_mode & 0o100 != 0
                expected[path] = (executable ? "x:" : "") + String(decoding: data, as: UTF8.self)
            }
        }
        let stored = try fs.status().workingChange.map { try fx.tree(at: .change($0)) } ?? [:]
        #expect(stored == expected, "seed \(seed): store differs from the native tree")
        // A daemon restart (the journal, compacted by the upload, replayed on a fresh
        // mount) brings back everything local: special files, links, owners, modes.
        mount = nil
        _ = consume fs
        let restarted = try fx.mount()
        try fx.withMount(restarted) { mounted in
            #expect(snapshot(mounted) == snapshot(native), "seed \(seed): trees differ after a restart")
        }
    }
}
