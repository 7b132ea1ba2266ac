import Foundation

/// `compare.html`: one self-contained page (no scripts, no network) with each arm's learning
/// curves over the steps — the mean over seeds and a band of its 95% interval — and the results
/// and paired-difference tables, and the credit side-by-side (one run's rollouts scored by every arm's method).
enum ComparisonReport {
    static let colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777"]

    /// Per arm, per step: the metric's values over the seeds (steps every seed recorded).
    static func curves(_ c: Comparison, metric: String) -> [(arm: String, steps: [(Double, [Double])])] {
        c.config.arms.map { arm in
            let runs = c.config.seeds.map { seed in
                JSONLines.read(c.folder(arm: arm.name, seed: seed).appendingPathComponent("metrics.jsonl"))
                    .reduce(into: [Int: Double]()) { d, line in
                        if let s = line["step"] as? Int, let v = Report.number(line[metric]) { d[s] = v }
                    }
            }
            let steps = runs.map { Set($0.keys) }.reduce(Set(runs.first?.keys.map { $0 } ?? [])) { $0.intersection($1) }.sorted()
            return (arm.name, steps.map { s in (Double(s), runs.map { $0[s]! }) })
        }
    }

    /// An SVG chart of every arm's mean with its band.
    static func chart(title: String, _ curves: [(arm: String, steps: [(Double, [Double])])]) -> String {
        let w = 520.0, h = 260.0, left = 50.0, right = 12.0, top = 24.0, bottom = 26.0
        let all = curves.flatMap { $0.steps.flatMap { s -> [Double] in let e = Estimate(s.1); return [e.mean - e.ci95, e.mean + e.ci95] } }
        let xs = curves.flatMap { $0.steps.map(\.0) }
        guard let x0 = xs.min(), let x1 = xs.max(), var y0 = all.min(), var y1 = all.max() else { return "" }
        if y1 - y0 < 1e-12 { y0 -= 0.5; y1 += 0.5 }
        let span = Swift.max(x1 - x0, 1)
        func px(_ x: Double) -> String { String(format: "%.1f", left + (x - x0) / span * (w - left - right)) }
        func py(_ y: Double) -> String { String(format: "%.1f", top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom)) }
        var svg = "<figure><svg viewBox=\"0 0 \(Int(w)) \(Int(h))\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=img aria-label=\"\(Report.escape(title))\">"
        svg += "<text x=\"\(Int(left))\" y=\"15\" class=t>\(Report.escape(title))</text>"
        svg += "<rect x=\"\(Int(left))\" y=\"\(Int(top))\" width=\"\(Int(w - left - right))\" height=\"\(Int(h - top - bottom))\" class=frame />"
        for v in [y0, y1] { svg += "<text x=\"\(Int(left) - 4)\" y=\"\(py(v))\" class=ay>\(Report.axis(v))</text>" }
        svg += "<text x=\"\(Int(left))\" y=\"\(Int(h) - 8)\" class=ax>\(Int(x0))</text><text x=\"\(Int(w - right))\" y=\"\(Int(h) - 8)\" class=axr>step \(Int(x1))</text>"
        for (i, c) in curves.enumerated() where !c.steps.isEmpty {
            let colour = colours[i % colours.count], e = c.steps.map { ($0.0, Estimate($0.1)) }
            let upper = e.map { "\(px($0.0)),\(py($0.1.mean + $0.1.ci95))" }, lower = e.reversed().map { "\(px($0.0)),\(py($0.1.mean - $0.1.ci95))" }
            svg += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(colour)\" fill-opacity=\"0.15\" stroke=none />"
            svg += "<polyline points=\"\(e.map { "\(px($0.0)),\(py($0.1.mean))" }.joined(separator: " "))\" fill=none stroke=\"\(colour)\" stroke-width=1.8 />"
            svg += "<text x=\"\(Int(w - right) - 4)\" y=\"\(Int(top) + 14 + 14 * i)\" class=axr fill=\"\(colour)\" style=\"fill:\(colour)\">\(Report.escape(c.arm))</text>"
        }
        return svg + "</svg></figure>\n"
    }

    static func render(_ c: Comparison, _ s: ComparisonSummary) -> String {
        let f = ComparisonSummary.format
        var body = "<h1>Tokenwise comparison</h1>\n<p class=sub>\(s.arms.count) arms × \(c.config.seeds.count) paired seeds (\(c.config.seeds.map(String.init).joined(separator: ", "))); "
            + "bands are the 95% interval over seeds at each step; \(Report.escape(s.test)).</p>\n<h2>Learning curves</h2>\n<div class=grid>"
        for (metric, title) in [("reward_mean", "training reward (mean over seeds, 95% band)"), ("response_length", "response length"), ("entropy", "entropy")] {
            let curves = curves(c, metric: metric)
            if curves.contains(where: { !$0.steps.isEmpty }) { body += chart(title: title, curves) }
        }
        body += "</div>\n<h2>Held-out results</h2>\n<table><tr><th>arm</th><th>reward</th><th>accuracy</th><th>\(s.passHeader)</th><th>training-reward AUC</th><th>s/step</th><th>peak MB</th><th>steps</th><th>rollout tokens</th><th>steps to threshold</th></tr>"
        for a in s.arms { body += "<tr>" + ComparisonSummary.cells(a).map { "<td>\(Report.escape($0))</td>" }.joined() + "</tr>" }
        body += "</table>\n<h2>Against \(Report.escape(s.baseline))</h2>\n<table><tr><th>arm</th><th>reward difference</th><th>clears 0</th><th>AUC difference</th></tr>"
        for p in s.paired {
            body += "<tr><td>\(Report.escape(p.arm))</td><td class=\(p.clears ? (p.reward.mean > 0 ? "up" : "down") : "")>\(f(p.reward))</td><td>\(p.clears ? "yes" : "no")</td><td>\(f(p.auc))</td></tr>"
        }
        body += "</table>\n"
        do { body += try c.creditSideBySide().html } catch { body += "<h2>Credit side by side</h2>\n<p class=sub>Not shown: \(Report.escape("\(error)"))</p>\n" }
        body += "<p class=sub>Each run's own report: "
            + s.arms.flatMap { a in a.runs.map { "<a href=\"\(Report.escape(a.name))-s\($0.seed)/report.html\">\(Report.escape(a.name)) s\($0.seed)</a>" } }.joined(separator: " · ") + "</p>\n"
        return Report.page(body).replacingOccurrences(of: "<title>Tokenwise report</title>", with: "<title>Tokenwise comparison</title>")
    }
}
