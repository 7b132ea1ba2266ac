import Foundation
import XCTest
@testable import Models
@testable import Torch

/// Integration tests on the embedded SmolLM2-135M-Instruct (Q4_1 GGUF), kept short.
final class DefaultModelTests: XCTestCase {
    // Loaded once for the suite (XCTest runs these serially).
    nonisolated(unsafe) static var cached: Pretrained??

    func model() throws -> Pretrained {
        if Self.cached == nil { Self.cached = .some(try defaultModel()) }
        guard case .some(.some(let p)) = Self.cached else { throw XCTSkip("default model not installed (scripts/setup.sh model)") }
        return p
    }

    /// Token ids equal Hugging Face `tokenizers` on a varied corpus, and decode(encode(x)) == x.
    func testTokenizerMatchesHuggingFace() throws {
        let p = try model()
        let rows = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("smollm_tokenizer.json"))) as! [[String: Any]]
        XCTAssertEqual(rows.count, 13)
        for row in rows {
            let text = row["text"] as! String
            XCTAssertEqual(p.tokenizer.encode(text), row["ids"] as! [Int], text)
            XCTAssertEqual(p.tokenizer.decode(p.tokenizer.encode(text)), text)
        }
    }

    /// Per-token logprobs equal a float64 numpy reference on the same dequantised weights (1e-4).
    func testLogprobsMatchTheReference() throws {
        let p = try model()
        let ref = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("smollm_logprobs.json"))) as! [String: Any]
        let ids = p.tokenizer.encode(ref["text"] as! String)
        XCTAssertEqual(ids, ref["tokens"] as! [Int])
        let (lp, ent): ([Float], [Float]) = try withTorchErrors {
            try withNoGrad {
                let t = Tensor(ids.map(Int64.init), shape: [1, ids.count])
                let h = try p.model.hidden(t.narrowed(dim: 1, start: 0, length: ids.count - 1))
                let (l, e) = p.model.tokenLogprobs(hidden: h, targets: t.narrowed(dim: 1, start: 1, length: ids.count - 1), chunk: 8)
                return (try l.floats(), try e.floats())
            }
        }
        XCTAssertLessThan(maxDiff(lp, (ref["logprobs"] as! [Double]).map(Float.init)), 1e-4)
        XCTAssertLessThan(maxDiff(ent, (ref["entropies"] as! [Double]).map(Float.init)), 1e-4)
    }

    func testGreedyAnswerAndCachedDecodingAgree() throws {
        let p = try model()
        XCTAssertEqual(p.model.config.numHiddenLayers, 30)
        let prompt = try p.chatTemplate().render([ChatMessage(role: "user", content: "What is the capital of France?")], addGenerationPrompt: true)
        let ids = p.tokenizer.encode(prompt)
        let out = try p.model.generate(prompt: ids, maxNewTokens: 8, stop: Set(p.tokenizer.eosIds))
        XCTAssertTrue(p.tokenizer.decode(out).hasPrefix("The capital of France is Paris"), p.tokenizer.decode(out))
        // The same tokens by argmax over a full forward pass without a cache.
        let full = try logits(p.model, [ids + Array(out.prefix(3))])
        let v = p.model.config.vocabSize
        for k in 0..<3 {
            let row = Array(full[((ids.count - 1 + k) * v)..<((ids.count + k) * v)])
            XCTAssertEqual(row.indices.max { row[$0] < row[$1] }, out[k])
        }
    }
}
