public enum ClientVersion { public static let current = "0.1.0" }
