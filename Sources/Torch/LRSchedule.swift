import Foundation

/// Learning-rate schedule: the multiplier of the base rate at each optimizer step.
///
/// With `warmup_steps` W and `total_steps` N, step s (0-based, the step about to be taken) gets:
/// - warm-up, s < W: (s + 1) / W
/// - then, with progress q = (s − W) / (N − W) clamped to [0, 1] and floor r = `min_lr_ratio`:
///   `constant` 1, `linear` r + (1 − r)(1 − q), `cosine` r + (1 − r)·½(1 + cos πq).
public struct LRSchedule: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case constant, linear, cosine }

    public var kind: Kind
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minLRRatio: Double

    public init(kind: Kind = .constant, warmupSteps: Int = 0, totalSteps: Int = 0, minLRRatio: Double = 0) {
        self.kind = kind
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minLRRatio = minLRRatio
    }

    public static let constant = LRSchedule()

    public static func cosine(warmupSteps: Int, totalSteps: Int, minLRRatio: Double = 0) -> LRSchedule {
        LRSchedule(kind: .cosine, warmupSteps: warmupSteps, totalSteps: totalSteps, minLRRatio: minLRRatio)
    }

    enum CodingKeys: String, CodingKey {
        case kind, warmupSteps = "warmup_steps", totalSteps = "total_steps", minLRRatio = "min_lr_ratio"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(Kind.self, forKey: .kind) ?? .constant
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
        totalSteps = try c.decodeIfPresent(Int.self, forKey: .totalSteps) ?? 0
        minLRRatio = try c.decodeIfPresent(Double.self, forKey: .minLRRatio) ?? 0
        try validate()
    }

    /// Rejects settings that cannot describe a schedule, naming the field.
    public func validate() throws {
        guard warmupSteps >= 0 else { throw TorchError("lr schedule: warmup_steps must be >= 0, got \(warmupSteps)") }
        guard (0...1).contains(minLRRatio) else {
            throw TorchError("lr schedule: min_lr_ratio must be in [0, 1], got \(minLRRatio)")
        }
        if kind != .constant && totalSteps <= warmupSteps {
            throw TorchError("lr schedule: total_steps (\(totalSteps)) must exceed warmup_steps (\(warmupSteps)) for '\(kind.rawValue)'")
        }
    }

    public func multiplier(step s: Int) -> Double {
        if s < warmupSteps { return Double(s + 1) / Double(warmupSteps) }
        let q = kind == .constant ? 0 : Swift.min(1, Swift.max(0, Double(s - warmupSteps) / Double(totalSteps - warmupSteps)))
        switch kind {
        case .constant: return 1
        case .linear: return minLRRatio + (1 - minLRRatio) * (1 - q)
        case .cosine: return minLRRatio + (1 - minLRRatio) * 0.5 * (1 + Foundation.cos(Double.pi * q))
        }
    }

    public func learningRate(base: Double, step: Int) -> Double { base * multiplier(step: step) }
}
