/// Finds where a JSON body holds a number no field of the API can take. Foundation's
/// decoder reports `3600.5` or `1e400` in an integer field as "not valid JSON" with no
/// field; the bodies of this API have integer numbers only, so the first number that is
/// not a whole 64-bit integer is the culprit. A small scanner, not a parser: it runs
/// only after decoding failed.
enum NumberProbe {
    /// The field path (`expires_in_seconds`, `files[2].size`) and text of the first such
    /// number, or nil.
    static func firstNonInteger(in bytes: some Collection<UInt8>) -> (path: String, number: String)? {
        var path: [String] = []          // one entry per open container: key or [index]
        var inArray: [Bool] = []
        var index = bytes.startIndex
        var lastString = ""
        func readString() -> String {
            var out: [UInt8] = []
            index = bytes.index(after: index)          // opening quote
            while index < bytes.endIndex, bytes[index] != UInt8(ascii: "\"") {
                if bytes[index] == UInt8(ascii: "\\") { index = bytes.index(after: index) }
                if index < bytes.endIndex { out.append(bytes[index]); index = bytes.index(after: index) }
            }
            if index < bytes.endIndex { index = bytes.index(after: index) }
            return String(decoding: out, as: UTF8.self)
        }
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                inArray.append(byte == UInt8(ascii: "["))
                path.append(byte == UInt8(ascii: "[") ? "[0]" : "")
                index = bytes.index(after: index)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                inArray.removeLast()
                path.removeLast()
                index = bytes.index(after: index)
            case UInt8(ascii: ","):
                if inArray.last == true, let last = path.last, let n = Int(last.dropFirst().dropLast()) {
                    path[path.count - 1] = "[\(n + 1)]"
                }
                index = bytes.index(after: index)
            case UInt8(ascii: ":"):
                path[path.count - 1] = lastString
                index = bytes.index(after: index)
            case UInt8(ascii: "\""):
                lastString = readString()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var text: [UInt8] = []
                while index < bytes.endIndex, "+-.eE0123456789".utf8.contains(bytes[index]) {
                    text.append(bytes[index])
                    index = bytes.index(after: index)
                }
                let number = String(decoding: text, as: UTF8.self)
                if Int64(number) == nil {
                    let field = path.reduce("") { $1.hasPrefix("[") || $0.isEmpty ? $0 + $1 : $0 + "." + $1 }
                    return (field.isEmpty ? "body" : field, number)
                }
            default:
                index = bytes.index(after: index)
            }
        }
        return nil
    }
}
