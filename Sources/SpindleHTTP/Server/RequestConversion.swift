// From the parser's byte ranges to swift-http-types' `HTTPRequest`, the way NIO's HTTP/1
// conversion does it (so an adapter for a framework built on those types sees what it
// expects): scheme "http", the authority from the Host field (which is then not in the
// fields), or from the target when it is in absolute-form (RFC 9112 §3.2.2: the Host field
// is then ignored), the path from the target.

import HTTPTypes

extension HTTPRequest {
    init(_ head: RequestHead, _ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) {
        func string(_ range: Range<Int>) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }
        guard let method = HTTPRequest.Method(string(head.method)) else { throw HTTPParseError(.invalidMethod) }
        var fields = HTTPFields()
        fields.reserveCapacity(head.fields.count)
        for (index, field) in head.fields.enumerated() where index != head.hostField {
            guard let name = HTTPField.Name(string(field.name)) else { throw HTTPParseError(.invalidFieldName) }
            fields.append(HTTPField(name: name, value: UnsafeRawBufferPointer(rebasing: bytes[field.value])))
        }
        let host = head.hostField.map { string(head.fields[$0].value) }
        switch head.targetForm {
        case .origin, .asterisk:
            self.init(method: method, scheme: "http", authority: host, path: string(head.target), headerFields: fields)
        case .authority:
            self.init(method: method, scheme: nil, authority: string(head.target), path: nil, headerFields: fields)
        case .absolute:
            // scheme "://" authority path-abempty [ "?" query ], or scheme ":" without authority.
            let target = UnsafeRawBufferPointer(rebasing: bytes[head.target])
            let colon = target.firstIndex(of: ASCII.colon)!
            let scheme = String(decoding: target[..<colon], as: UTF8.self)
            var rest = colon + 1
            var authority: String? = nil
            if target.count >= rest + 2 && target[rest] == 0x2F && target[rest + 1] == 0x2F {
                let start = rest + 2
                var end = start
                while end < target.count && target[end] != 0x2F && target[end] != 0x3F && target[end] != 0x23 { end += 1 }
                authority = String(decoding: target[start..<end], as: UTF8.self)
                rest = end
            }
            var path = String(decoding: target[rest...], as: UTF8.self)
            if path.isEmpty || path.utf8.first == 0x3F { path = "/" + path }
            self.init(method: method, scheme: scheme, authority: authority, path: path, headerFields: fields)
        }
    }
}
