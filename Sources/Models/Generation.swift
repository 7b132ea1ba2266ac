import Torch

extension CausalLM {
    /// Generates up to `maxNewTokens` after `prompt` (token ids), one sequence: the prompt is
    /// prefilled once, then each token is decoded with the KV cache. Greedy when `temperature` is 0,
    /// else sampled from softmax(logits / temperature) with `generator`. Stops after a `stop` id.
    /// `onToken` sees every new id as it is produced (for streaming).
    public func generate(prompt: [Int], maxNewTokens: Int, temperature: Double = 0, generator: Generator? = nil,
                         stop: Set<Int> = [], onToken: (Int) -> Void = { _ in }) throws -> [Int] {
        guard !prompt.isEmpty else { throw ModelError("generate: the prompt is empty") }
        guard temperature >= 0, temperature.isFinite else { throw ModelError("generate: temperature must be >= 0 and finite, got \(temperature)") }
        guard maxNewTokens > 0, maxNewTokens <= config.maxPositionEmbeddings - prompt.count else {
            throw ModelError("generate: the prompt (\(prompt.count) tokens) + max new tokens (\(maxNewTokens)) exceeds the model's context (\(config.maxPositionEmbeddings))")
        }
        let cache = KVCache(config: config, batch: 1, capacity: prompt.count + maxNewTokens, dtype: dtype, device: device)
        var out = [Int]()
        try withTorchErrors {
            try withNoGrad {
                var input = Tensor(prompt.map(Int64.init), shape: [1, prompt.count]).to(device)
                for _ in 0..<maxNewTokens {
                    let logits = try self(input, cache: cache)                       // [1, T, V]
                    let last = logits.select(dim: 1, index: logits.size(1) - 1).to(dtype: .float32)   // [1, V]
                    // NaN logits made greedy decoding pick id 0 forever (NUL bytes) and exit 0.
                    guard try last.abs().amax().item().isFinite else {
                        throw ModelError("generate: the model's logits are not finite at new token \(out.count + 1) (its weights hold NaN or inf)")
                    }
                    let next: Tensor = temperature == 0
                        ? last.argmax(dim: -1)
                        : (last / temperature).softmax(dim: -1).multinomial(numSamples: 1, generator: generator).squeezed(dim: -1)
                    let id = Int(try next.item())
                    out.append(id)
                    onToken(id)
                    if stop.contains(id) { break }
                    input = Tensor([Int64(id)], shape: [1, 1]).to(device)
                }
            }
        }
        return out
    }
}
