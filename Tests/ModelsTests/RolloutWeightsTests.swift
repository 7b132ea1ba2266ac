import XCTest
@testable import Models
@testable import Torch

final class RolloutWeightsTests: XCTestCase {
    /// A tiny model with LoRA adapters whose B is non-zero, so merging changes the weights.
    func adapted() throws -> CausalLM {
        let m = try CausalLM.random(config: tinyConfig(), seed: 3)
        let lora = try LoRA(attachingTo: m, config: .init(rank: 4, alpha: 8, targetModules: ["q_proj", "down_proj"]), seed: 1)
        let g = try Generator(seed: 9)
        try withTorchErrors { withNoGrad { for ad in lora.adapters.values { ad.b.copy(from: Tensor.randn(ad.b.shape, generator: g) * 0.05) } } }
        return m
    }

    let ids = [[5, 9, 72, 101, 33, 7], [260, 17, 4, 88, 200, 3]]

    /// The copy holds every matrix with LoRA merged, rounded to bf16 (or q·s for int8); its bytes
    /// are 2 (1 + 4/K) per weight; the model samples with it only inside `using`, and logits
    /// through it are close to the float32 model's but not equal.
    func testTheCopyIsTheMergedWeightsInLowPrecision() throws {
        let m = try adapted()
        let merged = m.lora!.merged(m.weights)
        let names = merged.keys.filter { merged[$0]!.rank == 2 }.sorted()
        XCTAssertTrue(names.contains("model.layers.0.self_attn.q_proj.weight") && names.contains("model.embed_tokens.weight"))
        let total = names.reduce(0) { $0 + merged[$1]!.count }, rows = names.reduce(0) { $0 + merged[$1]!.size(0) }
        let bf16 = try RolloutWeights(m, precision: .bf16), int8 = try RolloutWeights(m, precision: .int8)
        XCTAssertEqual(bf16.bytes, 2 * total)
        XCTAssertEqual(int8.bytes, total + 4 * rows)
        try withTorchErrors {
            for name in names {
                let w = merged[name]!
                XCTAssertEqual(try bf16.dequantized(name)!.floats(), try w.to(dtype: .bfloat16).to(dtype: .float32).floats(), name)
                let (q, s) = w.quantizedRowsInt8()
                XCTAssertEqual(try int8.dequantized(name)!.floats(), try (q.to(dtype: .float32) * s.unsqueezed(dim: 1)).floats(), name)
            }
        }
        let exact = try logits(m, ids)
        let viaBF16 = try m.using(bf16) { try logits(m, ids) }, viaInt8 = try m.using(int8) { try logits(m, ids) }
        for (name, low, tol) in [("bf16", viaBF16, Float(0.02)), ("int8", viaInt8, Float(0.05))] {
            let gap = zip(low, exact).map { abs($0 - $1) }.max()!
            XCTAssertGreaterThan(gap, 1e-6, "\(name) gave the float32 logits: the copy was not used")
            XCTAssertLessThan(gap, tol, name)
        }
        XCTAssertEqual(try logits(m, ids), exact, "outside `using` the model is float32 again")
    }

    /// Adapters kept apart (added in float32 on top of the copy's base matrices) give what the
    /// merged copy gives, to bf16 rounding; without the adapters the outputs are the base model's.
    func testAdaptersOnTopEqualTheMergedCopy() throws {
        let m = try adapted()
        let merged = try RolloutWeights(m, precision: .bf16), apart = try RolloutWeights(m, precision: .bf16, mergesLoRA: false)
        XCTAssertFalse(apart.mergesLoRA)
        let a = try m.using(merged) { try logits(m, ids) }, b = try m.using(apart) { try logits(m, ids) }
        XCTAssertLessThan(maxDiff(a, b), 0.02)
        let adapters = m.lora
        m.lora = nil
        let base = try m.using(apart) { try logits(m, ids) }
        m.lora = adapters
        XCTAssertGreaterThan(maxDiff(base, b), 1e-3, "the adapters change the outputs on top of the copy")
    }

    /// A refresh picks up changed adapters; fp32 and non-float32 models are refused.
    func testRefreshFollowsTheWeights() throws {
        let m = try adapted()
        let copy = try RolloutWeights(m, precision: .bf16)
        let before = try m.using(copy) { try logits(m, ids) }
        try withTorchErrors { withNoGrad { for ad in m.lora!.adapters.values { ad.b.mul_(-1) } } }
        XCTAssertEqual(try m.using(copy) { try logits(m, ids) }, before, "a stale copy until refreshed")
        try copy.refresh(from: m)
        let after = try m.using(copy) { try logits(m, ids) }
        XCTAssertGreaterThan(zip(after, before).map { abs($0 - $1) }.max()!, 1e-3)
        XCTAssertLessThan(zip(after, try logits(m, ids)).map { abs($0 - $1) }.max()!, 0.02)
        XCTAssertThrowsError(try RolloutWeights(m, precision: .fp32)) {
            XCTAssertEqual("\($0)", "rollout weights: fp32 needs no copy (the learner's weights are the rollout's)")
        }
        let half = try CausalLM.random(config: tinyConfig(), seed: 3, dtype: .bfloat16)
        XCTAssertThrowsError(try RolloutWeights(half, precision: .int8)) {
            XCTAssertEqual("\($0)", "rollout weights: the int8 copy is made from float32 weights; this model is bfloat16")
        }
    }

    /// On a GPU (TOKENWISE_GPU_TESTS set): the copy is made and used on CUDA through the same API,
    /// and its logits match the CPU copy's (both round to bf16 the same way).
    func testTheCopyOnCUDA() throws {
        guard ProcessInfo.processInfo.environment["TOKENWISE_GPU_TESTS"] != nil else { throw XCTSkip("set TOKENWISE_GPU_TESTS on a GPU machine") }
        let cpu = try adapted(), gpu = try adapted()
        gpu.to(.cuda(0))
        for precision in [WeightPrecision.bf16, .int8] {
            let a = try RolloutWeights(cpu, precision: precision), b = try RolloutWeights(gpu, precision: precision)
            let x = try cpu.using(a) { try logits(cpu, ids) }
            let y: [Float] = try withTorchErrors {
                try withNoGrad {
                    try gpu.using(b) { try gpu(Tensor(ids.flatMap { $0.map(Int64.init) }, shape: [ids.count, ids[0].count]).to(.cuda(0))).to(.cpu).floats() }
                }
            }
            XCTAssertLessThan(maxDiff(x, y), 1e-3, "\(precision)")
        }
    }
}
