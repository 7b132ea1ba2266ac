import Foundation

/// A run's budgets (`train.max_rollout_tokens`, `train.max_seconds`): it ends after the step whose
/// totals reach one. The totals are the merged step metrics (the same on every rank) and travel in
/// each checkpoint, so a resumed run spends the rest, not the whole budget again.
extension TrainingRun {
    /// Whether neither budget is spent yet.
    var budgetLeft: Bool {
        let t = config.train
        return spent.tokens < Double(t.maxRolloutTokens ?? .max) && spent.seconds < (t.maxSeconds ?? .infinity)
    }

    /// Adds a step's sampled tokens and seconds; says so when that spends a budget.
    func spend(_ metrics: [String: Double]) {
        let wasLeft = budgetLeft
        spent.tokens += metrics["rollout_tokens"] ?? 0
        spent.seconds += metrics["step_seconds"] ?? 0
        guard wasLeft, !budgetLeft else { return }
        let t = config.train
        let which = spent.tokens >= Double(t.maxRolloutTokens ?? .max)
            ? "\(Int(spent.tokens)) rollout tokens (train.max_rollout_tokens \(t.maxRolloutTokens!))"
            : String(format: "%.1f s of steps (train.max_seconds %g)", spent.seconds, t.maxSeconds!)
        say("budget spent after step \(startStep) of at most \(t.steps): \(which)")
    }
}
