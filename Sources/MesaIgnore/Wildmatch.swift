/// git's `wildmatch()` (wildmatch.c), ported byte for byte so `.mesaignore` patterns
/// mean exactly what they mean in a `.gitignore`. Case-sensitive, as git on Linux.
enum Wildmatch {
    private enum Outcome { case match, noMatch, abortAll, abortToStarStar }

    /// Whether `text` matches `pattern`. With `pathname`, `*`, `?` and `[...]` stop at
    /// `/` and only `**` next to slashes crosses directories (git's WM_PATHNAME).
    static func match(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>, pathname: Bool) -> Bool {
        // A NUL sentinel, as the C code reads one past the end; names hold no NUL.
        let p = Array(pattern) + [0], t = Array(text) + [0]
        return dowild(p, 0, t, 0, pathname: pathname) == .match
    }

    private static let slash = UInt8(ascii: "/"), star = UInt8(ascii: "*"), backslash = UInt8(ascii: "\\")

    private static func isGlobSpecial(_ c: UInt8) -> Bool {
        c == star || c == UInt8(ascii: "?") || c == UInt8(ascii: "[") || c == backslash
    }

    private static func dowild(_ p: [UInt8], _ pStart: Int, _ t: [UInt8], _ tStart: Int, pathname: Bool) -> Outcome {
        var pi = pStart, ti = tStart
        while p[pi] != 0 {
            var pCh = p[pi]
            var tCh = t[ti]
            if tCh == 0 && pCh != star { return .abortAll }
            switch pCh {
            case UInt8(ascii: "?"):
                if pathname && tCh == slash { return .noMatch }
            case star:
                let matchSlash: Bool
                pi += 1
                if p[pi] == star {
                    let prev = pi - 2
                    while p[pi] == star { pi += 1 }
                    if (prev < pStart || p[prev] == slash)
                        && (p[pi] == 0 || p[pi] == slash || (p[pi] == backslash && p[pi + 1] == slash)) {
                        // `**/` may match no directory at all: try the rest right here.
                        if p[pi] == slash && dowild(p, pi + 1, t, ti, pathname: pathname) == .match { return .match }
                        matchSlash = true
                    } else {
                        // `**` not between slashes is a plain `*` (git: "WM_PATHNAME is set").
                        matchSlash = false
                    }
                } else {
                    matchSlash = !pathname
                }
                if p[pi] == 0 {
                    // A trailing `**` matches everything, a trailing `*` the rest of one component.
                    if !matchSlash && t[ti...].contains(slash) { return .noMatch }
                    return .match
                } else if !matchSlash && p[pi] == slash {
                    // One `*` then `/`: the rest of this component.
                    guard let next = t[ti...].firstIndex(of: slash), t[next] != 0 else { return .noMatch }
                    ti = next
                    // The loop's increment consumes the slash on both sides.
                    pi += 1; ti += 1
                    continue
                }
                while true {
                    if tCh == 0 { break }
                    if !isGlobSpecial(p[pi]) {
                        // Skip ahead to the literal that follows the star.
                        pCh = p[pi]
                        while true {
                            tCh = t[ti]
                            if tCh == 0 || (!matchSlash && tCh == slash) || tCh == pCh { break }
                            ti += 1
                        }
                        // The literal is not in (this component of) the text: no match
                        // from here, but a `**` further up may still move on (git 2.39).
                        if tCh != pCh { return .noMatch }
                    }
                    let matched = dowild(p, pi, t, ti, pathname: pathname)
                    if matched != .noMatch {
                        if !matchSlash || matched != .abortToStarStar { return matched }
                    } else if !matchSlash && tCh == slash {
                        return .abortToStarStar
                    }
                    ti += 1
                    tCh = t[ti]
                }
                return .abortAll
            case UInt8(ascii: "["):
                pi += 1
                pCh = p[pi]
                if pCh == UInt8(ascii: "^") { pCh = UInt8(ascii: "!") }
                let negated = pCh == UInt8(ascii: "!")
                if negated { pi += 1; pCh = p[pi] }
                var prevCh: UInt8 = 0
                var matched = false
                repeat {
                    if pCh == 0 { return .abortAll }
                    if pCh == backslash {
                        pi += 1
                        pCh = p[pi]
                        if pCh == 0 { return .abortAll }
                        if tCh == pCh { matched = true }
                    } else if pCh == UInt8(ascii: "-") && prevCh != 0 && p[pi + 1] != 0 && p[pi + 1] != UInt8(ascii: "]") {
                        pi += 1
                        pCh = p[pi]
                        if pCh == backslash {
                            pi += 1
                            pCh = p[pi]
                            if pCh == 0 { return .abortAll }
                        }
                        if tCh <= pCh && tCh >= prevCh { matched = true }
                        pCh = 0
                    } else if pCh == UInt8(ascii: "[") && p[pi + 1] == UInt8(ascii: ":") {
                        pi += 2
                        let s = pi
                        while p[pi] != 0 && p[pi] != UInt8(ascii: "]") { pi += 1 }
                        pCh = p[pi]
                        if pCh == 0 { return .abortAll }
                        let length = pi - s - 1
                        if length < 0 || p[pi - 1] != UInt8(ascii: ":") {
                            // No ":]": an ordinary "[" in the set.
                            pi = s - 2
                            pCh = UInt8(ascii: "[")
                            if tCh == pCh { matched = true }
                        } else {
                            guard let inClass = characterClass(String(decoding: p[s..<(s + length)], as: UTF8.self), tCh) else {
                                return .abortAll
                            }
                            if inClass { matched = true }
                            pCh = 0
                        }
                    } else if tCh == pCh {
                        matched = true
                    }
                    prevCh = pCh
                    pi += 1
                    pCh = p[pi]
                } while pCh != UInt8(ascii: "]")
                if matched == negated || (pathname && tCh == slash) { return .noMatch }
            case backslash:
                // A literal next byte; a trailing backslash matches nothing.
                pi += 1
                pCh = p[pi]
                if tCh != pCh { return .noMatch }
            default:
                if tCh != pCh { return .noMatch }
            }
            pi += 1
            ti += 1
        }
        return t[ti] == 0 ? .match : .noMatch
    }

    /// POSIX bracket classes as git knows them (ASCII); nil for an unknown name.
    private static func characterClass(_ name: String, _ c: UInt8) -> Bool? {
        let alpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
        let digit = c >= 0x30 && c <= 0x39
        switch name {
        case "alnum": return alpha || digit
        case "alpha": return alpha
        case "blank": return c == 0x20 || c == 0x09
        case "cntrl": return c < 0x20 || c == 0x7f
        case "digit": return digit
        case "graph": return c > 0x20 && c < 0x7f
        case "lower": return c >= 0x61 && c <= 0x7a
        case "print": return c >= 0x20 && c < 0x7f
        case "punct": return c > 0x20 && c < 0x7f && !alpha && !digit
        case "space": return c == 0x20 || (c >= 0x09 && c <= 0x0d)
        case "upper": return c >= 0x41 && c <= 0x5a
        case "xdigit": return digit || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
        default: return nil
        }
    }
}
