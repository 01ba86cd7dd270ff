// libFuzzer harness for the request-head parser and the chunked decoder (built by
// Fuzz/run.sh with `swiftc -sanitize=fuzzer`, outside SwiftPM, from the parser's sources).
//
// For each input it checks what must hold for any bytes:
// - nothing traps (bounds, overflow) and nothing hangs;
// - the parse is the same fed whole or split at a point taken from the input;
// - on a complete head: its length and every range lie within the input, and the head
//   re-serialised in canonical form parses to the same head (same method, target, version,
//   fields, framing, keep-alive);
// - on a chunked body: the decoder never consumes more than it was given, its data ranges lie
//   within its input, and the data is the same fed whole or a few bytes at a time.

let limits = RequestHeadParser.Limits(maxHeadBytes: 2048, maxFieldCount: 32, maxTargetLength: 512, maxBodyBytes: 1 << 20)

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant violated: \(message())") }
}

func parseSplit(_ bytes: UnsafeRawBufferPointer, at split: Int) -> (RequestHeadParser.Outcome, RequestHead) {
    var parser = RequestHeadParser(limits: limits)
    if split > 0 && split < bytes.count {
        let first = parser.parse(UnsafeRawBufferPointer(rebasing: bytes[..<split]))
        if first != .needMore { return (first, parser.head) }
    }
    return (parser.parse(bytes), parser.head)
}

func decodeChunked(_ bytes: UnsafeRawBufferPointer, step: Int) -> (data: [UInt8], error: HTTPParseError?, consumed: Int) {
    var decoder = ChunkedDecoder(maxBodyBytes: 1 << 20, maxTrailerBytes: 1024, maxTrailerFields: 16)
    var start = 0
    var end = min(step, bytes.count)
    var data: [UInt8] = []
    while true {
        let window = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        switch decoder.decode(window, maxData: 7) {
        case .data(let range):
            check(range.lowerBound >= 0 && range.upperBound <= window.count && range.count <= 7, "data range \(range) of \(window.count)")
            data += window[range]
            start += range.upperBound
        case .needMore(let consumed):
            check(consumed <= window.count, "consumed \(consumed) of \(window.count)")
            start += consumed
            if end == bytes.count { return (data, nil, start) }
            end = min(bytes.count, end + step)
        case .end(let consumed):
            check(consumed <= window.count, "consumed \(consumed) of \(window.count)")
            for field in decoder.trailers {
                check(field.name.upperBound <= consumed && field.value.upperBound <= consumed, "trailer range")
            }
            return (data, nil, start + consumed)
        case .failed(let error):
            return (data, error, start)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let split = size > 0 ? Int(bytes[0]) % (size + 1) : 0
    let (whole, head) = parseSplit(bytes, at: 0)
    let (parts, splitHead) = parseSplit(bytes, at: split)
    check(whole == parts, "whole \(whole) vs split at \(split) \(parts)")
    guard whole == .complete else { return 0 }
    check(head == splitHead, "heads differ when split")
    check(head.length <= size, "head length \(head.length) > \(size)")
    for range in [head.method, head.target] + head.fields.flatMap({ [$0.name, $0.value] }) {
        check(range.lowerBound >= 0 && range.upperBound <= head.length, "range \(range) outside the head")
    }
    let canonical = head.serialized(from: bytes)
    canonical.withUnsafeBytes { again in
        var parser = RequestHeadParser(limits: RequestHeadParser.Limits(
            maxHeadBytes: 1 << 20, maxFieldCount: 32, maxTargetLength: 512, maxBodyBytes: 1 << 20))
        let outcome = parser.parse(again)
        check(outcome == .complete, "the re-serialised head does not parse: \(outcome)")
        let second = parser.head
        check(second.serialized(from: again) == canonical, "re-serialising is not stable")
        check(second.framing == head.framing && second.keepAlive == head.keepAlive
            && second.minorVersion == head.minorVersion && second.expectsContinue == head.expectsContinue
            && second.targetForm == head.targetForm && second.fields.count == head.fields.count,
            "the re-parsed head differs")
    }
    if head.framing == .chunked {
        let body = UnsafeRawBufferPointer(rebasing: bytes[head.length...])
        let whole = decodeChunked(body, step: body.count + 1)
        let stepped = decodeChunked(body, step: 1 + split % 5)
        check(whole.consumed <= body.count, "consumed past the input")
        check(whole.data == stepped.data && whole.error == stepped.error, "chunked decoding depends on the split")
    }
    return 0
}
