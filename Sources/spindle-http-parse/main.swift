// Reads requests from standard input, one per line as hex, and prints one verdict per line:
// what SpindleHTTP's parser makes of each (used by Fuzz/differential.py to compare it with
// another parser). The limits are the server's defaults.
//
//     ok METHOD TARGET VERSION FRAMING KEEPALIVE FIELDCOUNT BODYHEX
//     error STATUS KIND
//     incomplete

import SpindleHTTP

func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

func unhex(_ text: Substring) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.utf8.startIndex
    while index < text.utf8.endIndex, let high = Int(String(text[index...].prefix(2)), radix: 16) {
        bytes.append(UInt8(high))
        index = text.utf8.index(index, offsetBy: 2, limitedBy: text.utf8.endIndex) ?? text.utf8.endIndex
    }
    return bytes
}

let configuration = HTTPServer.Configuration()
let limits = RequestHeadParser.Limits(
    maxHeadBytes: configuration.maxHeadBytes, maxFieldCount: configuration.maxHeaderCount,
    maxTargetLength: configuration.maxTargetLength, maxBodyBytes: configuration.maxBodyBytes)

func verdict(_ bytes: [UInt8]) -> String {
    bytes.withUnsafeBytes { raw -> String in
        var parser = RequestHeadParser(limits: limits)
        switch parser.parse(raw) {
        case .needMore:
            return "incomplete"
        case .failed(let error):
            return "error \(error.status) \(error.kind)"
        case .complete:
            let head = parser.head
            let method = String(decoding: raw[head.method], as: UTF8.self)
            let target = String(decoding: raw[head.target], as: UTF8.self)
            var framing = "none"
            var body: [UInt8] = []
            let rest = UnsafeRawBufferPointer(rebasing: raw[head.length...])
            switch head.framing {
            case .none:
                break
            case .length(let count):
                framing = "length:\(count)"
                if rest.count < count { return "incomplete" }
                body = Array(rest[..<count])
            case .chunked:
                framing = "chunked"
                var decoder = ChunkedDecoder(
                    maxBodyBytes: limits.maxBodyBytes, maxTrailerBytes: limits.maxHeadBytes,
                    maxTrailerFields: limits.maxFieldCount)
                var start = 0
                loop: while true {
                    let window = UnsafeRawBufferPointer(rebasing: rest[start...])
                    switch decoder.decode(window) {
                    case .data(let range):
                        body += window[range]
                        start += range.upperBound
                    case .needMore:
                        return "incomplete"
                    case .end:
                        break loop
                    case .failed(let error):
                        return "error \(error.status) \(error.kind)"
                    }
                }
            }
            return "ok \(method) \(target) 1.\(head.minorVersion) \(framing) \(head.keepAlive ? 1 : 0) \(head.fields.count) \(hex(body))"
        }
    }
}

while let line = readLine() {
    print(verdict(unhex(Substring(line))))
}
