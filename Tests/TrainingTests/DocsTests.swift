import Foundation
import XCTest
@testable import Training

/// The shipped manual: docs/config.md is what the code generates, and every relative link in the
/// README and docs/ points at a file of the repository.
final class DocsTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testTheConfigReferenceIsCurrent() throws {
        let url = Self.root.appendingPathComponent("docs/config.md"), text = try ConfigReference.markdown()
        if ProcessInfo.processInfo.environment["TOKENWISE_WRITE_DOCS"] != nil { try Data(text.utf8).write(to: url) }
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), text,
                       "docs/config.md is stale: regenerate it with TOKENWISE_WRITE_DOCS=1 swift test --filter DocsTests")
        XCTAssertTrue(text.contains("# laser: ~"), "the reference names the keys a preset leaves unset")
    }

    /// The relative targets of `[text](target)` links in a markdown text.
    static func links(_ text: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: #"\]\(([^)\s]+)\)"#)
        return pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } }
            .filter { !$0.hasPrefix("http://") && !$0.hasPrefix("https://") && !$0.hasPrefix("#") && !$0.hasPrefix("mailto:") }
    }

    func testEveryLinkResolvesInsideTheRepository() throws {
        let docs = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("docs").path).filter { $0.hasSuffix(".md") }
        XCTAssertFalse(docs.isEmpty)
        var checked = 0
        for file in ["README.md"] + docs.map({ "docs/" + $0 }) {
            let url = Self.root.appendingPathComponent(file), text = try String(contentsOf: url, encoding: .utf8)
            XCTAssertFalse(text.contains("../shared/"), "\(file) points outside the project")
            for link in Self.links(text) {
                let path = String(link.split(separator: "#", maxSplits: 1).first ?? "")
                let target = url.deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL
                XCTAssertTrue(target.path.hasPrefix(Self.root.standardizedFileURL.path), "\(file): \(link) leaves the repository")
                XCTAssertTrue(FileManager.default.fileExists(atPath: target.path), "\(file): \(link) does not resolve")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 3)
        // The check itself: a broken link is found.
        XCTAssertEqual(Self.links("see [a](docs/none.md#x), [b](https://x.org) and [c](#top)"), ["docs/none.md#x"])
    }
}
