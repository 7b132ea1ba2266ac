import Foundation
import Torch

/// LoRA — "LoRA: Low-Rank Adaptation of Large Language Models" (arXiv:2106.09685), as PEFT:
/// y = W x + (alpha / r) · B A dropout(x), with A [r, in] (Kaiming-uniform-like init), B [out, r]
/// (zeros), so a fresh adapter leaves the model unchanged. The base weights stay frozen.
public final class LoRA {
    public struct Config: Codable, Equatable, Sendable {
        public var rank = 8
        public var alpha = 16.0
        public var dropout = 0.0
        /// Linear layers to adapt, by the last part of their name (PEFT's target_modules).
        public var targetModules = ["q_proj", "k_proj", "v_proj", "o_proj"]

        public init(rank: Int = 8, alpha: Double = 16, dropout: Double = 0, targetModules: [String] = ["q_proj", "k_proj", "v_proj", "o_proj"]) {
            self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targetModules = targetModules
        }

        enum CodingKeys: String, CodingKey { case rank = "r", alpha = "lora_alpha", dropout = "lora_dropout", targetModules = "target_modules" }

        /// A key left out takes its default (`critic.lora: {r: 8}` has no defaults underneath to merge with).
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Config()
            rank = try c.decodeIfPresent(Int.self, forKey: .rank) ?? d.rank
            alpha = try c.decodeIfPresent(Double.self, forKey: .alpha) ?? d.alpha
            dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? d.dropout
            targetModules = try c.decodeIfPresent([String].self, forKey: .targetModules) ?? d.targetModules
        }
    }

    public final class Adapter {
        public var a: Tensor   // [r, in]
        public var b: Tensor   // [out, r]
        let dropout: Double
        var generator: Generator?

        init(a: Tensor, b: Tensor, dropout: Double, generator: Generator?) {
            self.a = a; self.b = b; self.dropout = dropout; self.generator = generator
        }

        func callAsFunction(_ x: Tensor, _ scale: Double) -> Tensor {
            var input = x
            if dropout > 0, Torch.isGradEnabled, let generator {
                let keep = Tensor.full(x.shape, value: 1 - dropout, dtype: x.dtype, device: x.device).bernoulli(generator: generator)
                input = x * keep / (1 - dropout)
            }
            return input.linear(weight: a).linear(weight: b) * scale
        }
    }

    public let config: Config
    public private(set) var adapters: [String: Adapter]
    public var scale: Double { config.alpha / Double(config.rank) }

    /// Attaches fresh adapters to every targeted linear layer of `model` and to the model.
    @discardableResult
    public init(attachingTo model: CausalLM, config: Config, seed: UInt64 = 0) throws {
        guard config.rank > 0, config.rank <= 65536 else { throw ModelError("lora: 'r' must be 1…65536, got \(config.rank)") }
        guard config.alpha > 0, config.alpha <= 1e6 else { throw ModelError("lora: 'lora_alpha' must be in (0, 1e6], got \(config.alpha)") }
        guard (0..<1).contains(config.dropout) else { throw ModelError("lora: 'lora_dropout' must be in [0, 1), got \(config.dropout)") }
        let names = model.weights.keys.filter { $0.hasSuffix(".weight") }.map { String($0.dropLast(7)) }
            .filter { n in config.targetModules.contains { n.hasSuffix("." + $0) } && model.weights[n + ".weight"]!.rank == 2 }
        guard !names.isEmpty else {
            throw ModelError("lora: no linear layer matches target_modules \(config.targetModules)")
        }
        let g = try Generator(seed: seed)
        var adapters: [String: Adapter] = [:]
        try withTorchErrors {
            for name in names.sorted() {
                let w = model.weights[name + ".weight"]!
                let (out, inp) = (w.size(0), w.size(1))
                let bound = 1 / Double(inp).squareRoot()   // kaiming_uniform(a=√5) on [r, in]
                let a = ((Tensor.rand([config.rank, inp], generator: g) * 2 - 1) * bound).to(w.device, dtype: w.dtype).requiringGrad()
                let b = Tensor.zeros([out, config.rank], dtype: w.dtype, device: w.device).requiringGrad()
                adapters[name] = Adapter(a: a, b: b, dropout: config.dropout, generator: config.dropout > 0 ? g : nil)
            }
        }
        self.config = config
        self.adapters = adapters
        model.lora = self
    }

    /// The adapter weights (what LoRA training updates), in a stable order.
    public var parameters: [Tensor] { adapters.keys.sorted().flatMap { [adapters[$0]!.a, adapters[$0]!.b] } }

    func to(_ device: Device?, dtype: DType?) {
        for a in adapters.values {
            a.a = a.a.to(device, dtype: dtype).detached().requiringGrad()
            a.b = a.b.to(device, dtype: dtype).detached().requiringGrad()
        }
    }

    /// `weights` with every adapter folded into its base weight (W + scale·B A), without autograd.
    public func merged(_ weights: [String: Tensor]) -> [String: Tensor] {
        withNoGrad {
            var out = weights
            for (name, ad) in adapters { out[name + ".weight"] = out[name + ".weight"]! + ad.b.matmul(ad.a) * scale }
            return out
        }
    }

    /// Folds every adapter into its base weight and detaches LoRA from the model.
    public static func merge(into model: CausalLM) throws {
        guard let lora = model.lora else { return }
        try withTorchErrors {
            let merged = lora.merged(model.weights)
            for name in lora.adapters.keys { try model.setWeight(name + ".weight", merged[name + ".weight"]!) }
        }
        model.lora = nil
    }

    /// The live adapter tensors under PEFT's keys, `base_model.model.<layer>.lora_A.weight` /
    /// `lora_B.weight` (what a save writes and a load fills).
    public var peftTensors: [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, ad) in adapters {
            out["base_model.model.\(name).lora_A.weight"] = ad.a
            out["base_model.model.\(name).lora_B.weight"] = ad.b
        }
        return out
    }

    /// PEFT's file names and keys: `adapter_config.json` and `adapter_model.safetensors` with the
    /// `peftTensors` keys.
    public func save(to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Safetensors.write(peftTensors.mapValues { $0.detached() }, metadata: ["format": "pt"], to: dir.appendingPathComponent("adapter_model.safetensors"))
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
        json["peft_type"] = "LORA"
        json["task_type"] = "CAUSAL_LM"
        json["bias"] = "none"
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("adapter_config.json"), options: .atomic)
    }

    /// Loads adapters saved by `save(to:)` (or PEFT) onto `model`.
    @discardableResult
    public static func load(from dir: URL, into model: CausalLM) throws -> LoRA {
        let cfgURL = dir.appendingPathComponent("adapter_config.json")
        guard let data = FileManager.default.contents(atPath: cfgURL.path) else { throw ModelError("\(cfgURL.path): cannot read") }
        let config: Config
        do { config = try JSONDecoder().decode(Config.self, from: data) } catch {
            throw ModelError("\(cfgURL.path): not a LoRA adapter config (\(error))")
        }
        let lora = try LoRA(attachingTo: model, config: config)
        try lora.loadWeights(from: dir)
        return lora
    }

    /// Copies the adapter weights saved in `dir` (`adapter_model.safetensors`) into these adapters in
    /// place, so an optimizer that holds them keeps working (resuming a run relies on it).
    public func loadWeights(from dir: URL) throws {
        let file = try Safetensors.File(url: dir.appendingPathComponent("adapter_model.safetensors"))
        for (full, target) in peftTensors {
            guard file.entries[full] != nil else { throw ModelError("\(file.url.path): missing '\(full)'") }
            let t = try file.tensor(full)
            guard t.shape == target.shape else {
                throw ModelError("\(file.url.path): '\(full)' has shape \(t.shape) but the model needs \(target.shape)")
            }
            try withTorchErrors { withNoGrad { target.copy(from: t) } }
        }
    }
}
