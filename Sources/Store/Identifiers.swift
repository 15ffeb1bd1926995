import Foundation
import Model

extension ChangeID {
    /// A fresh random change id (128 bits).
    static func random() -> ChangeID {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        text.reserveCapacity(32)
        for _ in 0..<32 { text.append(digits[Int(generator.next() % 16)]) }
        return ChangeID(unchecked: text)
    }
}

/// Opaque ids for orgs, repos and keys: a prefix and 96 random bits in hex.
enum OpaqueID {
    static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() & 0xFFFF_FFFF
        let low = generator.next()
        return prefix + "_" + String(format: "%08llx%016llx", high, low)
    }
}
