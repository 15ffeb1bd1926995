/// Which repository paths are ephemeral: the rules of a `.mesaignore` file (gitignore
/// syntax) on top of `IgnoreRules.defaultText`. Paths are relative to the repository
/// root, `/`-separated, without a leading or trailing slash.
///
/// Semantics follow git's (`dir.c`, `wildmatch.c`), so `git check-ignore` is the
/// oracle the tests compare against:
/// - blank lines and lines starting with `#` match nothing (`\#` is a literal `#`);
/// - trailing spaces are dropped unless escaped with a backslash;
/// - `!` negates (`\!` is a literal `!`); the last matching rule wins;
/// - a trailing `/` matches directories only;
/// - a pattern with a `/` at its start or in its middle is anchored at the root,
///   otherwise it matches the last component at any depth;
/// - `*`, `?` and `[...]` never match `/`; `**/`, `/**/` and `/**` match across
///   directories; a path below an ignored directory is ignored whatever later rules
///   say (git cannot re-include a file whose parent directory is excluded).
public struct IgnoreRules: Sendable, Equatable {
    struct Rule: Sendable, Equatable {
        /// The pattern's bytes (escapes kept; wildmatch interprets them).
        let pattern: [UInt8]
        let negated: Bool
        let directoryOnly: Bool
        /// Matched against the whole path; otherwise against the last component.
        let anchored: Bool
    }

    let rules: [Rule]

    /// Rules parsed from gitignore text, in order. Lines that cannot match anything
    /// (blank, comments, a lone `!`) are skipped; nothing in gitignore syntax is an
    /// error, as in git.
    public init(parsing text: String) {
        rules = Self.parse(Array(text.utf8))
    }

    /// The built-in rules followed by the repository's `.mesaignore` (which can
    /// re-include a default with `!`, e.g. `!dist/`).
    public init(mesaignore text: String?) {
        rules = Self.parse(Array(Self.defaultText.utf8)) + Self.parse(Array((text ?? "").utf8))
    }

    /// Whether `path` is ignored. `isDirectory` is the path's own kind (directory-only
    /// rules need it); every parent component is a directory by definition.
    public func isIgnored(_ path: String, isDirectory: Bool) -> Bool {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, !rules.isEmpty else { return false }
        var end = 0
        while end < bytes.count {
            // Parents first: an ignored parent ignores everything below it.
            if bytes[end] == UInt8(ascii: "/") {
                if end > 0, match(bytes[0..<end], isDirectory: true) == true { return true }
            }
            end += 1
        }
        return match(bytes[...], isDirectory: isDirectory) == true
    }

    /// The last matching rule's verdict: true ignored, false re-included, nil no rule.
    private func match(_ path: ArraySlice<UInt8>, isDirectory: Bool) -> Bool? {
        let basename: ArraySlice<UInt8> = path.lastIndex(of: UInt8(ascii: "/")).map { path[($0 + 1)...] } ?? path
        for rule in rules.reversed() {
            if rule.directoryOnly && !isDirectory { continue }
            let subject = rule.anchored ? path : basename
            if Wildmatch.match(rule.pattern[...], subject, pathname: rule.anchored) { return !rule.negated }
        }
        return nil
    }

    static func parse(_ text: [UInt8]) -> [Rule] {
        var rules: [Rule] = []
        for rawLine in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            var line = Array(rawLine)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if line.first == UInt8(ascii: "#") { continue }
            line = trimTrailingSpaces(line)
            var negated = false
            if line.first == UInt8(ascii: "!") {
                negated = true
                line.removeFirst()
            }
            var directoryOnly = false
            if line.last == UInt8(ascii: "/") {
                directoryOnly = true
                while line.last == UInt8(ascii: "/") { line.removeLast() }
            }
            guard !line.isEmpty else { continue }
            // git anchors a pattern holding a slash anywhere but at its end.
            let anchored = line.contains(UInt8(ascii: "/"))
            if line.first == UInt8(ascii: "/") { line.removeFirst() }
            guard !line.isEmpty else { continue }
            rules.append(Rule(pattern: line, negated: negated, directoryOnly: directoryOnly, anchored: anchored))
        }
        return rules
    }

    /// git's `trim_trailing_spaces`: unescaped trailing spaces go; `\ ` keeps its space.
    private static func trimTrailingSpaces(_ line: [UInt8]) -> [UInt8] {
        var lastKept = -1
        var index = 0
        while index < line.count {
            if line[index] == UInt8(ascii: "\\") {
                // The backslash and the byte it escapes both stay (a trailing one too).
                lastKept = min(index + 1, line.count - 1)
                index += 2
                continue
            }
            if line[index] != UInt8(ascii: " ") { lastKept = index }
            index += 1
        }
        return Array(line.prefix(lastKept + 1))
    }
}

extension IgnoreRules {
    /// What every mount ignores before its `.mesaignore` (printed by
    /// `mesa dump-default-mesaignore`). Only names that tools own and regenerate: a
    /// name that is often hand-written content (`build/`, `out/`, `bin/`, `lib/`,
    /// `env/`, `coverage/`, `.idea/`, `.vscode/`) is left out, because ignoring it
    /// would silently keep a user's work out of history; add those in `.mesaignore`.
    public static let defaultText = """
        # mesa's built-in ephemeral paths: kept in the mount's local layer only, never
        # uploaded or checkpointed. A repository's .mesaignore adds rules after these
        # and can re-include one with "!" (e.g. "!dist/"). Paths inside .git are always
        # local-only, whatever the rules say.

        # JavaScript / TypeScript: installed packages, framework build output and caches
        node_modules/
        .next/
        .nuxt/
        .svelte-kit/
        .turbo/
        .parcel-cache/
        # Distribution builds (npm, Python sdist/wheel): regenerated by the build
        dist/

        # Python: virtual environments (the conventional names) and caches
        .venv/
        venv/
        __pycache__/
        *.pyc
        .tox/
        .nox/
        .mypy_cache/
        .pytest_cache/
        .ruff_cache/

        # Rust (cargo) and Maven build output
        target/
        # Gradle, SwiftPM, Zig and Terraform working state
        .gradle/
        .build/
        .zig-cache/
        .terraform/

        # Generic tool caches and editor/OS droppings
        .cache/
        .*.swp
        .DS_Store

        """
}
