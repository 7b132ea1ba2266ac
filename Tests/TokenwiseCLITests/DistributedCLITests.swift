import Foundation
import XCTest

/// `tokenwise train --nproc`: two ranks over loopback against one process, a rank killed mid-run,
/// and the errors of bad launches.
final class DistributedCLITests: XCTestCase {
    /// A short tiny-model run: 3 prompts a step (rank 0 samples 1, rank 1 samples 2), no evaluations.
    func args(_ dir: URL, steps: Int = 3, _ sets: [String] = [], preset: String = "tiny") -> [String] {
        ["train", "--preset", preset, "--out", dir.path, "--quiet"]
            + (["train.steps=\(steps)", "train.prompts_per_step=3", "eval.before=false", "eval.after=false",
                "output.save_model=false", "output.report=false", "output.checkpoint_every=1"] + sets).flatMap { ["--set", $0] }
    }

    /// Every float32 tensor of a safetensors file, by name.
    func tensors(_ url: URL) throws -> [String: [Float]] {
        let data = try Data(contentsOf: url)
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        var out: [String: [Float]] = [:]
        for (name, v) in header where name != "__metadata__" {
            let info = v as! [String: Any], range = info["data_offsets"] as! [Int]
            XCTAssertEqual(info["dtype"] as? String, "F32", name)
            let bytes = data.subdata(in: (8 + n + range[0])..<(8 + n + range[1]))
            out[name] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return out
    }

    /// The metrics that do not depend on timing, per step.
    func metrics(_ dir: URL) throws -> [[String: Double]] {
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let all = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return all.compactMapValues { $0 as? Double }.filter { !$0.key.hasSuffix("seconds") && !$0.key.hasSuffix("per_second") && $0.key != "peak_memory_mb" }
        }
    }

    /// The same run in one process (1 thread) and on 2 ranks, both finished: their folders.
    func oneAndTwoRanks(_ command: (URL) -> [String]) throws -> (one: URL, two: URL) {
        let root = try temporary()
        let one = root.appendingPathComponent("one"), two = root.appendingPathComponent("two")
        let a = try tokenwise(command(one) + ["--threads", "1"]), b = try tokenwise(command(two) + ["--nproc", "2"])
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertEqual(b.status, 0, b.stderr)
        return (one, two)
    }

    /// A run's samples.jsonl, record by record.
    func samples(_ dir: URL) throws -> [[String: Any]] {
        try String(contentsOf: dir.appendingPathComponent("samples.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// Weights and metrics of the two runs agree to float32 reduction order (1e-5). `after` is a
    /// looser bound for the weights and the steps after the first: a bf16 rollout copy rounds
    /// weights that differ in their last float32 bits to neighbouring bf16 values now and then,
    /// and Adam magnifies the small gradient differences that follow (on an AVX512-BF16 CPU: step 1
    /// agreed to 1e-5, the weights after 3 steps to 3.5e-4).
    func assertSameRun(_ one: URL, _ two: URL, weights file: String, after loose: Double = 1e-5, tiesAtFirstStep: Set<String> = [],
                       perRank: Set<String> = [], file line: StaticString = #filePath, _ l: UInt = #line) throws {
        let a = try tensors(one.appendingPathComponent("checkpoints/step-3/\(file)")), b = try tensors(two.appendingPathComponent("checkpoints/step-3/\(file)"))
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst: Float = 0
        for (k, x) in a { for (u, v) in zip(x, b[k]!) { worst = max(worst, abs(u - v)) } }
        XCTAssertLessThan(worst, Float(loose), "largest weight difference after 3 steps", file: line, line: l)
        let (ma, mb) = (try metrics(one), try metrics(two))
        XCTAssertEqual(ma.count, 3)
        for (step, (x, y)) in zip(ma, mb).enumerated() {
            XCTAssertEqual(Set(x.keys), Set(y.keys), file: line, line: l)
            let bound = step == 0 ? 1e-5 : loose
            for (k, v) in x where (step > 0 || !tiesAtFirstStep.contains(k)) && !perRank.contains(k) {
                XCTAssertEqual(v, y[k] ?? .nan, accuracy: bound * max(1, abs(v)), "step \(step + 1) metric \(k)", file: line, line: l)
            }
        }
    }

    /// An offline preference objective: a step's 3 pairs split 1 + 2 over the ranks, each share's
    /// loss scaled by its part of the pairs.
    func testTwoRanksTrainAPreferenceObjectiveAsOneProcess() throws {
        let data = try temporary().appendingPathComponent("pairs.jsonl")
        try Data((0..<12).map { i in
            "{\"prompt\": \"Is \(i) even?\", \"chosen\": \"\(i % 2 == 0 ? "yes" : "no")\", \"rejected\": \"\(i % 2 == 0 ? "no" : "yes")\", \"h_w\": \(i % 3 == 0 ? 1 : 0), \"h_l\": \(i % 4 == 0 ? 0 : 1)}"
        }.joined(separator: "\n").utf8).write(to: data)
        let (one, two) = try oneAndTwoRanks { self.args($0, ["data.task=\(data.path)", "data.eval_size=2", "objective.name=fdpo", "objective.beta=0.5"]) }
        // At step 1 the policy is the reference, so every margin is 0 up to rounding, which the
        // batch's shape decides: the share of positive margins is a coin toss there.
        try assertSameRun(one, two, weights: "adapter_model.safetensors", tiesAtFirstStep: ["reward_accuracy"])
        XCTAssertEqual(try metrics(one).map { $0["pairs"] }, [3, 3, 3])
    }

    /// Supervised fine-tuning: a step's 3 examples split 1 + 2, each share divided by the step's target tokens.
    func testTwoRanksTrainSFTAsOneProcess() throws {
        let data = try temporary().appendingPathComponent("sft.jsonl")
        try Data((0..<12).map { i in
            i % 2 == 0 ? "{\"prompt\": \"Is \(i) even?\", \"completion\": \"yes, \(i) is even\"}"
                : "{\"messages\": [{\"role\": \"user\", \"content\": \"Is \(i) even?\"}, {\"role\": \"assistant\", \"content\": \"no\"}]}"
        }.joined(separator: "\n").utf8).write(to: data)
        let (one, two) = try oneAndTwoRanks { self.args($0, ["data.task=\(data.path)", "data.eval_size=2", "objective.name=sft", "objective.packing=true"]) }
        // How many rows a step packs into, and their padding, depend on how the examples are split.
        try assertSameRun(one, two, weights: "adapter_model.safetensors", perRank: ["rows", "padding_tokens"])
        XCTAssertEqual(try metrics(one).map { $0["examples"] }, [3, 3, 3])
    }

    /// DAPO's dynamic sampling over 2 ranks: a reward that leaves many groups all equal (a
    /// character sum's residue) makes steps drop groups and refill them, the refills split over
    /// the ranks; the refills, the kept groups, their order (group ids in samples.jsonl) and the
    /// weights are one process's. With 3 ranks and no refills, a step can keep fewer groups than
    /// there are ranks, so a rank trains on none and still takes part.
    func testRanksTrainWithDynamicSamplingAsOneProcess() throws {
        let script = try temporary().appendingPathComponent("residue.py")
        func reward(_ modulus: Int) throws -> String {
            try Data("""
                import json, sys
                for line in sys.stdin:
                    r = json.loads(line)["response"]
                    print(json.dumps({"reward": 1.0 if sum(map(ord, r)) % \(modulus) == 0 else 0.0}), flush=True)
                """.utf8).write(to: script)
            return "reward.terms=[{type: command, command: \"python3 \(script.path)\"}]"
        }
        let sets = ["train.dynamic_sampling=true", "train.max_refills=3", "train.prompts_per_step=4", "output.samples_per_step=16",
                    "train.mini_batches=2", try reward(5)]
        let (one, two) = try oneAndTwoRanks { self.args($0, sets) }
        try assertSameRun(one, two, weights: "adapter_model.safetensors")
        let sampled = try metrics(one).map { $0["groups_sampled"] ?? 0 }
        XCTAssertGreaterThan(sampled.max() ?? 0, 5, "a step refilled more than one prompt: \(sampled)")
        let (sa, sb) = (try samples(one), try samples(two))
        XCTAssertEqual(sa.map { $0["tokens"] as! [Int] }, sb.map { $0["tokens"] as! [Int] })
        XCTAssertEqual(sa.map { $0["group"] as! Int }, sb.map { $0["group"] as! Int })
        XCTAssertGreaterThan(sa.map { $0["group"] as! Int }.max() ?? 0, 3, "a refilled group trained")
        // Three ranks, no refills: steps that keep 2 of 4 groups leave a rank without any.
        let few = ["train.dynamic_sampling=true", "train.max_refills=0", "train.prompts_per_step=4", "train.mini_batches=2", try reward(9)]
        let root = try temporary()
        let a = try tokenwise(args(root.appendingPathComponent("one"), few) + ["--threads", "1"])
        let b = try tokenwise(args(root.appendingPathComponent("three"), few) + ["--nproc", "3"])
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertEqual(b.status, 0, b.stderr)
        let kept = try metrics(root.appendingPathComponent("one")).map { $0["groups_kept"] ?? 0 }
        XCTAssertTrue(kept.contains { $0 < 3 }, "a step kept fewer groups than ranks: \(kept)")
        try assertSameRun(root.appendingPathComponent("one"), root.appendingPathComponent("three"), weights: "adapter_model.safetensors")
    }

    /// DARS over 2 ranks: each rank adds its prompts' extra samples (seeded as one process seeds
    /// them) and drops its all-pass or all-fail groups; a rank may be left with none.
    func testTwoRanksTrainDARSAsOneProcess() throws {
        let script = try temporary().appendingPathComponent("residue.py")
        try Data("""
            import json, sys
            for line in sys.stdin:
                r = json.loads(line)["response"]
                ok = 1.0 if sum(map(ord, r)) % 4 == 0 else 0.0
                print(json.dumps({"reward": ok, "components": {"correct": ok}}), flush=True)
            """.utf8).write(to: script)
        let sets = ["train.dars={schedule: et, n_max: 8}", "train.prompts_per_step=4", "output.samples_per_step=64", "train.mini_batches=2",
                    "reward.terms=[{type: command, command: \"python3 \(script.path)\"}]"]
        let (one, two) = try oneAndTwoRanks { self.args($0, sets) }
        try assertSameRun(one, two, weights: "adapter_model.safetensors")
        XCTAssertGreaterThan(try metrics(one).compactMap { $0["dars_extra_rollouts"] }.max() ?? 0, 0, "DARS added samples")
        let (sa, sb) = (try samples(one), try samples(two))
        XCTAssertEqual(sa.map { $0["tokens"] as! [Int] }, sb.map { $0["tokens"] as! [Int] })
        XCTAssertEqual(sa.map { $0["group"] as! Int }, sb.map { $0["group"] as! Int })
    }

    func testTwoRanksTrainAsOneProcessWithLoRAAndABF16RolloutCopy() throws {
        // The learner rescores a bf16 engine's samples; TIS corrects, and the mismatch metrics are token means.
        let (one, two) = try oneAndTwoRanks { self.args($0, ["rollout.weights=bf16", "objective.mismatch.mode=tis"]) }
        try assertSameRun(one, two, weights: "adapter_model.safetensors", after: 2e-3)
        // Rank 0 alone writes the folder.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: two.path).sorted(), ["checkpoints", "config.yaml", "metrics.jsonl", "samples.jsonl"])
    }

    func testTwoRanksTrainAsOneProcessFullFineTuningWithWhitening() throws {
        // REINFORCE++ whitens over the whole batch: the ranks must see each other's groups.
        let (one, two) = try oneAndTwoRanks { self.args($0, ["model.lora=null", "optim.lr=1e-4", "credit.method=reinforce_pp", "train.mini_batches=2"]) }
        try assertSameRun(one, two, weights: "model.safetensors")
    }

    func testTwoRanksTrainAsOneProcessWithACriticAndRepeatedPrompts() throws {
        // Two training prompts and three a step: every step holds a prompt twice, on different ranks at times.
        let sets = ["credit.method=gae", "critic.lr=1e-3", "objective.aggregation=seq_mean_token_sum_norm", "data.train_size=2", "output.samples_per_step=12"]
        let (one, two) = try oneAndTwoRanks { self.args($0, sets) }
        try assertSameRun(one, two, weights: "adapter_model.safetensors")
        try assertSameRun(one, two, weights: "critic.safetensors")
        // samples.jsonl holds every rank's rollouts, as one process writes them.
        let (sa, sb) = (try samples(one), try samples(two))
        XCTAssertEqual(sa.count, 3 * 12)
        XCTAssertEqual(sa.map { $0["tokens"] as! [Int] }, sb.map { $0["tokens"] as! [Int] })
        XCTAssertEqual(sa.map { $0["group"] as! Int }, sb.map { $0["group"] as! Int })
    }

    /// LaSeR: the class weights count every rank's finished rows, and the self-reward loss is the
    /// mean over every rank's rows of the mini-batch.
    func testTwoRanksTrainLaSeRAsOneProcess() throws {
        let stops = "[" + (0..<135).map(String.init).joined(separator: ",") + "]"
        let sets = ["credit.method=grpo", "laser.token=<unused260>", "laser.advantage_warmup_steps=1", "laser.advantage_std_min=0",
                    "rollout.stop_token_ids=\(stops)", "train.mini_batches=2", "laser.reference_constant=-5"]
        // A constant c: with the reference model, the first step's scores are 0 up to float noise,
        // the tiny model's rewards are all 0 (no policy gradient), and Adam would magnify that noise.
        let (one, two) = try oneAndTwoRanks { self.args($0, sets) }
        try assertSameRun(one, two, weights: "adapter_model.safetensors")
        let m = try metrics(two)
        XCTAssertTrue(m.allSatisfy { ($0["self_reward_loss"] ?? 0) > 0 }, "\(m)")
        XCTAssertNotNil(m[1]["groups_self_reward_mixed"])
    }

    /// AEPO: θ's median and the buckets' targets and α are over every rank's rollouts and groups.
    func testTwoRanksTrainAEPOAsOneProcess() throws {
        let sets = ["credit.method=grpo", "aepo.window=2", "aepo.triggers=[a, e, i, o, u, '1', '2']"]
        let (one, two) = try oneAndTwoRanks { self.args($0, sets) }
        try assertSameRun(one, two, weights: "adapter_model.safetensors")
        // (assertSameRun compares every metric, θ, the targets and α among them.)
        let b = try metrics(two)
        XCTAssertNotNil(b.first?["aepo_threshold"])
        XCTAssertEqual(b.map { $0["aepo_hard_prompts"] ?? 0 }.reduce(0, +) + b.map { $0["aepo_medium_prompts"] ?? 0 }.reduce(0, +)
                       + b.map { $0["aepo_easy_prompts"] ?? 0 }.reduce(0, +), 9)
    }

    /// GiGPO on FrozenLake: each rank plays its share of the episodes with the seeds one process gives them.
    func testTwoRanksTrainAnAgentAsOneProcess() throws {
        let (one, two) = try oneAndTwoRanks { self.args($0, ["model.path=tiny-random", "agent.context=512"], preset: "frozenlake-gigpo") }
        try assertSameRun(one, two, weights: "adapter_model.safetensors")
    }

    /// iStar on FrozenLake: the process reward model's pairs and update are over every rank's
    /// episodes. (Unnormalized: at the start π_φ = π_old, and `batch_max` would scale the float noise
    /// of β·q, which differs between one batch and two, to ±1.)
    func testTwoRanksTrainISTARAsOneProcess() throws {
        let (one, two) = try oneAndTwoRanks { self.args($0, ["model.path=tiny-random", "agent.context=512", "credit.method=istar", "istar.lr=0.05", "istar.normalize=none"], preset: "frozenlake-gigpo") }
        try assertSameRun(one, two, weights: "adapter_model.safetensors")
        XCTAssertNotNil(try metrics(two).first?["istar_turn_reward_scale"])
    }

    /// Two "machines" (two launchers with --nnodes 2 on loopback) train as one process.
    func testTwoNodesMeetAtNodeZerosStore() throws {
        let root = try temporary()
        let one = root.appendingPathComponent("one"), two = root.appendingPathComponent("two")
        let a = try tokenwise(args(one) + ["--threads", "1"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let port = String(Int.random(in: 30000...40000))
        let node1 = Process()
        node1.executableURL = binary
        node1.arguments = args(two) + ["--nproc", "1", "--nnodes", "2", "--node-rank", "1", "--master-addr", "127.0.0.1", "--master-port", port]
        node1.standardOutput = FileHandle.nullDevice
        node1.standardError = FileHandle.nullDevice
        try node1.run()
        let node0 = try tokenwise(args(two) + ["--nproc", "1", "--nnodes", "2", "--node-rank", "0", "--master-addr", "127.0.0.1", "--master-port", port])
        node1.waitUntilExit()
        XCTAssertEqual(node0.status, 0, node0.stderr)
        XCTAssertEqual(node1.terminationStatus, 0)
        try assertSameRun(one, two, weights: "adapter_model.safetensors")
    }

    /// The pid of rank `rank` among the children of `launcher`.
    func rankPid(_ rank: Int, of launcher: Int32) -> Int32? {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for p in procs.compactMap(Int32.init) {
            guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == launcher,
                  let env = FileManager.default.contents(atPath: "/proc/\(p)/environ") else { continue }
            if env.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "RANK=\(rank)" }) { return p }
        }
        return nil
    }

    func testAKilledRankStopsTheOtherWithAClearErrorAndTheRunResumes() throws {
        let dir = try temporary().appendingPathComponent("run")
        let p = Process()
        p.executableURL = binary
        p.arguments = args(dir, steps: 400, ["rollout.max_new_tokens=16"]) + ["--nproc", "2"]
        p.environment = ProcessInfo.processInfo.environment.merging(["TOKENWISE_DIST_TIMEOUT": "60"]) { $1 }
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        // Wait for a few complete steps, then kill rank 1 while it trains.
        let metrics = dir.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, ((try? String(contentsOf: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 3 { usleep(50_000) }
        guard let victim = rankPid(1, of: p.processIdentifier) else { p.terminate(); return XCTFail("rank 1 not found") }
        let killed = Date()
        kill(victim, SIGKILL)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(killed), 60, "the launcher took too long to stop")
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertTrue(stderr.contains("tokenwise train: rank 1 was killed by signal 9"), stderr)
        // Rank 0 says what failed (c10d's message), in its own prefixed lines.
        XCTAssertTrue(stderr.contains("[rank 0] Error: ") && stderr.contains("failed on rank 0"), stderr)
        let before = try self.metrics(dir).count
        XCTAssertGreaterThanOrEqual(before, 3)
        XCTAssertLessThan(before, 400)

        // Two ranks resume from the last complete checkpoint and finish (here: 6 steps in all).
        var config = try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)
        config = config.replacingOccurrences(of: "steps: 400", with: "steps: \(before + 3)")
        try config.write(to: dir.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        let resumed = try tokenwise(["train", "--resume", dir.path, "--nproc", "2", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let steps = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n").map {
            (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["step"] as! Int
        }
        XCTAssertEqual(steps, Array(1...(before + 3)))
    }

    func testBadLaunchesAreRefusedBeforeAnyRankStarts() throws {
        let dir = try temporary()
        let few = try tokenwise(args(dir.appendingPathComponent("a"), ["train.prompts_per_step=1"]) + ["--nproc", "2"])
        XCTAssertNotEqual(few.status, 0)
        XCTAssertTrue(few.stderr.contains("'train.prompts_per_step' (1) must be at least the number of ranks (2)"), few.stderr)
        XCTAssertFalse(few.stderr.contains("[rank"), "no rank was started: \(few.stderr)")
        let dynamic = try tokenwise(args(dir.appendingPathComponent("b"), ["train.dynamic_sampling=true"], preset: "aepo") + ["--nproc", "2"])
        XCTAssertTrue(dynamic.stderr.contains("config: 'aepo' shapes the rewards of the kept groups, which data-parallel dynamic sampling moves"), dynamic.stderr)
        let occupied = dir.appendingPathComponent("e")
        try FileManager.default.createDirectory(at: occupied, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: occupied.appendingPathComponent("notes.txt"))
        let busy = try tokenwise(args(occupied) + ["--nproc", "2"])
        XCTAssertTrue(busy.stderr.contains("the run folder exists and is not empty"), busy.stderr)
        XCTAssertFalse(busy.stderr.contains("[rank"), "no rank was started: \(busy.stderr)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: occupied.path), ["notes.txt"])
        let zero = try tokenwise(args(dir.appendingPathComponent("c")) + ["--nproc", "0"])
        XCTAssertTrue(zero.stderr.contains("--nproc and --nnodes must be at least 1"), zero.stderr)
        // A rank started by hand with half of torchrun's contract names the missing variable.
        let p = Process()
        p.executableURL = binary
        p.arguments = args(dir.appendingPathComponent("d"))
        p.environment = ProcessInfo.processInfo.environment.merging(["WORLD_SIZE": "2"]) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertTrue(text.contains("RANK is not set (WORLD_SIZE is"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a").path))
    }
}
