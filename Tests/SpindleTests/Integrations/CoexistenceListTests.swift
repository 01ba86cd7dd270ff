import Foundation
import Testing

extension SpindleTests {
    /// Keeps `Integrations/HummingbirdSpindle/Tests/CoexistenceTests` complete: that target
    /// imports Spindle beside NIOCore, NIOPosix and Hummingbird and names each public type of
    /// Spindle's libraries unqualified, so it stops compiling when a new public name collides
    /// with one of theirs, but only if the new type is in its list. This reads the sources and
    /// fails naming every public top-level type the list lacks.
    @Suite struct CoexistenceListTests {
        @Test func everyPublicTypeIsInTheCoexistenceTest() throws {
            let root = packageRoot()
            let list = try String(
                contentsOfFile: root + "/Integrations/HummingbirdSpindle/Tests/CoexistenceTests/CoexistenceTests.swift",
                encoding: .utf8)
            let declaration = try Regex(#"^public (?:final )?(?:class|struct|enum|protocol|actor|typealias) (\w+)"#)
                .anchorsMatchLineEndings()
            var missing: [String] = []
            var seen = 0
            for library in ["Spindle", "SpindleHTTP", "SpindleServiceLifecycle", "SpindleMetrics"] {
                let folder = root + "/Sources/" + library
                guard let walker = FileManager.default.enumerator(atPath: folder) else { continue }
                for case let file as String in walker where file.hasSuffix(".swift") {
                    let text = try String(contentsOfFile: folder + "/" + file, encoding: .utf8)
                    for match in text.matches(of: declaration) {
                        guard let name = match.output[1].substring.map(String.init) else { continue }
                        seen += 1
                        if !list.contains("\(name).self") && !list.contains("\(name)<") { missing.append("\(library).\(name)") }
                    }
                }
            }
            #expect(seen >= 30, "found only \(seen) public types: is the source layout still Sources/<library>?")
            #expect(missing.isEmpty, "add to CoexistenceTests.everyPublicTypeNameResolves: \(missing.sorted())")
        }
    }
}
