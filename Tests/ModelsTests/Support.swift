import Foundation
import XCTest
@testable import Models
@testable import Torch

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

func tempDir() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("tw-models-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}

func tinyConfig(_ family: ModelConfig.Family = .llama, vocab: Int = 270, tied: Bool = true) -> ModelConfig {
    ModelConfig(modelType: family, vocabSize: vocab, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2,
                numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 16, rmsNormEps: 1e-5, ropeTheta: 10_000,
                maxPositionEmbeddings: 128, tieWordEmbeddings: tied, bosTokenId: 258, eosTokenId: [257])
}

/// A byte-level BPE over all 256 bytes with a few merges and three added tokens (ids 256–258):
/// "h e" → he, "l l" → ll, "he ll" → hell, "hell o" → hello, "Ġ w" → Ġw, "o r" → or (ids 259–264).
func tinyTokenizer() throws -> Tokenizer {
    var tokens = Tokenizer.byteToChar.map { String($0) }
    tokens += ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    let merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r")]
    tokens += merges.map { $0.0 + $0.1 }
    while tokens.count < 270 { tokens.append("<unused\(tokens.count)>") }
    return try Tokenizer(tokens: tokens, merges: merges, added: ["<|im_start|>": 256, "<|im_end|>": 257, "<|endoftext|>": 258],
                         special: [256, 257, 258], pre: .gpt2, bosId: 258, eosIds: [257])
}

let chatMLTemplate = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are tiny.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

func tinyPretrained(_ family: ModelConfig.Family = .llama, tied: Bool = true, seed: UInt64 = 1) throws -> Pretrained {
    Pretrained(model: try CausalLM.random(config: tinyConfig(family, tied: tied), seed: seed), tokenizer: try tinyTokenizer(),
               chatTemplateText: chatMLTemplate, source: "tiny")
}

func logits(_ m: CausalLM, _ ids: [[Int]]) throws -> [Float] {
    try withTorchErrors {
        try withNoGrad {
            try m(Tensor(ids.flatMap { $0.map(Int64.init) }, shape: [ids.count, ids[0].count])).floats()
        }
    }
}

func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    return zip(a, b).map { Swift.abs($0 - $1) }.max() ?? 0
}

/// The default model, or nil when it is not installed (scripts/test.sh always installs it and sets
/// TOKENWISE_REQUIRE_DEFAULT_MODEL, so there its absence is a failure).
func defaultModel() throws -> Pretrained? {
    do {
        return try Pretrained.load("default")
    } catch let e as ModelError where e.message.contains("is not installed") {
        if ProcessInfo.processInfo.environment["TOKENWISE_REQUIRE_DEFAULT_MODEL"] != nil { throw e }
        return nil
    }
}
