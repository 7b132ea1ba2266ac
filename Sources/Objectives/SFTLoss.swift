import Torch

/// Supervised fine-tuning (`objective: {name: sft}`): the mean negative log-likelihood of the
/// target tokens, −Σ_t m_t log π_θ(y_t | y_<t) / Σ_t m_t, the sum and the count taken over every
/// target token of the step (TRL's `SFTTrainer` normalises by the tokens in the batch the same way),
/// so a long example weighs by its tokens, not as one item.
///
/// `loss_type: dft` is Dynamic Fine-Tuning ("On the Generalization of SFT: A Reinforcement Learning
/// Perspective with Reward Rectification", arXiv:2508.05629; TRL @016013e `dft_loss`): each token's
/// term is weighted by its own probability without gradient, −sg(π_θ(y_t)) log π_θ(y_t), with the
/// same normaliser, so tokens the model already finds likely carry the update.
///
/// Which tokens are targets follows TRL's `SFTConfig` names: `completion_only_loss` (a
/// prompt/completion line: the completion only, TRL's default for that format) and
/// `assistant_only_loss` (a chat line: the assistant turns only; TRL's default is false, the whole
/// dialogue, Tokenwise's is true, the assistant turns). Each target span ends with the end token,
/// so the model learns where to stop.
public enum SFTLoss {
    public enum LossType: String, Codable, Sendable, CaseIterable { case nll, dft }

    public struct Config: Codable, Equatable, Sendable {
        public var lossType: LossType = .nll
        public var completionOnlyLoss = true
        public var assistantOnlyLoss = true
        /// Tokens kept of each example (its start); nil: TRL's `max_length`, 1024, or the model's
        /// context when that is shorter.
        public var maxLength: Int? = nil
        /// Several short examples share a row of up to `max_length` tokens, each attending only to
        /// itself (positions restart), so a step computes less padding; the loss is unchanged.
        public var packing = false
        /// `name: aligndistil`: the targets are distilled toward AlignDistil's teacher instead of
        /// learned by likelihood (`AlignDistilLoss`).
        public var distill: AlignDistilLoss.Config? = nil
        /// ssToken's token selection: only the top ρ of each example's targets are learned.
        public var sstoken: SSTokenConfig? = nil

        /// The objective's name: `sft`, or `aligndistil` when distilling.
        public var name: String { distill == nil ? "sft" : "aligndistil" }

        public init(lossType: LossType = .nll, completionOnlyLoss: Bool = true, assistantOnlyLoss: Bool = true, maxLength: Int? = nil, packing: Bool = false) {
            self.lossType = lossType
            self.completionOnlyLoss = completionOnlyLoss; self.assistantOnlyLoss = assistantOnlyLoss
            self.maxLength = maxLength; self.packing = packing
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, lossType = "loss_type", completionOnlyLoss = "completion_only_loss", assistantOnlyLoss = "assistant_only_loss"
            case maxLength = "max_length", packing
            case dpoModel = "dpo_model", reverseModel = "reverse_model", beta, beta2, temperature, teacher, positions
            case sstoken
        }
        static let distillKeys: [CodingKeys] = [.dpoModel, .reverseModel, .beta, .beta2, .temperature, .teacher, .positions]

        /// Whether an `objective` mapping selects supervised fine-tuning (`name: sft`) or AlignDistil (`name: aligndistil`).
        public static func isNamed(in decoder: Decoder) throws -> Bool {
            let c = try decoder.container(keyedBy: AnyKey.self)
            return ["sft", "aligndistil"].contains(try? c.decodeIfPresent(String.self, forKey: AnyKey(CodingKeys.name.stringValue)))
        }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self, in: "objective")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if try c.decode(String.self, forKey: .name) == "aligndistil" {
                try decodeDistill(c)
            } else if let key = Self.distillKeys.first(where: { c.contains($0) }) {
                throw ObjectiveError("objective 'sft': '\(key.stringValue)' is read by objective 'aligndistil', not 'sft'")
            }
            lossType = try c.choice(.lossType, in: "objective") as LossType? ?? .nll
            completionOnlyLoss = try c.decodeIfPresent(Bool.self, forKey: .completionOnlyLoss) ?? true
            assistantOnlyLoss = try c.decodeIfPresent(Bool.self, forKey: .assistantOnlyLoss) ?? true
            maxLength = try c.decodeIfPresent(Int.self, forKey: .maxLength)
            packing = try c.decodeIfPresent(Bool.self, forKey: .packing) ?? false
            sstoken = try c.decodeIfPresent(SSTokenConfig.self, forKey: .sstoken)
            try sstoken?.validate()
            if sstoken != nil, distill != nil { throw ObjectiveError("objective 'aligndistil': 'sstoken' selects the tokens of objective 'sft''s likelihood loss; AlignDistil distils every target") }
            if sstoken != nil, lossType != .nll { throw ObjectiveError("objective 'sft': 'sstoken' selects tokens for the negative log-likelihood (loss_type nll), as its authors train; loss_type is '\(lossType.rawValue)'") }
            if let n = maxLength, n < 2 { throw ObjectiveError("objective: 'max_length' must be at least 2 tokens, got \(n)") }
        }

        mutating func decodeDistill(_ c: KeyedDecodingContainer<CodingKeys>) throws {
            guard let dpo = try c.decodeIfPresent(String.self, forKey: .dpoModel), let reverse = try c.decodeIfPresent(String.self, forKey: .reverseModel) else {
                throw ObjectiveError("objective 'aligndistil' distils toward a DPO model and a reverse-DPO model: set 'dpo_model' and 'reverse_model' "
                    + "(each the model/ folder of a preference run; the reverse one trained with data.chosen_field: rejected and data.rejected_field: chosen)")
            }
            guard !c.contains(.lossType) else { throw ObjectiveError("objective 'aligndistil': 'loss_type' chooses the likelihood loss of objective 'sft'; AlignDistil's loss is its own (see 'teacher')") }
            var d = AlignDistilLoss.Config(dpoModel: dpo, reverseModel: reverse)
            d.beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? d.beta
            d.beta2 = try c.decodeIfPresent(Double.self, forKey: .beta2) ?? d.beta2
            d.temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? d.temperature
            d.teacher = try c.choice(.teacher, in: "objective") ?? d.teacher
            d.positions = try c.choice(.positions, in: "objective") ?? d.positions
            try d.validate()
            distill = d
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            if let d = distill {
                try c.encode(d.dpoModel, forKey: .dpoModel)
                try c.encode(d.reverseModel, forKey: .reverseModel)
                try c.encode(d.beta, forKey: .beta)
                try c.encode(d.beta2, forKey: .beta2)
                try c.encode(d.temperature, forKey: .temperature)
                try c.encode(d.teacher, forKey: .teacher)
                try c.encode(d.positions, forKey: .positions)
            } else {
                try c.encode(lossType, forKey: .lossType)
            }
            try c.encode(completionOnlyLoss, forKey: .completionOnlyLoss)
            try c.encode(assistantOnlyLoss, forKey: .assistantOnlyLoss)
            try c.encodeIfPresent(maxLength, forKey: .maxLength)
            try c.encode(packing, forKey: .packing)
            try c.encodeIfPresent(sstoken, forKey: .sstoken)
        }

        /// The tokens kept of each example for a model of `context` positions.
        public func rowLength(context: Int) -> Int { maxLength ?? Swift.min(1024, context) }
    }

    /// The summed loss terms of target tokens `targets` [N] under `logits` [N, V] (any dtype;
    /// computed in float32): −log p, or DFT's −sg(p) log p; and how many targets are the argmax
    /// (no gradient).
    public static func sums(logits: Tensor, targets: Tensor, type: LossType = .nll) throws -> (nll: Tensor, correct: Double) {
        let logp = logits.to(dtype: .float32).logSoftmax(dim: -1)
        let index = targets.to(dtype: .int64)
        let lp = logp.gather(dim: -1, index: index.unsqueezed(dim: -1))
        let nll = type == .dft ? -(lp.detached().exp() * lp).sum() : -lp.sum()
        let correct = try withNoGrad { try (logp.argmax(dim: -1) .== index).to(dtype: .float32).sum().item() }
        return (nll, correct)
    }
}
