import Foundation
import Models
import Rewards
import Rollout
import XCTest
@testable import Training

/// A 0/1 `correct` term that passes about a quarter of random responses: the byte sum mod 4 is 0.
struct QuarterReward: RewardFunction {
    var name: String { "correct" }
    func score(_ input: RewardInput) -> RewardScore {
        let pass = input.response.utf8.reduce(0) { $0 + Int($1) } % 4 == 0
        return RewardScore(value: pass ? 1 : 0, components: ["correct": pass ? 1 : 0])
    }
}

/// DARS: the schedules' counts (the official arithmetic), the second stage's samples, which groups
/// it keeps, and the configs it refuses.
final class DARSTests: XCTestCase {
    /// yangzhch6/DARS @9b21b71 `schedule_ET` / `schedule_HW` (std off): for N = 8, 0…4 correct.
    /// By hand for one correct: p = 1/8, S = 7/32; ET ⌈(4 − 8·7/32)/(7/32)⌉ = ⌈10.29⌉ = 11,
    /// HW ⌈(2·(7/8)·4 − 1.75)/(7/32)⌉ = ⌈24⌉ = 24; none correct counts p = 1/16 and hits the caps.
    func testTheSchedulesCountsAsTheOfficialCode() {
        let et = DARSConfig(schedule: .et), hw = DARSConfig(schedule: .hw)
        XCTAssertEqual((0...5).map { et.extra(correct: $0, of: 8) }, [24, 11, 3, 1, 0, 0])
        XCTAssertEqual((0...5).map { hw.extra(correct: $0, of: 8) }, [56, 24, 8, 3, 0, 0])
        XCTAssertEqual((0...8).map { et.extra(correct: $0, of: 16) }, [16, 16, 16, 11, 6, 3, 2, 1, 0])
        XCTAssertEqual((0...8).map { hw.extra(correct: $0, of: 16) }, [48, 48, 48, 27, 16, 10, 6, 3, 0])
        XCTAssertEqual(DARSConfig(schedule: .et, nMax: 10).extra(correct: 0, of: 8), 2)
    }

    func collect(_ dars: DARSConfig?) throws -> StepRollouts {
        let (m, tok) = try tiny()
        let sampler = Sampler(model: m, tokenizer: tok)
        let plan = StepRollouts.Plan(source: FlatRollouts(sampler: sampler, n: 4), tokenizer: tok, reward: QuarterReward(),
                                     dynamicSampling: false, maxRefills: 0, dars: dars)
        let samples = (0..<6).map { TaskSample(prompt: "prompt \($0)", answer: nil) }
        return try StepRollouts.collect(samples, plan, sampling: SamplingConfig(temperature: 1, maxNewTokens: 6, seed: 5),
                                        schedule: ConstantTemperature(), more: nil)
    }

    func testThePromptsBelowHalfGetTheirExtraSamplesAndAgreeingGroupsAreDropped() throws {
        let plain = try collect(nil), r = try collect(DARSConfig(schedule: .hw, nMax: 16))
        var extra = 0
        for p in 0..<6 {
            let first = Array(r.rolloutsOf[p].prefix(4))
            // The first stage is the plain one; the extra samples come after it.
            XCTAssertEqual(first.map { r.rolled[$0].completion.tokens }, plain.rolloutsOf[p].map { plain.rolled[$0].completion.tokens })
            let correct = try first.filter { try r.passed($0) }.count
            let added = DARSConfig(schedule: .hw, nMax: 16).extra(correct: correct, of: 4)
            XCTAssertEqual(r.rolloutsOf[p].count, 4 + added, "prompt \(p), \(correct) of 4 correct")
            extra += added
            let all = try r.rolloutsOf[p].filter { try r.passed($0) }.count
            XCTAssertEqual(r.kept.contains(p), all > 0 && all < r.rolloutsOf[p].count, "prompt \(p)")
        }
        XCTAssertGreaterThan(extra, 0)
        XCTAssertEqual(r.metrics["dars_extra_rollouts"], Double(extra))
        // The extra samples are new ones, not copies of the first.
        let p = try XCTUnwrap((0..<6).first { r.rolloutsOf[$0].count > 5 })
        XCTAssertGreaterThan(Set(r.rolloutsOf[p].map { r.rolled[$0].completion.tokens }).count, 4)
    }

    func testAStepTrainsOnTheMergedGroups() throws {
        let cfg = tinyTrainerConfig { $0.train.dars = DARSConfig(schedule: .et, nMax: 12); $0.credit = .grpo(.init(stdNormalize: false)) }
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: QuarterReward(), config: cfg)
        let metrics = try t.step((0..<4).map { TaskSample(prompt: "q\($0)", answer: nil) })
        XCTAssertTrue(metrics["loss"]?.isFinite ?? false, "\(metrics)")
        // The trained groups are the merged ones: some hold more rows than the first stage's 4.
        let sizes = Dictionary(grouping: t.lastRecords, by: \.group).values.map(\.count)
        XCTAssertEqual(sizes.count, Int(metrics["groups_kept"]!))
        XCTAssertGreaterThan(sizes.max() ?? 0, cfg.train.samplesPerPrompt, "\(sizes)")
    }

    /// From YAML on the tiny preset: the untrained model fails every prompt, so each gets the cap's samples.
    func testARunFromYAMLDrawsTheExtraSamples() throws {
        let c = try RunConfig.load(yaml: """
            train: {steps: 2, dars: {schedule: et, n_max: 12}}
            credit: {method: grpo, params: {std_normalize: false}}
            eval: {before: false, after: false}
            output: {checkpoint_every: 0, report: false, save_model: false}
            """, base: Preset.tiny.config)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-dars-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        let metrics = JSONLines.read(dir.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(metrics.count, 2)
        for m in metrics {
            let sampled = (m["groups_sampled"] as? NSNumber)?.doubleValue ?? 0, extra = (m["dars_extra_rollouts"] as? NSNumber)?.doubleValue ?? 0
            XCTAssertEqual(sampled, 2)
            XCTAssertGreaterThan(extra, 0, "\(m)")
            XCTAssertEqual(((m["rollout_tokens"] as? NSNumber)?.doubleValue ?? 0) / ((m["response_length"] as? NSNumber)?.doubleValue ?? 1), 2 * 4 + extra, accuracy: 1e-6)
        }
        XCTAssertEqual(try RunConfig.load(yaml: try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)).train.dars, DARSConfig(schedule: .et, nMax: 12))
    }

    func testConfigsDARSCannotServeAreRefused() throws {
        let cases: [(String, (inout RunConfig) -> Void)] = [
            ("use one of the two", { $0.train.dynamicSampling = true }),
            ("'train.dars.n_max' (8) must exceed train.samples_per_prompt (8)", { $0.train.dars?.nMax = 8 }),
            ("it does not apply to tree rollouts", { $0.credit = .init(method: .spoTree) }),
            ("it does not apply to objective 'sft'", { $0.sft = .init() }),
        ]
        for (message, edit) in cases {
            var c = RunConfig()
            c.train.dars = DARSConfig()
            edit(&c)
            XCTAssertThrowsError(try c.validate(), message) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        var c = RunConfig()
        c.train.dars = DARSConfig()
        XCTAssertNoThrow(try c.validateDataParallel(2, device: .cpu), "DARS runs data-parallel (DistributedCLITests)")
        // From YAML, with the schedule's choices named.
        XCTAssertEqual(try RunConfig.load(yaml: "train: {dars: {schedule: hw}}").train.dars, DARSConfig(schedule: .hw))
        XCTAssertThrowsError(try RunConfig.load(yaml: "train: {dars: {schedule: xx}}")) { XCTAssertTrue("\($0)".contains("expected one of et, hw"), "\($0)") }
        XCTAssertThrowsError(try RunConfig.load(yaml: "train: {dars: {nmax: 3}}")) { XCTAssertTrue("\($0)".contains("unknown key 'train.dars.nmax'"), "\($0)") }
    }
}
