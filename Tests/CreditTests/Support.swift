import Foundation
import Testing
@testable import Credit

/// Element-wise closeness with the first mismatch in the failure.
func expectClose(_ actual: [Double], _ expected: [Double], tol: Double = 1e-6, _ note: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "count \(actual.count) vs \(expected.count) \(note)", sourceLocation: sourceLocation)
    for (k, (a, e)) in zip(actual, expected).enumerated() where Swift.abs(a - e) > tol * Swift.max(1, Swift.abs(e)) {
        Issue.record("element \(k): \(a) vs expected \(e) \(note)", sourceLocation: sourceLocation)
        return
    }
}

func traj(_ tokens: [Int], _ reward: Double) -> Trajectory { Trajectory(tokens: tokens, reward: reward) }

/// One group "q" from (length, reward) pairs with tokens 0, 1, 2, …
func group(_ spec: [(Int, Double)], id: String = "q") -> Group {
    Group(id: id, trajectories: spec.map { traj(Array(0..<$0.0), $0.1) })
}

func run(_ config: CreditConfig, _ groups: [Group], progress: Double = 0) throws -> CreditResult {
    try config.estimator.estimate(CreditBatch(groups: groups, progress: progress))
}

/// Decodes a config from JSON text.
func config(_ json: String) throws -> CreditConfig {
    try JSONDecoder().decode(CreditConfig.self, from: Data(json.utf8))
}

/// The error message a throwing call produces.
func message(_ body: () throws -> Void) -> String {
    do { try body(); return "no error" } catch { return "\(error)" }
}
