import Foundation

/// The temperature of each decoding step, as a function of that step's policy entropy.
public protocol TemperatureSchedule: Sendable {
    func temperature(base: Double, entropy: Double) -> Double
}

/// The configured temperature at every step.
public struct ConstantTemperature: TemperatureSchedule {
    public init() {}
    public func temperature(base: Double, entropy: Double) -> Double { base }
}

/// HAPO's Adaptive Temperature Sampling (arXiv:2509.16591, ALGORITHMS.md §9.2):
///   T_t = T_base · (1 + τ·clamp(ĥ_t, −1, 1)),
/// ĥ the normalised entropy score from the previous training step's entropy statistics. The
/// normaliser is passed in (Training builds it from `Credit.HAPO.EntropyStatistics`) so Rollout stays
/// independent of Credit; with no statistics yet (first step) use `ConstantTemperature`.
public struct AdaptiveTemperature: TemperatureSchedule {
    public let tau: Double
    public let normalizedEntropy: @Sendable (Double) -> Double

    public init(tau: Double = 0.05, normalizedEntropy: @escaping @Sendable (Double) -> Double) {
        self.tau = tau
        self.normalizedEntropy = normalizedEntropy
    }

    public func temperature(base: Double, entropy: Double) -> Double {
        base * (1 + tau * Swift.min(1, Swift.max(-1, normalizedEntropy(entropy))))
    }
}
