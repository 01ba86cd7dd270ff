// Files through io_uring: OPENAT, positional READ/WRITE and FSYNC; on epoll the same calls run
// on the blocking pool (ReadinessIO.swift). As for sockets, the
// memory the kernel reads or writes (the path, the data) belongs to the
// awaiting call, which resumes only after the completion.
//
// Arguments are checked before anything is submitted: a negative count, or a range that does
// not fit in a file offset (`off_t`, signed 64-bit: the kernel reads an offset of -1 as "the
// current position"), throws `SpindleIOError.Kind.invalidArgument`. A read does not allocate the count
// it is given up front (it may be far larger than the file): its buffer starts at 1 MiB, or at
// what the file holds past the offset, and doubles when the reads fill it (the file grew),
// between requests, never while the kernel holds it.

internal import CURing
import Glibc

/// An open file, read and written at explicit offsets.
///
/// ```swift
/// let file = try await File.open("/tmp/data", options: [.write, .create, .truncate])
/// try await file.write(bytes, at: 0)
/// try await file.sync()
/// file.close()
/// let back = try await File.readAll("/tmp/data")
/// ```
public final class File: Sendable {
    let descriptor: Descriptor
    /// The path the file was opened with.
    public let path: String

    private init(fd: Int32, path: String) {
        descriptor = Descriptor(fd, isSocket: false)
        self.path = path
    }

    deinit { descriptor.close() }

    /// How to open a file (the `O_*` flags).
    public struct Options: OptionSet, Sendable {
        /// The options as bits (Spindle's own, not the `O_*` values).
        public let rawValue: Int32
        /// The options whose bits are set in `rawValue`.
        public init(rawValue: Int32) { self.rawValue = rawValue }
        /// Open for reading (the default when neither `.read` nor `.write` is given).
        public static let read = Options(rawValue: 1 << 0)
        /// Open for writing.
        public static let write = Options(rawValue: 1 << 1)
        /// Create the file if it does not exist (`O_CREAT`).
        public static let create = Options(rawValue: 1 << 2)
        /// Truncate it to zero length (`O_TRUNC`).
        public static let truncate = Options(rawValue: 1 << 3)
        /// Fail if it exists (`O_EXCL`, with `.create`).
        public static let exclusive = Options(rawValue: 1 << 4)
        /// Writes go to the end (`O_APPEND`).
        public static let append = Options(rawValue: 1 << 5)

        var flags: Int32 {
            var flags: Int32 = O_CLOEXEC
            switch (contains(.read), contains(.write)) {
            case (true, true): flags |= O_RDWR
            case (false, true): flags |= O_WRONLY
            default: flags |= O_RDONLY
            }
            if contains(.create) { flags |= O_CREAT }
            if contains(.truncate) { flags |= O_TRUNC }
            if contains(.exclusive) { flags |= O_EXCL }
            if contains(.append) { flags |= O_APPEND }
            return flags
        }
    }

    /// Opens `path`.
    ///
    /// - Parameters:
    ///   - path: the file's path.
    ///   - options: how to open it (read, write, create, truncate, append).
    ///   - mode: permissions of a created file.
    /// - Throws: ``SpindleIOError`` (`ENOENT`, `EACCES`, `EMFILE`...).
    public static nonisolated(nonsending) func open(_ path: String, options: Options = .read, mode: Glibc.mode_t = 0o644) async throws -> File {
        let flags = options.flags
        if try IOSubmission.epollReactor() != nil {
            // Not cancellable once queued: a descriptor opened for a cancelled task would leak
            // (the pool drops a cancelled job's outcome). io_uring's open completes too.
            let pool = BlockingPool.forIO
            let result = try await Task { try await pool.systemCall { Int(Glibc.open(path, flags, mode)) } }.value
            if result >= 0 { return File(fd: Int32(result), path: path) }
            throw SpindleIOError(.open, errno: Int32(-result))
        }
        let cPath = strdup(path)!
        defer { free(cPath) }
        let result = try await IOSubmission.perform { sqe in
            io_uring_prep_openat(sqe, AT_FDCWD, cPath, flags, mode)
        }.result
        if result >= 0 { return File(fd: result, path: path) }
        if result == -ECANCELED { throw CancellationError() }
        throw SpindleIOError(.open, errno: -result)
    }

    /// One positional read or write: through io_uring (`prepare`), or on epoll as `call` on
    /// the blocking pool (ReadinessIO.swift), with `buffer` (which outlives the call).
    private static nonisolated(nonsending) func perform(
        _ call: @escaping @Sendable (PoolPointer) -> Int, on buffer: UnsafeMutableRawPointer,
        _ prepare: (UnsafeMutablePointer<io_uring_sqe>) -> Void
    ) async throws -> Int32 {
        if try IOSubmission.epollReactor() != nil {
            let pointer = PoolPointer(raw: buffer)
            return Int32(try await BlockingPool.forIO.systemCall { call(pointer) })
        }
        return try await IOSubmission.perform(prepare).result
    }

    /// Whether `count` bytes from `offset` lie within what a file offset can address.
    static func isValidRange(offset: UInt64, count: Int) -> Bool {
        count >= 0 && offset <= UInt64(Int64.max) && UInt64(count) <= UInt64(Int64.max) - offset
    }

    /// The first buffer of a read, before it has shown that the file has more.
    static let initialReadBuffer = 1 << 20

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    ///
    /// - Throws: ``SpindleIOError`` (``SpindleIOError/Kind/invalidArgument`` for a negative `count` or a
    ///   range past `Int64.max`), or `CancellationError`.
    public nonisolated(nonsending) func read(at offset: UInt64, count: Int) async throws -> [UInt8] {
        guard Self.isValidRange(offset: offset, count: count) else { throw SpindleIOError.invalidArgument(.read) }
        var capacity = max(1, min(count, Self.initialReadBuffer))
        if count > capacity, let size = try? await size(), size > offset {
            // A large read of a file this large: allocate what the file holds at once.
            capacity = Int(min(UInt64(count), size - offset))
        }
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        defer { buffer.deallocate() }  // after the last completion: the kernel is done with it
        var filled = 0
        try await descriptor.using(.read) { fd in
            while filled < count {
                if filled == capacity {
                    // Full and the file goes on: grow (no request is in flight).
                    capacity = capacity > count / 2 ? count : capacity * 2
                    let larger = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
                    larger.copyMemory(from: buffer, byteCount: filled)
                    buffer.deallocate()
                    buffer = larger
                }
                let start = buffer + filled
                let length = UInt32(min(capacity - filled, 1 << 30))
                let position = offset + UInt64(filled)
                let result = try await Self.perform(
                    { pread(fd, $0.raw, Int(length), off_t(position)) }, on: start
                ) { sqe in
                    io_uring_prep_read(sqe, fd, start, length, position)
                }
                if result == 0 { break }  // end of file
                if result < 0 {
                    if result == -ECANCELED { throw CancellationError() }
                    if result == -EINTR || result == -EAGAIN { continue }
                    throw SpindleIOError(.read, errno: -result)
                }
                filled += Int(result)
            }
        }
        return [UInt8](UnsafeRawBufferPointer(start: buffer, count: filled))
    }

    /// Writes all of `bytes` at `offset`, looping on short writes.
    ///
    /// - Throws: ``SpindleIOError`` (``SpindleIOError/Kind/invalidArgument`` if the range ends past
    ///   `Int64.max`), or `CancellationError`.
    public nonisolated(nonsending) func write(_ bytes: [UInt8], at offset: UInt64) async throws {
        guard Self.isValidRange(offset: offset, count: bytes.count) else { throw SpindleIOError.invalidArgument(.write) }
        if bytes.isEmpty { return }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        defer { buffer.deallocate() }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let count = bytes.count
        try await descriptor.using(.write) { fd in
            var written = 0
            while written < count {
                let start = buffer + written
                let length = UInt32(min(count - written, 1 << 30))
                let position = offset + UInt64(written)
                let result = try await Self.perform(
                    { pwrite(fd, $0.raw, Int(length), off_t(position)) }, on: start
                ) { sqe in
                    io_uring_prep_write(sqe, fd, start, length, position)
                }
                if result < 0 {
                    if result == -ECANCELED { throw CancellationError() }
                    if result == -EINTR || result == -EAGAIN { continue }
                    throw SpindleIOError(.write, errno: -result)
                }
                if result == 0 { throw SpindleIOError(.write, errno: EIO) }
                written += Int(result)
            }
        }
    }

    /// Flushes the file's data and metadata to storage (`fsync`).
    public nonisolated(nonsending) func sync() async throws {
        let result = try await descriptor.using(.sync) { fd in
            if try IOSubmission.epollReactor() != nil {
                return Int32(try await BlockingPool.forIO.systemCall { Int(fsync(fd)) })
            }
            return try await IOSubmission.perform { sqe in io_uring_prep_fsync(sqe, fd, 0) }.result
        }
        if result < 0 { throw SpindleIOError(.sync, errno: -result) }
    }

    /// The file's size in bytes (`fstat`: answered from the inode, it does not block on I/O).
    public nonisolated(nonsending) func size() async throws -> UInt64 {
        let fd = try descriptor.begin(.stat)
        defer { descriptor.end() }
        var info = stat()
        if fstat(fd, &info) != 0 { throw SpindleIOError(.stat, errno: errno) }
        return UInt64(info.st_size)
    }

    /// Closes the file (once; later operations throw ``SpindleIOError/Kind/closed``).
    public func close() {
        descriptor.close()
    }

    /// The whole contents of the file at `path`.
    public static nonisolated(nonsending) func readAll(_ path: String) async throws -> [UInt8] {
        let file = try await open(path)
        defer { file.close() }
        var contents = try await file.read(at: 0, count: Int(try await file.size()))
        // The file may have grown since the size was read.
        while true {
            let more = try await file.read(at: UInt64(contents.count), count: 64 * 1024)
            if more.isEmpty { return contents }
            contents.append(contentsOf: more)
        }
    }

    /// Replaces the file at `path` with `bytes` (creating it with `mode`).
    public static nonisolated(nonsending) func write(_ path: String, _ bytes: [UInt8], mode: Glibc.mode_t = 0o644) async throws {
        let file = try await open(path, options: [.write, .create, .truncate], mode: mode)
        defer { file.close() }
        try await file.write(bytes, at: 0)
    }
}
