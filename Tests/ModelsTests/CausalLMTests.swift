import Foundation
import XCTest
@testable import Models
@testable import Torch

final class CausalLMTests: XCTestCase {
    func testConfigJSONAndValidation() throws {
        let json = #"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":49152,"hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,"num_attention_heads":9,"num_key_value_heads":3,"rms_norm_eps":1e-05,"rope_theta":100000,"max_position_embeddings":8192,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2,"hidden_act":"silu","rope_scaling":null,"torch_dtype":"bfloat16"}"#
        let c = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
        XCTAssertEqual(c.headDim, 64)
        XCTAssertEqual(c.eosTokenId, [2])
        XCTAssertFalse(c.qkvBias)
        let back = try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(c))
        XCTAssertEqual(back, c)
        func error(_ edit: (inout [String: Any]) -> Void) -> String {
            var obj = try! JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
            edit(&obj)
            do { _ = try JSONDecoder().decode(ModelConfig.self, from: JSONSerialization.data(withJSONObject: obj)); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error { $0["model_type"] = "gpt2" }, "config.json: model_type 'gpt2' is not supported (supported: llama, qwen2, qwen3)")
        XCTAssertEqual(error { $0["hidden_size"] = nil }, "config.json: missing 'hidden_size'")
        XCTAssertEqual(error { $0["num_key_value_heads"] = 4 }, "config.json: num_attention_heads (9) must be a multiple of num_key_value_heads (4)")
        XCTAssertEqual(error { $0["rope_scaling"] = ["type": "llama3"] }, "config.json: rope_scaling is not supported yet (only plain RoPE)")
        XCTAssertEqual(error { $0["hidden_act"] = "gelu" }, "config.json: hidden_act 'gelu' is not supported (only silu)")
        // Qwen2 has q/k/v biases; Qwen3 q/k norms.
        XCTAssertNotNil(tinyConfig(.qwen2).expectedWeights["model.layers.0.self_attn.q_proj.bias"])
        XCTAssertNotNil(tinyConfig(.qwen3).expectedWeights["model.layers.1.self_attn.k_norm.weight"])
        XCTAssertNotNil(tinyConfig(tied: false).expectedWeights["lm_head.weight"])
    }

    func testWeightsAreCheckedAgainstTheConfig() throws {
        let m = try CausalLM.random(config: tinyConfig())
        var w = m.weights
        w["model.norm.weight"] = nil
        XCTAssertThrowsError(try CausalLM(config: tinyConfig(), weights: w, source: "x")) { XCTAssertEqual("\($0)", "x: missing weight 'model.norm.weight' (shape [64])") }
        w = m.weights
        w["model.layers.0.extra.weight"] = w["model.norm.weight"]
        XCTAssertThrowsError(try CausalLM(config: tinyConfig(), weights: w, source: "x")) {
            XCTAssertEqual("\($0)", "x: unused weight 'model.layers.0.extra.weight' (not part of a llama model with this config)")
        }
        w = m.weights
        w["model.layers.1.mlp.up_proj.weight"] = try withTorchErrors { Tensor.zeros([64, 64]) }
        XCTAssertThrowsError(try CausalLM(config: tinyConfig(), weights: w, source: "x")) {
            XCTAssertEqual("\($0)", "x: weight 'model.layers.1.mlp.up_proj.weight' has shape [64, 64] but config.json implies [128, 64]")
        }
    }

    func testForwardIsCausalAndEveryFamilyRuns() throws {
        for family in ModelConfig.Family.allCases {
            let m = try CausalLM.random(config: tinyConfig(family), seed: 3)
            let full = try logits(m, [[5, 9, 200, 17, 33]])
            XCTAssertEqual(full.count, 5 * 270)
            XCTAssertTrue(full.allSatisfy(\.isFinite))
            // The first three positions do not see the later tokens.
            let prefix = try logits(m, [[5, 9, 200]])
            XCTAssertLessThan(maxDiff(Array(full.prefix(3 * 270)), prefix), 1e-5, "\(family)")
            let changed = try logits(m, [[5, 9, 200, 99, 1]])
            XCTAssertLessThan(maxDiff(Array(changed.prefix(3 * 270)), prefix), 1e-5)
            XCTAssertGreaterThan(maxDiff(Array(changed.suffix(2 * 270)), Array(full.suffix(2 * 270))), 1e-4)
        }
    }

    /// Without autograd a few rows go through the small-batch kernel; logits equal the autograd path.
    func testInferenceKernelMatchesTheTrainingPath() throws {
        let m = try CausalLM.random(config: tinyConfig(.qwen2), seed: 8)
        try withTorchErrors {
            let ids = Tensor([5, 9, 200, 17, 33, 1] as [Int64], shape: [2, 3])
            let training = try m(ids).floats()
            let inference = try withNoGrad { try m(ids).floats() }
            XCTAssertLessThan(maxDiff(training, inference), 1e-5)
        }
    }

    /// Prefill + step-by-step decoding with the KV cache gives the logits of one full forward pass.
    func testKVCacheMatchesAFullForward() throws {
        let m = try CausalLM.random(config: tinyConfig(.qwen3), seed: 4)
        let ids: [Int64] = [3, 141, 59, 26, 5, 35, 89, 79]
        try withTorchErrors {
            try withNoGrad {
                let full = try m(Tensor(ids, shape: [1, 8])).floats()
                let cache = KVCache(config: m.config, batch: 1, capacity: 8)
                var steps = try m(Tensor(Array(ids.prefix(5)), shape: [1, 5]), cache: cache).floats()
                for k in 5..<8 { steps += try m(Tensor([ids[k]], shape: [1, 1]), cache: cache).floats() }
                XCTAssertEqual(cache.length, 8)
                XCTAssertLessThan(maxDiff(full, steps), 1e-5)
                XCTAssertThrowsError(try m(Tensor([Int64(1)], shape: [1, 1]), cache: cache).floats()) {
                    XCTAssertEqual("\($0)", "KV cache holds 8 positions; 8 used and 1 more requested")
                }
            }
        }
    }

    /// Keeping cache rows: moving the last rows into freed slots copies in place and shrinks the
    /// buffers; any other order gathers. Both leave each kept row's keys and values intact.
    func testKVCacheKeepsRowsInPlaceOrByGathering() throws {
        try withTorchErrors {
            for order in [[0, 4, 2], [3, 1], [2, 0], [1, 1, 0]] {
                let cache = KVCache(config: tinyConfig(), batch: 5, capacity: 3)
                let rows = (0..<5).map { Tensor.full([2, 3, 16], value: Double($0)) }
                for l in 0..<2 { cache.keys[l].copy(from: Tensor.stack(rows)); cache.values[l].copy(from: Tensor.stack(rows) * -1) }
                cache.keep(rows: order)
                XCTAssertEqual(cache.keys[1].shape, [order.count, 2, 3, 16])
                for (i, r) in order.enumerated() {
                    XCTAssertEqual(Set(try cache.keys[1][i].floats()), [Float(r)], "\(order)")
                    XCTAssertEqual(Set(try cache.values[0][i].floats()), [Float(-r)], "\(order)")
                }
            }
        }
    }

    /// Continuations attending to a shared prefix (prompts of different lengths, so one is left-padded)
    /// give the hidden states of running each prompt + continuation alone, and the same gradients.
    func testSharedPrefixMatchesFullForwardsWithGradients() throws {
        for family in [ModelConfig.Family.llama, .qwen3] {
            let m = try CausalLM.random(config: tinyConfig(family), seed: 12)
            let prompts = [[5, 9, 200, 17], [7, 8]]
            let continuations = [[33, 4, 6], [1, 2, 0], [99, 0, 0]], lengths = [3, 2, 1], owner = [0, 1, 0]
            try withTorchErrors {
                let weight = m.weights["model.layers.0.self_attn.k_proj.weight"]!
                weight.requiresGrad = true
                let probe = Tensor.randn([64], generator: try Generator(seed: 2))
                // Alone: row n is prompt + continuation; keep the last prompt position and the continuation's.
                var alone = [Float](), total = Tensor.zeros([])
                for n in 0..<3 {
                    let p = prompts[owner[n]], row = p + continuations[n].prefix(lengths[n])
                    let h = try m.hidden(Tensor(row.map(Int64.init), shape: [1, row.count]))
                        .narrowed(dim: 1, start: p.count - 1, length: lengths[n] + 1)
                    alone += try h.floats()
                    total = total + (h * probe).sum()
                }
                total.backward()
                let gradAlone = try weight.grad!.floats()
                weight.grad = nil
                let prefix = try m.sharedPrefix(prompts)
                XCTAssertEqual(prefix.lengths, [4, 2])
                let ids = Tensor(continuations.flatMap { $0.map(Int64.init) }, shape: [3, 3])
                let h = Tensor.cat([prefix.last.indexSelect(dim: 0, index: Tensor(owner.map(Int64.init))).unsqueezed(dim: 1),
                                    try m.hidden(ids, continuing: prefix, owner: owner)], dim: 1)           // [3, 4, 64]
                var shared = [Float](), sum = Tensor.zeros([])
                for n in 0..<3 {
                    let real = h[n].narrowed(dim: 0, start: 0, length: lengths[n] + 1)
                    shared += try real.floats()
                    sum = sum + (real * probe).sum()
                }
                sum.backward()
                XCTAssertLessThan(maxDiff(shared, alone), 1e-5, "\(family)")
                let gradShared = try weight.grad!.floats()
                XCTAssertLessThan(maxDiff(gradShared, gradAlone), 1e-5 * Swift.max(1, gradAlone.map(abs).max()!), "\(family)")
                XCTAssertGreaterThan(gradAlone.map(abs).max()!, 1e-4)   // the prompt's keys do get gradient
                XCTAssertThrowsError(try m.hidden(ids, continuing: prefix, owner: [0, 2, 0])) {
                    XCTAssertEqual("\($0)", "3 continuations need 3 owners among 2 prefixes; got [0, 2, 0]")
                }
                XCTAssertThrowsError(try m.sharedPrefix([[1], []])) { XCTAssertEqual("\($0)", "a shared prefix needs one or more prompts, none of them empty") }
            }
        }
    }

    /// A left-padded batch gives each row the logits it has alone.
    func testPaddingAndPositions() throws {
        let m = try CausalLM.random(config: tinyConfig(), seed: 5)
        let alone = try logits(m, [[7, 8, 9]])
        try withTorchErrors {
            try withNoGrad {
                let ids = Tensor([0, 0, 7, 8, 9, 10, 11, 12, 13, 14] as [Int64], shape: [2, 5])
                let mask = Tensor([0, 0, 1, 1, 1, 1, 1, 1, 1, 1] as [Int64], shape: [2, 5])
                let out = try m(ids, attentionMask: mask, positions: CausalLM.positions(fromMask: mask)).floats()
                XCTAssertLessThan(maxDiff(Array(out[(2 * 270)..<(5 * 270)]), alone), 1e-5)
                XCTAssertTrue(out.allSatisfy(\.isFinite))   // padded rows attend to themselves: no NaN
                let full = try logits(m, [[10, 11, 12, 13, 14]])
                XCTAssertLessThan(maxDiff(Array(out[(5 * 270)...]), full), 1e-5)
                XCTAssertThrowsError(try m(ids, attentionMask: Tensor.ones([2, 4], dtype: .int64)).floats()) {
                    XCTAssertEqual("\($0)", "attention mask has shape [2, 4] but [2, 5] is needed (past 0 + 5 new tokens)")
                }
            }
        }
    }

    func testTokenLogprobsChunkedEqualsFullSoftmax() throws {
        let m = try CausalLM.random(config: tinyConfig(), seed: 6)
        try withTorchErrors {
            try withNoGrad {
                let ids = Tensor([1, 2, 3, 4, 5, 6, 7] as [Int64], shape: [1, 7])
                let input = ids.narrowed(dim: 1, start: 0, length: 6), targets = ids.narrowed(dim: 1, start: 1, length: 6)
                let h = try m.hidden(input)
                let full = try m(input).to(dtype: .float32).logSoftmax(dim: -1)
                let expected = full.gather(dim: -1, index: targets.unsqueezed(dim: -1)).squeezed(dim: -1)
                let expectedEnt = -(full.exp() * full).sum(dim: -1)
                for fused in [true, false] {
                    m.fusedLogprobs = fused
                    let (lp, ent) = m.tokenLogprobs(hidden: h, targets: targets)
                    let (lp2, ent2) = m.tokenLogprobs(hidden: h, targets: targets, chunk: 4)
                    XCTAssertLessThan(maxDiff(try lp.floats(), try lp2.floats()), 1e-6)
                    XCTAssertLessThan(maxDiff(try ent.floats(), try ent2.floats()), 1e-6)
                    XCTAssertLessThan(maxDiff(try lp.floats(), try expected.floats()), 1e-5, "fused \(fused)")
                    XCTAssertLessThan(maxDiff(try ent.floats(), try expectedEnt.floats()), 1e-5, "fused \(fused)")
                    XCTAssertEqual(lp.dtype, .float32)
                }
            }
        }
    }

    func testGreedyGenerationIsDeterministicAndStops() throws {
        let m = try CausalLM.random(config: tinyConfig(), seed: 7)
        let a = try m.generate(prompt: [1, 2, 3], maxNewTokens: 6)
        XCTAssertEqual(a, try m.generate(prompt: [1, 2, 3], maxNewTokens: 6))
        XCTAssertEqual(a.count, 6)
        // Greedy with the cache equals argmax of a full forward at each step.
        var seq = [1, 2, 3]
        for _ in 0..<6 {
            let l = try logits(m, [seq])
            let last = Array(l.suffix(270))
            seq.append(last.indices.max { last[$0] < last[$1] }!)
        }
        XCTAssertEqual(Array(seq.suffix(6)), a)
        XCTAssertEqual(try m.generate(prompt: [1, 2, 3], maxNewTokens: 6, stop: [a[0]]), [a[0]])
        XCTAssertEqual(try m.generate(prompt: [1, 2, 3], maxNewTokens: 6, stop: [269]).count, a.contains(269) ? a.firstIndex(of: 269)! + 1 : 6)
        let g1 = try Generator(seed: 9), g2 = try Generator(seed: 9)
        XCTAssertEqual(try m.generate(prompt: [4], maxNewTokens: 5, temperature: 1, generator: g1),
                       try m.generate(prompt: [4], maxNewTokens: 5, temperature: 1, generator: g2))
        // NaN weights: greedy decoding picked id 0 every step and printed NUL bytes; now an error.
        try m.setWeight("model.norm.weight", try withTorchErrors { Tensor.full([64], value: .nan) })
        XCTAssertThrowsError(try m.generate(prompt: [1, 2, 3], maxNewTokens: 6)) {
            XCTAssertEqual("\($0)", "generate: the model's logits are not finite at new token 1 (its weights hold NaN or inf)")
        }
    }
}
