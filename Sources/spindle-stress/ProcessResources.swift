// The process's threads and descriptors, read from /proc/self: what a cycle must give back.

import Glibc

enum ProcessResources {
    /// The names of this process's threads (from /proc/self/task/*/comm).
    static func threadNames() -> [String] {
        entries("/proc/self/task").compactMap { tid in
            guard let file = fopen("/proc/self/task/\(tid)/comm", "r") else { return nil }
            defer { fclose(file) }
            var buffer = [CChar](repeating: 0, count: 64)
            guard fgets(&buffer, 64, file) != nil else { return nil }
            return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// The open descriptors and what each refers to (`socket:[123]`, `anon_inode:[io_uring]`...).
    static func descriptors() -> [Int32: String] {
        var result: [Int32: String] = [:]
        for name in entries("/proc/self/fd") {
            guard let fd = Int32(name) else { continue }
            var buffer = [CChar](repeating: 0, count: 256)
            let length = readlink("/proc/self/fd/\(name)", &buffer, buffer.count - 1)
            // The descriptor `opendir` used for the listing is gone by now: readlink fails.
            guard length >= 0 else { continue }
            result[fd] = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return result
    }

    private static func entries(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
