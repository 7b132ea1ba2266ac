import Foundation

/// A run's progress line per step, by console mode.
extension TrainingRun {
    func progress(step: Int, metrics: [String: Double], line: [String: Any], perStep: Double) {
        switch console {
        case .quiet: return
        case .json:
            print((try? JSONLines.text(line)) ?? "{}")
        case .normal:
            func f(_ k: String, _ digits: Int) -> String { metrics[k].map { String(format: "%.\(digits)f", $0) } ?? "–" }
            let eta = Double(config.train.steps - step) * perStep
            var parts = ["step \(step)/\(config.train.steps)"]
            if sftTrainer != nil {
                let speed = (metrics["tokens"] ?? 0) / Swift.max(metrics["step_seconds"] ?? 1, 1e-9)
                parts += ["loss \(f("loss", 4))", "token acc \(f("token_accuracy", 3))", "\(String(format: "%.0f", speed)) target tok/s"]
            } else if preferenceTrainer != nil {
                parts += ["loss \(f("loss", 4))", "pair acc \(f("reward_accuracy", 2))", "margin \(f("reward_margin", 3))"]
            } else {
                parts.append("reward \(f("reward_mean", 3))")
                if metrics["accuracy"] != nil { parts.append("acc \(f("accuracy", 2))") }
                if metrics["kl"] != nil { parts.append("kl \(f("kl", 4))") }
                parts += ["len \(f("response_length", 1))", "\(f("rollout_tokens_per_second", 0)) tok/s"]
            }
            parts += ["\(String(format: "%.1f", metrics["step_seconds"] ?? 0)) s/step", "ETA \(Self.duration(eta))"]
            print(parts.joined(separator: " │ "))
            fflush(nil)
        }
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m" : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
    }
}
