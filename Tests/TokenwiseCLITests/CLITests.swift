import Foundation
import XCTest

/// Runs the built `tokenwise` binary as a user would.
final class CLITests: XCTestCase {
    struct Output { var status: Int32; var stdout: String; var stderr: String }

    var binary: URL {
        // The executable sits beside the test bundle in the build folder.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenwise").path), dir.path != "/" {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("tokenwise")
    }

    func tokenwise(_ args: [String], stdin: String = "") throws -> Output {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = errPipe
        try p.run()
        inPipe.fileHandleForWriting.write(Data(stdin.utf8))
        try inPipe.fileHandleForWriting.close()
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        let err = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
    }

    func testVersionAndHelp() throws {
        XCTAssertTrue(try tokenwise(["--version"]).stdout.contains("libtorch 2.11.0"))
        let help = try tokenwise(["--help"]).stdout
        XCTAssertTrue(help.contains("credit") && help.contains("bench"), help)
    }

    func testCreditReadsStdinAndWritesJSON() throws {
        let req = #"{"method":"rloo","groups":[{"id":"q","trajectories":[{"tokens":[1,2],"reward":1},{"tokens":[3],"reward":0}]}]}"#
        let out = try tokenwise(["credit"], stdin: req)
        XCTAssertEqual(out.status, 0, out.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as! [String: Any]
        let groups = json["groups"] as! [[String: Any]]
        let trajs = groups[0]["trajectories"] as! [[String: Any]]
        XCTAssertEqual(trajs[0]["advantages"] as? [Double], [1, 1])   // 2/1 · (1 − 0.5)
        XCTAssertEqual(trajs[1]["advantages"] as? [Double], [-1])
        XCTAssertEqual(trajs[0]["weights"] as? [Double], [1, 1])
        XCTAssertNotNil(json["diagnostics"] as? [String: Double])
    }

    func testCreditFromAFileAndErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("req.json")
        try Data(#"{"method":"gae","groups":[{"id":"g7","trajectories":[{"tokens":[1,2],"reward":1}]}]}"#.utf8).write(to: file)
        let missing = try tokenwise(["credit", "--input", file.path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("\(file.path): group 'g7', trajectory 0: method 'gae' needs 'values'"), missing.stderr)
        let unknown = try tokenwise(["credit"], stdin: #"{"method":"magic","groups":[]}"#)
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("stdin: unknown method 'magic'"), unknown.stderr)
        let nofile = try tokenwise(["credit", "--input", "/nonexistent/x.json"])
        XCTAssertTrue(nofile.stderr.contains("/nonexistent/x.json: cannot read the file"), nofile.stderr)
    }

    func testObjectiveReadsStdinAndWritesLossAndGradients() throws {
        let req = #"{"objective":{"ratio":"token"},"trajectories":[{"logprobs":[0.1,0.5],"old_logprobs":[0,0],"advantages":[1,1]}]}"#
        let out = try tokenwise(["objective"], stdin: req)
        XCTAssertEqual(out.status, 0, out.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as! [String: Any]
        // ℓ = [−e^0.1, −1.2 (clipped)], token mean; gradient −e^0.1/2 on the first token only.
        XCTAssertEqual(json["loss"] as! Double, (-Foundation.exp(0.1) - 1.2) / 2, accuracy: 1e-12)
        let g = (json["grad_logprobs"] as! [[Double]])[0]
        XCTAssertEqual(g[0], -Foundation.exp(0.1) / 2, accuracy: 1e-12)
        XCTAssertEqual(g[1], 0)
        let bad = try tokenwise(["objective"], stdin: #"{"objective":{"ratio":"tokens"},"trajectories":[]}"#)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("stdin: objective: 'ratio' is 'tokens'; expected one of 'token', 'sequence'"), bad.stderr)
        let dtype = try tokenwise(["objective", "--dtype", "int8"])
        XCTAssertTrue(dtype.stderr.contains("--dtype must be float64 or float32"), dtype.stderr)
    }

    func testEveryMethodIsReachableByName() throws {
        for name in ["grpo", "rloo", "reinforce_pp", "gae", "tempo", "spo_chain", "spo_tree", "pure", "gigpo", "hapo",
                     "tw_grpo", "d3s", "hicra"] {
            let out = try tokenwise(["credit", "--defaults", name])
            XCTAssertEqual(out.status, 0, out.stderr)
            XCTAssertTrue(out.stdout.contains("\"method\" : \"\(name)\""), out.stdout)
        }
        XCTAssertTrue(try tokenwise(["credit", "--defaults", "nope"]).stderr.contains("unknown method 'nope'"))
    }

    func testBenches() throws {
        let credit = try tokenwise(["bench", "credit", "--groups", "2", "--group-size", "2", "--tokens", "16", "--repeats", "1"])
        XCTAssertEqual(credit.status, 0, credit.stderr)
        XCTAssertTrue(credit.stdout.contains("tempo") && credit.stdout.contains("baseline"), credit.stdout)
        let mm = try tokenwise(["bench", "matmul", "--sizes", "32", "--seconds", "0.05", "--threads", "1", "--json"])
        XCTAssertEqual(mm.status, 0, mm.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(mm.stdout.utf8)) as! [String: Any]
        XCTAssertGreaterThan(json["peak_gflops"] as! Double, 0)
        let bad = try tokenwise(["bench", "matmul", "--threads", "0"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--threads must be at least 1, got 0"), bad.stderr)
    }
}
