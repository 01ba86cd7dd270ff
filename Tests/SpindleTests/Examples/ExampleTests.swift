import Glibc
import Testing

/// Runs a built example executable (it lives beside the test bundle) and returns its exit
/// status and output.
func runExample(_ name: String) throws -> (status: Int32, output: String) {
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    try #require(length > 0)
    let exe = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let directory = String(exe[..<exe.lastIndex(of: "/")!])
    let path = "\(directory)/\(name)"
    try #require(access(path, X_OK) == 0, "\(path) is not built; run `swift build` first")
    guard let pipe = popen("'\(path)' 2>&1", "r") else { throw POSIXErrorCode.EIO as! Error }
    var output = ""
    var line = [CChar](repeating: 0, count: 1024)
    while fgets(&line, 1024, pipe) != nil {
        output += String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    let status = pclose(pipe)
    return ((status >> 8) & 0xFF, output)
}

extension SpindleTests {
    @Suite struct ExampleTests {
        @Test func spindleBecomesTheProcessWideDefaultExecutor() throws {
            let (status, output) = try runExample("spindle-default-executor")
            #expect(status == 0, "\(output)")
            #expect(output.contains("all checks passed"), "\(output)")
            #expect(!output.contains("FAIL"), "\(output)")
        }

        @Test func readmeExamplesRun() throws {
            let (status, output) = try runExample("spindle-readme-examples")
            #expect(status == 0, "\(output)")
            #expect(output.contains("sum: 49995000"), "\(output)")
            #expect(output.contains("answer: 42"), "\(output)")
            #expect(output.contains("beats: 1"), "\(output)")
            #expect(output.contains("virtual time: 7695.0 seconds"), "\(output)")
            #expect(output.contains("digest computed: true"), "\(output)")
            #expect(output.contains("channel: [0, 1, 2]"), "\(output)")
            #expect(output.contains("echoed: hello"), "\(output)")
            #expect(output.contains("service group echoed: hi, runtime shut down: true"), "\(output)")
            #expect(output.contains("http: true"), "\(output)")
            #expect(output.contains("runtime (2 workers): 2 spawned tasks"), "\(output)")
            #expect(output.contains("'consumer'") && output.contains("'napper'"), "\(output)")
            #expect(output.contains("spawned task 'forgotten' failed and nobody can await its error"), "\(output)")
        }
    }
}
