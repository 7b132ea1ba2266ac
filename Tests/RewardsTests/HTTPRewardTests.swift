import Foundation
import XCTest
@testable import Rewards

/// An HTTP reward against a small Python server: the request it sends, the reply it reads, and
/// each way the server can fail.
final class HTTPRewardTests: XCTestCase {
    static let server = """
        import json, sys, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_POST(self):
                r = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                y = r["response"]
                if y == "slow": time.sleep(2)
                status, body = 200, json.dumps({"reward": float(y.strip() == (r["answer"] or "")), "components": {"chars": len(y)}, "path": self.path})
                if y == "boom": status, body = 500, "boom"
                if y == "garbage": body = "not json"
                if y == "no reward": body = json.dumps({"score": 1})
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())
        s = ThreadingHTTPServer(("127.0.0.1", 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """

    /// Starts the server; returns its port.
    func start() throws -> Int {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("reward-server-\(UUID().uuidString).py")
        try Data(Self.server.utf8).write(to: script)
        let p = Process(), out = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script.path]
        p.standardOutput = out
        try p.run()
        addTeardownBlock { p.terminate(); p.waitUntilExit(); try? FileManager.default.removeItem(at: script) }
        var line = Data()
        while !line.contains(10) { line += out.fileHandleForReading.availableData }
        return try XCTUnwrap(Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    func testScoresFromTheServerAndEveryFailureNamed() throws {
        let port = try start(), url = "http://127.0.0.1:\(port)/score?v=1"
        let r = try HTTPReward(url: url, timeout: 1)
        let s = try r.checkedScore(RewardInput(prompt: "p", response: "4", answer: "4"))
        XCTAssertEqual(s.value, 1)
        XCTAssertEqual(s.components, ["chars": 1])
        XCTAssertEqual(try r.checkedScore(RewardInput(response: "5", answer: nil)).value, 0)
        func error(_ response: String) -> String {
            do { _ = try r.checkedScore(RewardInput(response: response, answer: "1")); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("boom"), "reward \(url): HTTP 500: boom")
        XCTAssertEqual(error("garbage"), "reward \(url): the reply is not a JSON object: not json")
        XCTAssertEqual(error("no reward"), "reward \(url): the reply's 'reward' must be a finite number, got nothing")
        XCTAssertEqual(error("slow"), "reward \(url): no reply in time")
        XCTAssertTrue(r.score(RewardInput(response: "boom")).value.isNaN)
        // Nothing listens: the refused connection is named.
        let closed = try HTTPReward(url: "http://127.0.0.1:1/score")
        XCTAssertThrowsError(try closed.checkedScore(RewardInput(response: "x"))) {
            XCTAssertTrue("\($0)".hasPrefix("reward http://127.0.0.1:1/score: cannot connect: 127.0.0.1:1: "), "\($0)")
        }
        // From config.
        let c = try JSONDecoder().decode(RewardConfig.self, from: Data(#"{"terms": [{"type": "http", "url": "\#(url)"}, {"type": "correct"}]}"#.utf8))
        XCTAssertEqual(try c.reward.checkedScore(RewardInput(response: "7", answer: "7")).value, 2)
        for (json, message) in [(#"{"type": "http"}"#, "('http'): needs 'url' (http://host:port/path)"),
                                (#"{"type": "http", "url": "https://x.org/r"}"#, "'url' must be http://host:port/path, got 'https://x.org/r'"),
                                (#"{"type": "http", "url": "http://h/r", "timeout": -1}"#, "'timeout' must be in (0, 3600] seconds, got -1.0")] {
            XCTAssertThrowsError(try JSONDecoder().decode(RewardConfig.self, from: Data(#"{"terms": [\#(json)]}"#.utf8))) {
                XCTAssertTrue("\($0)".contains(message), "\($0)")
            }
        }
    }
}
