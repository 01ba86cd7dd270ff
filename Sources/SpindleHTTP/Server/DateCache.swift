import Glibc

/// The `Date` field value (RFC 9110 §5.6.7 IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT"),
/// formatted once per second per connection into bytes that are reused.
struct DateCache {
    private var second: time_t = -1
    private(set) var bytes = [UInt8](repeating: 0, count: 29)

    private static let days = Array("SunMonTueWedThuFriSat".utf8)
    private static let months = Array("JanFebMarAprMayJunJulAugSepOctNovDec".utf8)

    /// The current date's bytes.
    mutating func current() -> [UInt8] {
        let now = time(nil)
        if now != second {
            second = now
            format(now)
        }
        return bytes
    }

    private mutating func format(_ seconds: time_t) {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func put(_ index: Int, _ value: Int32) {
            bytes[index] = UInt8(0x30 + value / 10)
            bytes[index + 1] = UInt8(0x30 + value % 10)
        }
        for offset in 0..<3 {
            bytes[offset] = Self.days[Int(parts.tm_wday) * 3 + offset]
            bytes[8 + offset] = Self.months[Int(parts.tm_mon) * 3 + offset]
        }
        bytes[3] = 0x2C  // ","
        bytes[4] = 0x20
        put(5, parts.tm_mday)
        bytes[7] = 0x20
        bytes[11] = 0x20
        let year = parts.tm_year + 1900
        put(12, year / 100)
        put(14, year % 100)
        bytes[16] = 0x20
        put(17, parts.tm_hour)
        bytes[19] = 0x3A
        put(20, parts.tm_min)
        bytes[22] = 0x3A
        put(23, parts.tm_sec)
        bytes[25] = 0x20
        bytes[26] = 0x47  // "GMT"
        bytes[27] = 0x4D
        bytes[28] = 0x54
    }
}
