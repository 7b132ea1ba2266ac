import XCTest
@testable import Models
@testable import Torch

/// `train.gradient_checkpointing`: the same loss and gradients as keeping every activation, on the
/// plain forward and on continuations of a shared prefix, with LoRA and with full fine-tuning.
final class GradientCheckpointTests: XCTestCase {
    /// Loss and gradients of every tensor in `wrt` with the model's checkpointing and fused
    /// logprobs set to `on`.
    func lossAndGrads(_ m: CausalLM, on: Bool, wrt: [Tensor], _ loss: () throws -> Tensor) throws -> (Float, [[Float]]) {
        m.gradientCheckpointing = on
        m.fusedLogprobs = on
        defer { m.gradientCheckpointing = false; m.fusedLogprobs = false }
        for t in wrt { t.grad = nil }
        let l = try loss()
        l.backward()
        return (try l.floats()[0], try wrt.map { try XCTUnwrap($0.grad, "no gradient").floats() })
    }

    func assertSame(_ a: (Float, [[Float]]), _ b: (Float, [[Float]]), _ what: String) {
        XCTAssertEqual(a.0, b.0, accuracy: 1e-5 * Swift.max(1, abs(b.0)), what)
        for (x, y) in zip(a.1, b.1) {
            let scale = Swift.max(1e-3, y.map(abs).max()!)
            XCTAssertLessThan(maxDiff(x, y) / scale, 1e-4, what)
            XCTAssertGreaterThan(y.map(abs).max()!, 1e-6, "\(what): a gradient that is zero tells nothing")
        }
    }

    func testCheckpointedLayersGiveTheSameLossAndLoRAGradients() throws {
        let m = try CausalLM.random(config: tinyConfig(), seed: 21)
        let lora = try LoRA(attachingTo: m, config: .init(rank: 4, alpha: 8), seed: 3)
        try withTorchErrors {
            withNoGrad { for ad in lora.adapters.values { ad.b.copy(from: Tensor.full(ad.b.shape, value: 0.05)) } }
            // Left padding in row 1: the mask and positions reach the recomputed layers too.
            let ids = Tensor([3, 9, 27, 5, 81, 4, 0, 0, 12, 7, 19, 2] as [Int64], shape: [2, 6])
            let mask = Tensor([1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1] as [Int64], shape: [2, 6])
            let weights = Tensor([0.3, -1, 0.5, 2, 0.1, 0, 0, 1, -0.2, 0.7] as [Float], shape: [2, 5])
            func loss() throws -> Tensor {
                let h = try m.hidden(ids.narrowed(dim: 1, start: 0, length: 5), attentionMask: mask.narrowed(dim: 1, start: 0, length: 5),
                                     positions: CausalLM.positions(fromMask: mask.narrowed(dim: 1, start: 0, length: 5)))
                let (lp, ent) = m.tokenLogprobs(hidden: h, targets: ids.narrowed(dim: 1, start: 1, length: 5), chunk: 2)
                return (lp * weights).sum() + (ent * weights).sum() * 0.1
            }
            let a = try lossAndGrads(m, on: true, wrt: lora.parameters, loss)
            let b = try lossAndGrads(m, on: false, wrt: lora.parameters, loss)
            assertSame(a, b, "LoRA, plain forward")
        }
    }

    func testCheckpointedContinuationsOfASharedPrefixGiveTheSameGradients() throws {
        let m = try CausalLM.random(config: tinyConfig(.qwen3), seed: 22)
        try withTorchErrors {
            // Full fine-tuning of two matrices: the weights themselves want gradients.
            let wrt = ["model.layers.0.self_attn.k_proj.weight", "model.layers.1.mlp.down_proj.weight"].map { m.weights[$0]! }
            for w in wrt { w.requiresGrad = true }
            let ids = Tensor([33, 4, 6, 1, 2, 0] as [Int64], shape: [2, 3]), probe = Tensor.randn([64], generator: try Generator(seed: 5))
            func loss() throws -> Tensor {
                let prefix = try m.sharedPrefix([[5, 9, 200, 17], [7, 8]]), leaves = prefix.leaves()
                let h = try m.hidden(ids, continuing: leaves, owner: [1, 0])
                (h * probe).sum().backward()          // into the leaves, then through the prompt pass
                prefix.backward(from: leaves)
                return try withNoGrad { (h * probe).sum() }.detached().requiringGrad()
            }
            func run(_ on: Bool) throws -> (Float, [[Float]]) {
                m.gradientCheckpointing = on
                defer { m.gradientCheckpointing = false }
                for w in wrt { w.grad = nil }
                let l = try loss()
                return (try l.floats()[0], try wrt.map { try XCTUnwrap($0.grad).floats() })
            }
            assertSame(try run(true), try run(false), "full fine-tuning, shared prefix")
        }
    }

    /// The checkpointed forward's values are the plain forward's; without autograd nothing is recorded.
    func testCheckpointingChangesNothingWithoutGradients() throws {
        let m = try CausalLM.random(config: tinyConfig(), seed: 23)
        _ = try LoRA(attachingTo: m, config: .init(rank: 4, alpha: 8), seed: 3)
        try withTorchErrors {
            let ids = Tensor([3, 9, 27, 5] as [Int64], shape: [1, 4])
            let plain = try m.hidden(ids).floats()
            m.gradientCheckpointing = true
            let h = try m.hidden(ids)
            // Rounding only: the checkpointed forward runs without autograd, where few rows take the small-batch kernel.
            XCTAssertLessThan(maxDiff(try h.floats(), plain), 1e-5)
            XCTAssertTrue(h.requiresGrad, "LoRA's B wants gradients, so the checkpointed output carries a graph")
            XCTAssertFalse(try withNoGrad { try m.hidden(ids) }.requiresGrad)
        }
    }
}

/// The shim's checkpoint node: errors of the body in either pass reach Swift, and the body is
/// released once no graph can rerun it.
final class CheckpointNodeTests: XCTestCase {
    final class Token {}

    func testBodyErrorsReachTheCallerInTheForwardAndTheBackward() throws {
        let w = Tensor([2, 3] as [Float]).requiringGrad()
        XCTAssertThrowsError(try withTorchErrors {
            _ = try Tensor.checkpoint(Tensor([1, 1] as [Float]), reading: [w]) { _ in throw TorchError("the body refused") }.floats()
        }) { XCTAssertEqual("\($0)", "the body refused") }
        var calls = 0
        let y = try withTorchErrors {
            Tensor.checkpoint(Tensor([1, 1] as [Float]), reading: [w]) { x in
                calls += 1
                if calls == 2 { throw TorchError("second run failed") }
                return x * w
            }
        }
        XCTAssertThrowsError(try withTorchErrors { y.sum().backward() }) { XCTAssertTrue("\($0)".contains("second run failed"), "\($0)") }
    }

    func testTheBodyIsReleasedAfterTheBackwardOrWithAnUnusedGraph() throws {
        let w = Tensor([2, 3] as [Float]).requiringGrad()
        weak var kept: Token?
        try withTorchErrors {
            let token = Token()
            kept = token
            let y = Tensor.checkpoint(Tensor([1, 4] as [Float]), reading: [w]) { x in withExtendedLifetime(token) { x * w * w } }
            XCTAssertNotNil(kept)
            y.sum().backward()
            XCTAssertEqual(try w.grad!.floats(), [4, 24])   // d/dw Σ x·w² = 2·x·w
        }
        XCTAssertNil(kept, "released after its backward")
        try withTorchErrors {
            let token = Token()
            kept = token
            _ = try Tensor.checkpoint(Tensor([1, 4] as [Float]), reading: [w]) { x in withExtendedLifetime(token) { x * w } }.floats()
        }
        XCTAssertNil(kept, "released with a graph never differentiated")
    }
}
