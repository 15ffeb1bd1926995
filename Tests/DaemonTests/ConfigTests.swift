import Foundation
@testable import MesaDaemon
import MesaProtocol
import Model
import Testing

/// config.toml, the environment, and the first-boot config, through `DaemonConfig.load`.
@Suite struct ConfigTests {
    /// Loads `toml` as the user's config file (found by the search path).
    func load(_ toml: String?, environment extra: [String: String] = [:], sandbox: Sandbox? = nil) throws -> DaemonConfig {
        let sandbox = try sandbox ?? Sandbox()
        if let toml { _ = try sandbox.write(".config/mesa/config.toml", toml) }
        return try DaemonConfig.load(.init(environment: sandbox.environment(extra)))
    }

    func configError(_ toml: String?, environment: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try load(toml, environment: environment)
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            Issue.record("expected a ConfigError, got \(error)")
            return nil
        }
    }

    @Test func defaultsWithoutAnyConfig() throws {
        let sandbox = try Sandbox()
        let config = try load(nil, sandbox: sandbox)
        #expect(config.configFile == nil)
        #expect(config.organizations.isEmpty)
        #expect(config.apiURL == nil)
        #expect(config.mountPoint == sandbox.home + "/.local/share/mesa/mnt")
        #expect(config.paths.runtimeDirectory == sandbox.runtimeDirectory)
        #expect(config.paths.storeDirectory == sandbox.home + "/.local/share/mesa/store")
        #expect(config.cacheMaxBytes == 10 << 30)
        #expect(config.maxFrameBytes == 64 << 20)
    }

    @Test func parsesAFullConfigFile() throws {
        let sandbox = try Sandbox()
        let config = try load("""
            mount-point = "~/mesa"
            api-url = "http://127.0.0.1:9999"

            [organizations.acme]
            api-key = "mesa_acme"
            mount = "explicit"

            [organizations.acme.repos.web]
            rev = { bookmark = "release" }

            [organizations.acme.repos.api]
            rev = { change-id = "kkkkzzzzkkkkzzzzkkkkzzzzkkkkzzzz" }

            [organizations.acme.repos.docs]

            [organizations.beta]
            api-key = "mesa_beta"
            mount = "all"

            [organizations.gamma]
            api-key = "mesa_gamma"
            [organizations.gamma.repos.only]

            [cache]
            path = "~/cache"
            max-size = "10GB"

            [daemon]
            log-level = "debug"
            max-frame-size = "1MiB"
            """, sandbox: sandbox)
        #expect(config.configFile == sandbox.home + "/.config/mesa/config.toml")
        #expect(config.mountPoint == sandbox.home + "/mesa")
        #expect(config.apiURL == "http://127.0.0.1:9999")
        #expect(config.cacheDirectory == sandbox.home + "/cache")
        #expect(config.cacheMaxBytes == 10_000_000_000)
        #expect(config.maxFrameBytes == 1 << 20)
        #expect(config.logLevel == "debug")
        #expect(config.warnings.isEmpty)

        let orgs = Dictionary(uniqueKeysWithValues: config.organizations.map { ($0.name, $0) })
        #expect(Set(orgs.keys) == ["acme", "beta", "gamma"])
        let acme = try #require(orgs["acme"])
        #expect(acme.apiKey == "mesa_acme")
        #expect(acme.mount == .explicit)
        let repos = Dictionary(uniqueKeysWithValues: acme.repos.map { ($0.name, $0.rev) })
        #expect(repos.count == 3)
        #expect(repos["web"] == .some(.bookmark("release")))
        #expect(repos["api"] == .some(.changeID("kkkkzzzzkkkkzzzzkkkkzzzzkkkkzzzz")))
        #expect(repos["docs"] == .some(nil))
        #expect(orgs["beta"]?.mount == .all)
        #expect(orgs["beta"]?.repos.isEmpty == true)
        // Mesa's rule: listing repos without `mount` means explicit.
        #expect(orgs["gamma"]?.mount == .explicit)
        #expect(orgs["gamma"]?.repos.map(\.name) == ["only"])
    }

    @Test(arguments: [
        ("10GB", 10_000_000_000), ("512MB", 512_000_000), ("512MiB", 512 << 20), ("1.5GiB", 3 << 29),
        ("2048", 2048), ("1 kb", 1000), ("64KiB", 64 << 10),
    ])
    func cacheSizes(text: String, bytes: Int) throws {
        let config = try load("[cache]\nmax-size = \"\(text)\"\n")
        #expect(config.cacheMaxBytes == bytes)
    }

    @Test func followIntervalDefaultsToTwoSecondsAndCanBeDisabled() throws {
        #expect(try load(nil).followIntervalMilliseconds == 2000)
        #expect(try load("[daemon]\nfollow-interval-ms = 0\n").followIntervalMilliseconds == 0)
        #expect(try load("[daemon]\nfollow-interval-ms = 500\n", environment: ["MESA_DAEMON_FOLLOW_INTERVAL_MS": "750"])
            .followIntervalMilliseconds == 750)
        #expect(configError("[daemon]\nfollow-interval-ms = -1\n")?.message.contains("follow-interval-ms must be an integer") == true)
        #expect(configError(nil, environment: ["MESA_DAEMON_FOLLOW_INTERVAL_MS": "often"])?.message
            .contains("MESA_DAEMON_FOLLOW_INTERVAL_MS") == true)
    }

    @Test func maxConnectionsDefaultsTo16384AndRefusesNonsense() throws {
        #expect(try load(nil).maxConnections == 16_384)
        #expect(try load("[daemon]\nmax-connections = 3\n").maxConnections == 3)
        #expect(configError("[daemon]\nmax-connections = 0\n")?.message.contains("daemon.max-connections must be an integer from 1") == true)
        #expect(configError("[daemon]\nmax-connections = \"many\"\n")?.message.contains("daemon.max-connections must be an integer") == true)
    }

    @Test func prefetchDefaultsToLayoutAndIsSetByFileOrEnvironment() throws {
        #expect(try load(nil).prefetch.rawValue == "layout")
        #expect(try load("[cache]\nprefetch = \"content\"\n").prefetch.rawValue == "content")
        #expect(try load("[cache]\nprefetch = \"off\"\n").prefetch.rawValue == "off")
        #expect(try load("[cache]\nprefetch = \"content\"\n", environment: ["MESA_CACHE_PREFETCH": "off"]).prefetch.rawValue == "off")
        #expect(configError("[cache]\nprefetch = \"everything\"\n")?.message
            .contains("cache.prefetch must be \"layout\", \"content\" or \"off\", not \"everything\"") == true)
        #expect(configError("[cache]\nprefetch = true\n")?.message.contains("cache.prefetch") == true)
        #expect(configError(nil, environment: ["MESA_CACHE_PREFETCH": "all"])?.message.contains("MESA_CACHE_PREFETCH") == true)
    }

    @Test func durabilityDefaultsToFsyncAndIsSetByFileOrEnvironment() throws {
        #expect(try load(nil).durability.rawValue == "fsync")
        #expect(try load("[daemon]\ndurability = \"close\"\n").durability.rawValue == "close")
        #expect(try load("[daemon]\ndurability = \"close\"\n", environment: ["MESA_DURABILITY": "fsync"]).durability.rawValue == "fsync")
        #expect(configError("[daemon]\ndurability = \"always\"\n")?.message
            .contains("daemon.durability must be \"fsync\" (sync on fsync, the default) or \"close\" (sync on every close), not \"always\"") == true)
        #expect(configError(nil, environment: ["MESA_DURABILITY": "never"])?.message.contains("MESA_DURABILITY") == true)
    }

    @Test func otherUsersAreKeptOutUnlessAllowOtherIsSet() throws {
        #expect(try load(nil).allowOther == false)
        #expect(try load("[daemon]\nallow-other = true\n").allowOther == true)
        #expect(try load("[daemon]\nallow-other = false\n").allowOther == false)
        #expect(configError("[daemon]\nallow-other = \"yes\"\n")?.message.contains("allow-other") == true)
    }

    @Test func integerCacheSizeIsBytes() throws {
        #expect(try load("[cache]\nmax-size = 4096\n").cacheMaxBytes == 4096)
    }

    @Test func unknownKeysAreWarningsNotErrors() throws {
        let config = try load("colour = \"blue\"\nmount-point = \"/tmp/x\"\n")
        #expect(config.mountPoint == "/tmp/x")
        #expect(config.warnings.count == 1)
        #expect(config.warnings.first?.contains("'colour'") == true)
    }

    @Test func invalidTOMLNamesTheLine() throws {
        let error = try #require(configError("mount-point = \"/tmp/x\"\n\n[organizations.acme\napi-key = \"k\"\n"))
        #expect(error.message.contains("config.toml"))
        #expect(error.message.contains("invalid TOML"))
        #expect(error.message.contains("line 3"), "\(error.message)")
    }

    @Test(arguments: [
        ("mount-point = 5\n", "mount-point must be a string"),
        ("api-url = true\n", "api-url must be a string"),
        ("organizations = \"acme\"\n", "organizations must be a table"),
        ("[organizations.acme]\napi-key = 42\n", "organizations.acme.api-key must be a string"),
        ("[organizations.acme]\nmount = \"some\"\n", "must be \"all\" or \"explicit\""),
        ("[organizations.acme]\nmount = 1\n", "organizations.acme.mount must be a string"),
        ("[organizations.acme.repos.web]\nrev = { tag = \"v1\" }\n", "needs 'bookmark' or 'change-id'"),
        ("[organizations.acme.repos.web]\nrev = \"main\"\n", "rev must be a table"),
        ("[organizations.acme.repos.web]\nrev = { bookmark = 3 }\n", "rev.bookmark must be a string"),
        ("[cache]\nmax-size = \"lots\"\n", "is not a size"),
        ("[cache]\nmax-size = -5\n", "cache.max-size must be a size"),
        ("cache = 3\n", "cache must be a table"),
        ("[daemon]\nflush-debounce-ms = \"soon\"\n", "flush-debounce-ms must be an integer"),
    ])
    func wrongTypesAreRefusedWithTheKey(toml: String, message: String) throws {
        let error = try #require(configError(toml))
        #expect(error.message.contains(message), "\(error.message)")
        #expect(error.message.contains("config.toml"), "the file is named: \(error.message)")
    }

    // MARK: Search path and -c

    @Test func searchOrderAndNoConfigFile() throws {
        let sandbox = try Sandbox()
        _ = try sandbox.write("xdg/mesa/config.toml", "mount-point = \"/from/xdg\"\n")
        _ = try sandbox.write(".config/mesa/config.toml", "mount-point = \"/from/home\"\n")
        let xdg = try DaemonConfig.load(.init(environment: sandbox.environment(["XDG_CONFIG_HOME": sandbox.home + "/xdg"])))
        #expect(xdg.mountPoint == "/from/xdg")
        let home = try DaemonConfig.load(.init(environment: sandbox.environment()))
        #expect(home.mountPoint == "/from/home")
        let skipped = try DaemonConfig.load(.init(environment: sandbox.environment(["MESA_NO_CONFIG_FILE": "1"])))
        #expect(skipped.configFile == nil)
        #expect(skipped.mountPoint == sandbox.home + "/.local/share/mesa/mnt")
        // "0" and "false" do not skip.
        let notSkipped = try DaemonConfig.load(.init(environment: sandbox.environment(["MESA_NO_CONFIG_FILE": "false"])))
        #expect(notSkipped.mountPoint == "/from/home")
    }

    @Test func explicitConfigPath() throws {
        let sandbox = try Sandbox()
        let path = try sandbox.write("elsewhere.toml", "mount-point = \"/explicit\"\n")
        _ = try sandbox.write(".config/mesa/config.toml", "mount-point = \"/from/home\"\n")
        let config = try DaemonConfig.load(.init(configPath: path, environment: sandbox.environment(["MESA_NO_CONFIG_FILE": "1"])))
        #expect(config.mountPoint == "/explicit")
        #expect(config.configFile == path)
    }

    @Test func missingExplicitConfigPathIsAnError() throws {
        let sandbox = try Sandbox()
        let missing = sandbox.home + "/nope.toml"
        #expect {
            try DaemonConfig.load(.init(configPath: missing, environment: sandbox.environment()))
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.message.contains(missing) && error.message.contains("does not exist")
        }
    }

    // MARK: Environment

    @Test func mesaOrgsDefinesOrgsAndOverridesFileKeys() throws {
        let config = try load("""
            [organizations.a]
            api-key = "from-file"
            mount = "explicit"
            """, environment: ["MESA_ORGS": "a:k1,b:k2"])
        let orgs = Dictionary(uniqueKeysWithValues: config.organizations.map { ($0.name, $0) })
        #expect(orgs.count == 2)
        #expect(orgs["a"]?.apiKey == "k1")
        #expect(orgs["a"]?.mount == .explicit, "the file's other settings stay")
        #expect(orgs["b"]?.apiKey == "k2")
        #expect(orgs["b"]?.mount == .all)
    }

    @Test func mesaOrgsKeepsColonsInsideKeys() throws {
        let config = try load(nil, environment: ["MESA_ORGS": "a:key:with:colons"])
        #expect(config.organizations.map(\.apiKey) == ["key:with:colons"])
    }

    @Test(arguments: ["a", "a:", ":k", "a:k1,b", " : "])
    func malformedMesaOrgs(value: String) throws {
        let error = try #require(configError(nil, environment: ["MESA_ORGS": value]))
        #expect(error.message.contains("MESA_ORGS"), "\(error.message)")
        #expect(error.message.contains("org:key"), "\(error.message)")
    }

    @Test func mesaOrgWithApiKey() throws {
        let config = try load(nil, environment: ["MESA_ORG": "acme", "MESA_API_KEY": "mesa_x"])
        #expect(config.organizations == [OrgConfig(name: "acme", apiKey: "mesa_x")])
    }

    @Test func mesaOrgWithoutApiKeyIsAnError() throws {
        let error = try #require(configError(nil, environment: ["MESA_ORG": "acme"]))
        #expect(error.message.contains("MESA_ORG=acme"))
        #expect(error.message.contains("MESA_API_KEY"))
    }

    @Test func mesaOrgWithoutApiKeyIsFineWhenTheFileHasTheOrg() throws {
        let config = try load("[organizations.acme]\napi-key = \"from-file\"\n", environment: ["MESA_ORG": "acme"])
        #expect(config.organizations.map(\.apiKey) == ["from-file"])
    }

    @Test func environmentOverridesPathsAndURL() throws {
        let sandbox = try Sandbox()
        let config = try load("mount-point = \"/file\"\n", environment: [
            "MESA_MOUNT_POINT": "~/env-mount", "MESA_CACHE_PATH": "/env-cache", "MESA_API_URL": "http://127.0.0.1:1",
            "MESA_LOG": "trace", "MESA_CACHE_MAX_SIZE": "2GiB",
        ], sandbox: sandbox)
        #expect(config.mountPoint == sandbox.home + "/env-mount")
        #expect(config.cacheDirectory == "/env-cache")
        #expect(config.apiURL == "http://127.0.0.1:1")
        #expect(config.logLevel == "trace")
        #expect(config.cacheMaxBytes == 2 << 30)
    }

    @Test func runtimeDirectoryFallbacks() {
        let base = ["HOME": "/h"]
        #expect(Paths(environment: base.merging(["MESA_RUNTIME_DIR": "/r"]) { $1 }).socketPath == "/r/mesad.sock")
        #expect(Paths(environment: base.merging(["XDG_RUNTIME_DIR": "/run/user/1"]) { $1 }).runtimeDirectory == "/run/user/1/mesa")
        #expect(Paths(environment: base).runtimeDirectory == "/h/.local/share/mesa/run")
        #expect(Paths(environment: base.merging(["XDG_DATA_HOME": "/d"]) { $1 }).storeDirectory == "/d/mesa/store")
    }

    // MARK: First boot

    @Test func firstBootConfigHasTheEnvironmentOrgsAndMode0600() throws {
        let sandbox = try Sandbox()
        let environment = sandbox.environment(["MESA_ORGS": "a:k1,b:k2"])
        let config = try DaemonConfig.load(.init(environment: environment))
        let written = try #require(try config.writeFirstBootConfigIfMissing())
        #expect(written == sandbox.home + "/.config/mesa/config.toml")
        #expect(fileMode(written) == 0o600)

        // Read back without the environment: the same orgs and keys.
        let reread = try DaemonConfig.load(.init(environment: sandbox.environment()))
        #expect(reread.configFile == written)
        let orgs = Dictionary(uniqueKeysWithValues: reread.organizations.map { ($0.name, $0.apiKey) })
        #expect(orgs == ["a": "k1", "b": "k2"])
        #expect(reread.mountPoint == config.mountPoint)

        // Never overwritten once it exists.
        let again = try DaemonConfig.load(.init(environment: sandbox.environment(["MESA_ORGS": "c:k3"])))
        #expect(try again.writeFirstBootConfigIfMissing() == nil)
        let unchanged = try DaemonConfig.load(.init(environment: sandbox.environment()))
        #expect(Set(unchanged.organizations.map(\.name)) == ["a", "b"])
    }

    @Test func firstBootConfigQuotesAwkwardNames() throws {
        let sandbox = try Sandbox()
        let config = try DaemonConfig.load(.init(environment: sandbox.environment(["MESA_ORGS": "my.org:k\"ey"])))
        let written = try #require(try config.writeFirstBootConfigIfMissing())
        let reread = try DaemonConfig.load(.init(configPath: written, environment: sandbox.environment()))
        #expect(reread.organizations.map(\.name) == ["my.org"])
        #expect(reread.organizations.map(\.apiKey) == ["k\"ey"])
    }

    /// Strings TOML must escape, or that break a hand-written quoting function.
    static let awkwardValues = [
        "quote\"inside", "back\\slash\\", "new\nline", "tab\there", "crlf\r\n", "ünïcødé ✓ 🗂", "'''triple'''",
        "\"\"\"basic-triple\"\"\"", "bell\u{07}and\u{1B}esc\u{7F}del\u{01}", "#not-a-comment", "= [table] =", " spaces ",
    ]

    @Test func firstBootConfigRoundTripsValuesWithAnyCharacters() throws {
        for (index, value) in Self.awkwardValues.enumerated() {
            let sandbox = try Sandbox()
            var config = try DaemonConfig.load(.init(environment: sandbox.environment()))
            config.mountPoint = "/mnt/" + value
            config.apiURL = "http://h/" + value
            config.organizations = [OrgConfig(name: "org " + value, apiKey: value, mount: .explicit),
                                    OrgConfig(name: "plain", apiKey: "k")]
            let written = try #require(try config.writeFirstBootConfigIfMissing())
            let reread = try DaemonConfig.load(.init(configPath: written, environment: sandbox.environment()))
            #expect(reread.mountPoint == "/mnt/" + value, "value \(index): \(value.debugDescription)")
            #expect(reread.apiURL == "http://h/" + value, "value \(index)")
            #expect(reread.organizations.map(\.name) == ["org " + value, "plain"].sorted(), "value \(index)")
            #expect(reread.organizations.first { $0.name == "org " + value }?.apiKey == value, "value \(index)")
            #expect(reread.organizations.first { $0.name == "org " + value }?.mount == .explicit, "value \(index)")
            #expect(reread.warnings.isEmpty)
        }
    }

    @Test func secretsRoundTripKeysAndOrgsWithAnyCharacters() throws {
        let sandbox = try Sandbox()
        let secrets = SecretsFile(path: sandbox.root + "/secrets.toml")
        #expect(try secrets.keys().isEmpty, "no file: no keys")
        var keys: [String: String] = [:]
        for (index, value) in Self.awkwardValues.enumerated() { keys["org\(index) " + value] = value }
        try secrets.save(keys)
        #expect(fileMode(secrets.path) == 0o600)
        #expect(try secrets.keys() == keys)
    }

    @Test func aBrokenSecretsFileIsRefusedWithItsPathAndChangesNothing() throws {
        let sandbox = try Sandbox()
        let broken = "[organizations.local]\napi-key = \"unterminated\n"
        let path = try sandbox.write("secrets.toml", broken)
        let error = try #require(throws: ConfigError.self) { try SecretsFile(path: path).keys() }
        #expect(error.message.contains(path), "\(error.message)")
        #expect(error.message.contains("invalid TOML"), "\(error.message)")
        #expect(error.message.contains("fix or delete it"), "\(error.message)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == broken)
        let wrong = try sandbox.write("wrong.toml", "[organizations.local]\napi-key = 7\n")
        let wrongType = try #require(throws: ConfigError.self) { try SecretsFile(path: wrong).keys() }
        #expect(wrongType.message.contains("organizations.local.api-key must be a string"), "\(wrongType.message)")
    }
}
