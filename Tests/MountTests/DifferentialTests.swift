import Foundation
import MesaAPI
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
        }
    }

    /// Runs the operation under `root`; returns 0 or the errno, plus bytes read.
    func run(in root: String) -> (Int32, [UInt8]) {
        func check(_ result: Int) -> Int32 { result < 0 ? errno : 0 }
        func writeAt(_ path: String, _ flags: Int32, _ bytes: [UInt8], _ offset: Int?) -> Int32 {
            let fd = open(root + "/" + path, flags | O_WRONLY | O_CREAT, 0o644)
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
        case .read(let p):
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
        switch Int.random(in: 0..<12, using: &rng) {
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

/// Everything observable about a tree: type, permission bits, content or target.
func snapshot(_ root: String) -> [String: String] {
    var result: [String: String] = [:]
    func walk(_ relative: String) {
        let directory = relative.isEmpty ? root : root + "/" + relative
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
            let path = relative.isEmpty ? name : relative + "/" + name
            var info = Glibc.stat()
            guard lstat(root + "/" + path, &info) == 0 else { result[path] = "lstat failed"; continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                result[path] = "dir \(String(info.st_mode & 0o777, radix: 8))"
                walk(path)
            case S_IFLNK:
                result[path] = "link " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + path)) ?? "?")
            default:
                let bytes = (try? Data(contentsOf: URL(fileURLWithPath: root + "/" + path))) ?? Data()
                result[path] = "file \(String(info.st_mode & 0o777, radix: 8)) \(info.st_size) \(Array(bytes))"
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
        let fs = try fx.mount()
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
        for (path, description) in snapshot(native) where !description.hasPrefix("dir") {
            if description.hasPrefix("link ") {
                expected[path] = "->" + description.dropFirst(5)
            } else {
                let data = (try? Data(contentsOf: URL(fileURLWithPath: native + "/" + path))) ?? Data()
                let executable = description.hasPrefix("file 755")
                expected[path] = (executable ? "x:" : "") + String(decoding: data, as: UTF8.self)
            }
        }
        let stored = try fs.status().workingChange.map { try fx.tree(at: .change($0)) } ?? [:]
        #expect(stored == expected, "seed \(seed): store differs from the native tree")
    }
}
