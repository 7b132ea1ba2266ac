import Foundation
import XCTest

/// Runs the built `tokenwise` binary as a user would.
final class CLITests: XCTestCase {
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
        let rollout = try tokenwise(["bench", "rollout", "--model", "tiny-random", "--batch", "2", "--max-new-tokens", "4", "--threads", "1", "--probe-seconds", "0.05"])
        XCTAssertEqual(rollout.status, 0, rollout.stderr)
        XCTAssertTrue(rollout.stdout.contains("bandwidth probe:") && rollout.stdout.contains("% of it"), rollout.stdout)
    }

    /// Each point of a sweep and each arm of the memory comparison runs in a process of its own
    /// and reports back its figures, peak memory included.
    func testTrainBenchSweepAndMemoryComparison() throws {
        let common = ["bench", "train", "--model", "tiny-random", "--prompts", "1", "--steps", "1", "--threads", "1"]
        let sweep = try tokenwise(common + ["--sweep", "--sweep-lengths", "2,4", "--sweep-groups", "2"])
        XCTAssertEqual(sweep.status, 0, sweep.stderr)
        let rows = sweep.stdout.split(separator: "\n").filter { $0.hasPrefix("| 2 | 2 |") || $0.hasPrefix("| 4 | 2 |") }
        XCTAssertEqual(rows.count, 2, sweep.stdout)
        for row in rows {
            let peak = row.split(separator: "|").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            XCTAssertGreaterThan(Double(peak) ?? 0, 1, "peak MB of \(row)")
        }
        let memory = try tokenwise(common + ["--samples", "2", "--max-new-tokens", "4", "--compare-memory"])
        XCTAssertEqual(memory.status, 0, memory.stderr)
        for arm in ["| activations kept |", "| fused logprobs |", "| gradient checkpointing, fused logprobs |"] {
            XCTAssertTrue(memory.stdout.contains(arm), memory.stdout)
        }
    }

    func lines(_ url: URL) -> [[String: Any]] {
        (try? String(contentsOf: url, encoding: .utf8))?.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        } ?? []
    }

    /// A run's metrics without the timings: what a resumed run must reproduce exactly.
    func replayable(_ dir: URL) -> [[String: Double]] {
        lines(dir.appendingPathComponent("metrics.jsonl")).map { line in
            line.compactMapValues { ($0 as? NSNumber)?.doubleValue }.filter { !$0.key.contains("seconds") && !$0.key.contains("per_second") && $0.key != "peak_memory_mb" }
        }
    }

    func testTrainEvalAndReportOnATinyModel() throws {
        let root = try temporary()
        let run = root.appendingPathComponent("run").path
        let out = try tokenwise(["train", "--preset", "tiny", "--out", run, "--json", "--threads", "1", "--set", "output.save_model=false"])
        XCTAssertEqual(out.status, 0, out.stderr)
        let printed = out.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(printed.compactMap { $0["step"] as? Int }, [0, 1, 2, 3, 3], out.stdout)   // eval before, 3 steps, eval after
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/report.html"))
        let quiet = try tokenwise(["train", "--preset", "tiny", "--out", root.appendingPathComponent("q").path, "--quiet", "--threads", "1"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertEqual(quiet.stdout, "")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("q/model/model.safetensors").path))
        let normal = try tokenwise(["train", "--preset", "tiny", "--out", root.appendingPathComponent("n").path, "--threads", "1"])
        XCTAssertTrue(normal.stdout.contains("step 3/3 │ reward "), normal.stdout)
        XCTAssertTrue(normal.stdout.contains("ETA "), normal.stdout)
        try checkCreditSideBySide(run: run, root: root)
        // report rewrites the page; eval reads the trained adapters.
        let report = try tokenwise(["report", run])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(report.stdout.hasSuffix("report.html\n"))
        let eval = try tokenwise(["eval", "--model", "tiny-random", "--adapter", run + "/checkpoints/step-3", "--prompts", "3",
                                  "--samples", "2", "--max-new-tokens", "4", "--json", "--threads", "1"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let result = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(result["prompts"] as? Int, 3)
        XCTAssertNotNil((result["pass_at_k"] as? [String: Any])?["2"])
        let text = try tokenwise(["eval", "--model", "tiny-random", "--prompts", "2", "--samples", "2", "--max-new-tokens", "2"])
        XCTAssertTrue(text.stdout.contains("accuracy") && text.stdout.contains("pass@2") && text.stdout.contains(" ± "), text.stdout)
    }

    /// `credit --compare`: a run's recorded groups scored by several methods (one given by a JSON
    /// file), as a table, JSON and a page; what it refuses.
    func checkCreditSideBySide(run: String, root: URL) throws {
        let file = root.appendingPathComponent("loud-tempo.json")
        try Data(#"{"method": "tempo", "params": {"td_weight": 2}}"#.utf8).write(to: file)
        let samples = run + "/samples.jsonl", page = root.appendingPathComponent("side.html").path
        let table = try tokenwise(["credit", "--compare", "grpo,rloo,\(file.path)", "--samples", samples, "--step", "2", "--html", page])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.hasPrefix("\(samples) step 2: 8 responses in 2 whole groups, per-token credit (advantage × weight) by grpo, rloo, loud-tempo\n"), table.stdout)
        XCTAssertTrue(table.stdout.contains("group 0 · response 1 · reward "), table.stdout)
        let html = try String(contentsOfFile: page, encoding: .utf8)
        XCTAssertEqual(html.components(separatedBy: "<tr><th>loud-tempo</th>").count - 1, 8)
        XCTAssertTrue(try tokenwise(["credit", "--compare", "grpo", "--samples", samples, "--html", page]).stderr.contains("--html \(page) exists already"))
        let json = try tokenwise(["credit", "--compare", "grpo", "--samples", samples, "--step", "1", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["step"] as? Int, 1)
        XCTAssertEqual((object?["rows"] as? [Any])?.count, 8)
        for (args, error) in [(["--compare", "grpo"], "--compare needs --samples RUN/samples.jsonl"),
                              (["--samples", samples], "--samples, --step, --json and --html go with --compare METHODS"),
                              (["--compare", "nope", "--samples", samples], "--compare: 'nope' is neither a method"),
                              (["--compare", "gae", "--samples", samples, "--step", "3"], "gae (credit.method gae) reads critic values ('values'), which \(samples) step 3 does not record"),
                              (["--compare", "grpo", "--samples", samples, "--step", "9"], "\(samples): no records at step 9 (steps recorded: 1…3)")] {
            let out = try tokenwise(["credit"] + args)
            XCTAssertNotEqual(out.status, 0)
            XCTAssertTrue(out.stderr.contains(error), out.stderr)
        }
    }

    /// A run whose critic learns TVM's labels; eval --rerank tvm picks best-of-N with its checkpoint.
    func testTVMCriticAndRerankedEval() throws {
        let root = try temporary()
        let run = root.appendingPathComponent("tvm").path
        let out = try tokenwise(["train", "--preset", "tiny", "--out", run, "--quiet", "--threads", "1", "--set", "credit.method=gae",
                                 "--set", "critic.target=tvm", "--set", "critic.lr=0.01", "--set", "output.save_model=false"])
        XCTAssertEqual(out.status, 0, out.stderr)
        let checkpoint = run + "/checkpoints/step-3"
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint + "/critic.safetensors"))
        let eval = try tokenwise(["eval", "--model", "tiny-random", "--adapter", checkpoint, "--critic", checkpoint, "--rerank", "tvm",
                                  "--prompts", "3", "--samples", "3", "--max-new-tokens", "4", "--json", "--threads", "1"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let result = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        let rerank = try XCTUnwrap(result["rerank"] as? [String: Any], eval.stdout)
        XCTAssertEqual(rerank["method"] as? String, "tvm")
        XCTAssertNotNil(rerank["accuracy"])
        let text = try tokenwise(["eval", "--model", "tiny-random", "--critic", checkpoint, "--rerank", "tvm", "--prompts", "2", "--samples", "2", "--max-new-tokens", "2"])
        XCTAssertTrue(text.stdout.contains("best of 2 by tvm: reward "), text.stdout + text.stderr)
        let cases: [([String], String)] = [
            (["eval", "--model", "tiny-random", "--rerank", "tvm"], "--rerank tvm scores with a critic: give --critic"),
            (["eval", "--model", "tiny-random", "--critic", checkpoint], "--critic is read only by --rerank tvm"),
            (["eval", "--model", "tiny-random", "--critic", checkpoint, "--rerank", "orm"], "--rerank must be tvm, laser or confidence, got 'orm'"),
            (["eval", "--model", "tiny-random", "--rerank", "laser"], "--rerank laser reads the self-reward token's log-probability: give --laser-token"),
            (["eval", "--model", "tiny-random", "--laser-token", "x"], "--laser-token is read only by --rerank laser"),
            (["eval", "--model", "tiny-random", "--rerank", "confidence", "--extractor", "num"], "--extractor must be last_number, boxed or answer_tag, got 'num'"),
            (["eval", "--model", "tiny-random", "--extractor", "boxed"], "--extractor is read only by --rerank confidence"),
            (["eval", "--model", "tiny-random", "--critic", checkpoint, "--rerank", "tvm", "--samples", "1"], "--samples must be at least 2, got 1"),
            (["eval", "--model", "tiny-random", "--critic", root.path, "--rerank", "tvm"], "critic.safetensors: no critic here"),
        ]
        for (args, message) in cases {
            let r = try tokenwise(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }

    func testTrainErrorsAndPrintConfig() throws {
        let root = try temporary()
        let template = try tokenwise(["train", "--print-config"])
        XCTAssertEqual(template.status, 0, template.stderr)
        XCTAssertTrue(template.stdout.contains("# Credit assignment") && template.stdout.contains("method: tempo"), template.stdout)
        let set = try tokenwise(["train", "--print-config", "--set", "credit.method=grpo", "--set", "optim.lr=0.5"])
        XCTAssertTrue(set.stdout.contains("method: grpo") && set.stdout.contains("lr: 0.5"), set.stdout)
        let cfg = root.appendingPathComponent("bad.yaml")
        try Data("train:\n  steps: 2\n  stepz: 3\n".utf8).write(to: cfg)
        let run = root.appendingPathComponent("never")
        let bad = try tokenwise(["train", "--config", cfg.path, "--out", run.path])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("bad.yaml:3: unknown key 'train.stepz'"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path))
        let missing = try tokenwise(["train", "--preset", "tiny", "--set", "model.path=/nonexistent/model", "--out", run.path])
        XCTAssertTrue(missing.stderr.contains("/nonexistent/model: no such file or directory"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path))
        XCTAssertTrue(try tokenwise(["train", "--preset", "huge"]).stderr.contains("--preset 'huge' is not one of default, tiny"))
        XCTAssertTrue(try tokenwise(["train", "--resume", run.path, "--set", "a.b=1"]).stderr.contains("--resume continues a run with its own config.yaml"))
    }

    /// Counts far beyond a machine, infinite numbers and outputs over other files are errors that
    /// name the field — never a crash, an allocation attempt, or lost data.
    func testHugeCountsAndOccupiedOutputsAreErrors() throws {
        let root = try temporary(), run = root.appendingPathComponent("never")
        let cases: [([String], String)] = [
            (["eval", "--model", "tiny-random", "--prompts", "1000000000000"], "--prompts must be positive and at most 10000000"),
            (["eval", "--model", "tiny-random", "--samples", "100000000000"], "--samples must be 1…4096"),
            (["train", "--preset", "tiny", "--set", "data.eval_size=1e12", "--out", run.path], "'data.eval_size' must be 0…10000000"),
            (["train", "--preset", "tiny", "--set", "data.eval_size=.inf", "--out", run.path], "'data.eval_size' must be 0…10000000"),
            (["train", "--preset", "tiny", "--set", "data.train_size=1000000000000", "--out", run.path], "'data.train_size' must be 1…10000000"),
            (["train", "--preset", "tiny", "--set", "train.samples_per_prompt=100000000000", "--out", run.path], "'train.samples_per_prompt' must be at most 4096"),
            (["train", "--preset", "tiny", "--set", "train.prompts_per_step=100000000000", "--out", run.path],
             "'train.prompts_per_step' × 'train.samples_per_prompt' must be at most 1048576 rollouts a step"),
            (["train", "--preset", "tiny", "--set", "optim.lr=1e400", "--out", run.path], "'optim.lr' must be positive and finite"),
            (["generate", "--model", "tiny-random", "--prompt", "hi", "--max-new-tokens", "100000000"], "exceeds the model's context"),
            (["logprobs", "--model", "tiny-random", "--text", String(repeating: "a", count: 5000)], "longer than the model's context"),
            // A negative count read as "Missing value for '--prompts'": it now meets the option's own check.
            (["eval", "--model", "tiny-random", "--prompts", "-5"], "--prompts must be positive and at most 10000000, got -5.0"),
            (["eval", "--model", "tiny-random", "--threads", "-2"], "--threads must be at least 1, got -2"),
            (["generate", "--model", "tiny-random", "--prompt", "hi", "--max-new-tokens", "-1"], "--max-new-tokens must be positive, got -1"),
            (["generate", "--model", "tiny-random", "--prompt", "hi", "--max-tokens", "4"], "--max-tokens is now --max-new-tokens (the token limit has one name everywhere, as rollout.max_new_tokens)"),
            (["bench", "rollout", "--new-tokens", "4"], "--new-tokens is now --max-new-tokens (the token limit has one name everywhere, as rollout.max_new_tokens)"),
            (["bench", "train", "--model", "tiny-random", "--steps", "-1"], "--steps must be 1…100000, got -1"),
            (["bench", "train", "--model", "tiny-random", "--logprobs", "chunked"], "--logprobs must be fused or unfused, got 'chunked'"),
            (["bench", "train", "--model", "tiny-random", "--sweep", "--compare-memory"], "--compare-memory and --sweep are separate comparisons; ask for one"),
            (["bench", "train", "--model", "tiny-random", "--sweep", "--sweep-lengths", "64,x"], "--sweep-lengths must be integers in 1…1048576 separated by commas, got '64,x'"),
            (["bench", "rollout", "--model", "tiny-random", "--probe-seconds", "0"], "--probe-seconds must be in (0, 600], got 0.0"),
            // These hung (1000 spinning threads; a 100 GB text; a 4 TB matrix) or exhausted memory.
            (["bench", "matmul", "--threads", "1000"], "--threads must be at most"),
            (["bench", "tokenizer", "--model", "tiny-random", "--megabytes", "100000"], "--megabytes must be in (0, 1024], got 100000.0"),
            (["bench", "matmul", "--sizes", "1000000"], "--sizes must be integers in 1…16384"),
            (["bench", "credit", "--groups", "100000", "--tokens", "100000"], "must be at most 67108864 tokens"),
            (["train", "--preset", "tiny", "--set", "model.lora.lora_alpha=1e30", "--out", run.path], "lora: 'lora_alpha' must be in (0, 1e6], got 1e+30"),
        ]
        for (args, message) in cases {
            let r = try tokenwise(args)
            XCTAssertFalse(r.signaled, "\(args): crashed\n\(r.stderr)")
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path))
        // convert never writes over a file or a folder of other files.
        let data = root.appendingPathComponent("data.jsonl")
        try Data("keep\n".utf8).write(to: data)
        let overFile = try tokenwise(["convert", "--model", "tiny-random", "--out", data.path])
        XCTAssertNotEqual(overFile.status, 0)
        XCTAssertTrue(overFile.stderr.contains("exists and is a file"), overFile.stderr)
        XCTAssertEqual(try String(contentsOf: data, encoding: .utf8), "keep\n")
        let overRoot = try tokenwise(["convert", "--model", "tiny-random", "--out", root.path])
        XCTAssertTrue(overRoot.stderr.contains("holds files Tokenwise did not write"), overRoot.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: data.path))
        let model = root.appendingPathComponent("model")
        XCTAssertEqual(try tokenwise(["convert", "--model", "tiny-random", "--out", model.path]).status, 0)
        XCTAssertEqual(try tokenwise(["convert", "--model", "tiny-random", "--out", model.path]).status, 0)   // its own output: replaced
    }

    /// A method or option whose input nothing in training supplies is refused before a run folder exists.
    func testMethodsWithoutTheirInputsAreRefusedBeforeAnythingIsWritten() throws {
        let run = try temporary().appendingPathComponent("never")
        let gae = try tokenwise(["train", "--preset", "tiny", "--set", "credit.method=gae", "--out", run.path])
        XCTAssertNotEqual(gae.status, 0)
        XCTAssertTrue(gae.stderr.contains("config: credit.method gae needs critic values ('values'), from a learned critic: add a 'critic:' section"), gae.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path))
        let tis = try tokenwise(["train", "--preset", "tiny", "--set", "objective.mismatch.mode=tis", "--out", run.path])
        XCTAssertNotEqual(tis.status, 0)
        XCTAssertTrue(tis.stderr.contains("config: objective.mismatch tis needs rollout-engine logprobs ('rollout_logprobs'), which differ from the learner's only with a rollout engine apart from it"), tis.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path))
        // tokenwise credit still computes GAE from values the user gives.
        let credit = try tokenwise(["credit"], stdin: #"{"method": "gae", "groups": [{"id": "q", "trajectories": [{"tokens": [1, 2], "reward": 1, "values": [0.5, 0.25]}]}]}"#)
        XCTAssertEqual(credit.status, 0, credit.stderr)
    }

    /// A run killed with SIGKILL in the middle of a step and resumed records the same steps as one
    /// that was never interrupted.
    /// SIGTERM stops a run after the step in progress with a checkpoint of that step, says how to
    /// continue, and exits 143; the run resumes from there.
    func testSIGTERMStopsAfterTheStepWithACheckpoint() throws {
        let dir = try temporary().appendingPathComponent("run")
        let p = Process()
        p.executableURL = binary
        p.arguments = ["train", "--out", dir.path, "--preset", "tiny", "--threads", "1", "--quiet", "--set", "train.steps=200",
                       "--set", "output.checkpoint_every=50", "--set", "eval.before=false", "--set", "output.save_model=false"]
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while lines(dir.appendingPathComponent("metrics.jsonl")).count < 3 && p.isRunning && Date() < deadline { usleep(2_000) }
        XCTAssertTrue(p.isRunning, "the run ended before it could be stopped")
        kill(p.processIdentifier, SIGTERM)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit)
        XCTAssertEqual(p.terminationStatus, 143, stderr)
        let steps = lines(dir.appendingPathComponent("metrics.jsonl")).count
        XCTAssertLessThan(steps, 200)
        XCTAssertTrue(stderr.contains("stopped by SIGTERM after step \(steps), checkpoint step-\(steps) written; continue with: tokenwise train --resume \(dir.path)"), stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("checkpoints/step-\(steps)/manifest.json").path))
        let resumed = Process()
        resumed.executableURL = binary
        resumed.arguments = ["train", "--resume", dir.path, "--threads", "1"]
        let out = Pipe()
        resumed.standardOutput = out
        try resumed.run()
        let first = out.fileHandleForReading.availableData
        kill(resumed.processIdentifier, SIGKILL)
        resumed.waitUntilExit()
        XCTAssertTrue(String(decoding: first, as: UTF8.self).contains("resuming \(dir.path) after step \(steps)"), String(decoding: first, as: UTF8.self))
    }

    func testResumeAfterSIGKILLMatchesAnUninterruptedRun() throws {
        try resumeAfterSIGKILL(steps: 40)
    }

    /// The same with PPO's critic: its adapters, head and optimizer come back, so its metrics replay too.
    func testResumeAfterSIGKILLReplaysTheCritic() throws {
        let metrics = try resumeAfterSIGKILL(steps: 20, ["--set", "credit.method=gae", "--set", "critic.lr=0.01", "--set", "critic.lora.r=4"])
        XCTAssertNotNil(metrics.last?["critic/vf_loss"])
        XCTAssertNotNil(metrics.last?["critic/explained_variance"])
    }

    /// Runs `steps` steps whole and again killed with SIGKILL past its second checkpoint (step 10),
    /// resumes the killed one, and checks both recorded the same steps; returns their metrics.
    @discardableResult
    func resumeAfterSIGKILL(steps: Int, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Double]] {
        let root = try temporary()
        let args = ["--preset", "tiny", "--threads", "1", "--quiet", "--set", "train.steps=\(steps)", "--set", "output.checkpoint_every=5",
                    "--set", "rollout.max_new_tokens=24", "--set", "output.save_model=false", "--set", "eval.before=false"] + extra
        let whole = root.appendingPathComponent("whole"), cut = root.appendingPathComponent("cut")
        XCTAssertEqual(try tokenwise(["train", "--out", whole.path] + args).status, 0, file: file, line: line)
        let p = Process()
        p.executableURL = binary
        p.arguments = ["train", "--out", cut.path] + args
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Kill it once it is past its second checkpoint, wherever in a step it is.
        let deadline = Date().addingTimeInterval(120)
        while lines(cut.appendingPathComponent("metrics.jsonl")).count < 12 && p.isRunning && Date() < deadline { usleep(2_000) }
        XCTAssertTrue(p.isRunning, "the run ended before it could be killed", file: file, line: line)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, file: file, line: line)
        let killedAt = lines(cut.appendingPathComponent("metrics.jsonl")).count
        XCTAssertLessThan(killedAt, steps, file: file, line: line)
        let resumed = try tokenwise(["train", "--resume", cut.path, "--threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr, file: file, line: line)
        XCTAssertTrue(resumed.stdout.contains("resuming \(cut.path) after step 10"), resumed.stdout, file: file, line: line)
        XCTAssertEqual(replayable(cut).count, steps, file: file, line: line)
        XCTAssertEqual(replayable(cut), replayable(whole), file: file, line: line)
        XCTAssertEqual(lines(cut.appendingPathComponent("samples.jsonl")).count, lines(whole.appendingPathComponent("samples.jsonl")).count, file: file, line: line)
        return replayable(cut)
    }
}
