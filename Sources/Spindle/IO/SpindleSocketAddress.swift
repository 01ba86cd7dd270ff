import Glibc

/// An IPv4, IPv6 or Unix-domain socket address.
public struct SpindleSocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The raw `sockaddr_storage` bytes (only the first `length` matter).
    private var storage: sockaddr_storage
    /// The address's length in bytes, as `bind`/`connect` take it.
    let length: socklen_t

    init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// A `sockaddr_in`, `sockaddr_in6` or `sockaddr_un`, copied into the storage; `length` is
    /// the part that counts (the whole structure unless given).
    private init<Address>(_ address: Address, length: Int = MemoryLayout<Address>.size) {
        var address = address
        var storage = sockaddr_storage()
        withUnsafeBytes(of: &address) { source in
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) }
        }
        self.init(storage: storage, length: socklen_t(length))
    }

    /// A numeric IPv4 or IPv6 address (`"127.0.0.1"`, `"::1"`), or a host name resolved with
    /// `getaddrinfo` (the first result; `"localhost"` resolves from /etc/hosts without DNS).
    public init(host: String, port: Int) throws(SpindleIOError) {
        guard (0...65535).contains(port) else { throw SpindleIOError(.address, kind: .invalidAddress) }
        var storage = sockaddr_storage()
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr = v4
            self.init(address)
            return
        }
        if inet_pton(AF_INET6, host, &v6) == 1 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            address.sin6_addr = v6
            self.init(address)
            return
        }
        var hints = addrinfo()
        hints.ai_socktype = Sockets.stream
        hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG
        var results: UnsafeMutablePointer<addrinfo>? = nil
        let status = getaddrinfo(host, String(port), &hints, &results)
        guard status == 0, let first = results, let address = first.pointee.ai_addr else {
            if results != nil { freeaddrinfo(results) }
            throw SpindleIOError(.resolve, kind: .invalidAddress)
        }
        let length = first.pointee.ai_addrlen
        withUnsafeMutableBytes(of: &storage) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(length)))
        }
        freeaddrinfo(results)
        self.init(storage: storage, length: length)
    }

    /// A Unix-domain socket path (at most 107 bytes).
    public init(unixPath path: String) throws(SpindleIOError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { throw SpindleIOError(.address, kind: .invalidAddress) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        self.init(address, length: MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + 1)
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`).
    public var family: Int32 { Int32(storage.ss_family) }

    /// The port (0 for Unix-domain addresses).
    public var port: Int {
        var copy = storage
        switch family {
        case AF_INET:
            return withUnsafeBytes(of: &copy) { Int(UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port)) }
        case AF_INET6:
            return withUnsafeBytes(of: &copy) { Int(UInt16(bigEndian: $0.load(as: sockaddr_in6.self).sin6_port)) }
        default:
            return 0
        }
    }

    /// The numeric host (`"127.0.0.1"`), or the path of a Unix-domain address.
    public var host: String {
        var copy = storage
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch family {
        case AF_INET:
            var address = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in.self) }.sin_addr
            inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
        case AF_INET6:
            var address = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in6.self) }.sin6_addr
            inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
        case AF_UNIX:
            let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
            let count = max(0, Int(length) - pathOffset)
            let bytes = withUnsafeBytes(of: &copy) { Array($0[pathOffset..<(pathOffset + count)]) }
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        default:
            return "?"
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The address for logs: "127.0.0.1:8080", "[::1]:8080", or "unix:/path/to/socket".
    public var description: String {
        switch family {
        case AF_INET6: return "[\(host)]:\(port)"
        case AF_UNIX: return "unix:\(host)"
        default: return "\(host):\(port)"
        }
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    func withSockAddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        var copy = storage
        return try withUnsafePointer(to: &copy) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }

    /// Reads the address `call` (getsockname or getpeername) reports for `fd`.
    static func of(
        _ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) throws(SpindleIOError) -> SpindleSocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        if result != 0 { throw SpindleIOError(.address, errno: errno) }
        return SpindleSocketAddress(storage: storage, length: length)
    }

    /// Whether two addresses are the same bytes (family, address and port, or path).
    public static func == (lhs: SpindleSocketAddress, rhs: SpindleSocketAddress) -> Bool {
        lhs.length == rhs.length && lhs.bytes == rhs.bytes
    }

    /// Hashes the address's bytes, consistently with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }

    private var bytes: [UInt8] {
        var copy = storage
        return withUnsafeBytes(of: &copy) { Array($0.prefix(Int(length))) }
    }
}
