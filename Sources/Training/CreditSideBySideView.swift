import Foundation

extension CreditSideBySide {
    /// A plain-text table: per response, one line per token with each method's credit.
    public var text: String {
        let groups = Set(rows.map(\.group)).count
        var out = "\(source) step \(step): \(rows.count) responses in \(groups) whole group\(groups == 1 ? "" : "s"), "
            + "per-token credit (advantage × weight) by \(methods.joined(separator: ", "))\n"
        for (label, reason) in skipped { out += "not scored: \(reason) [\(label)]\n" }
        let width = max(10, methods.map(\.count).max() ?? 0)
        func cell(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        for (n, r) in rows.enumerated() {
            out += "\ngroup \(r.group) · response \(n + 1) · reward \(String(format: "%.3f", r.reward))\n"
            out += "  " + "token".padding(toLength: 16, withPad: " ", startingAt: 0) + methods.map { " " + cell($0) }.joined() + "\n"
            for t in r.pieces.indices {
                let piece = Report.debugText(r.pieces[t])
                let shown = piece.count > 16 ? String(piece.prefix(15)) + "…" : piece
                let context = r.actionMask.map { t < $0.count && !$0[t] } ?? false
                out += "  " + shown.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + (context ? methods.map { _ in " " + cell("(context)") }.joined() : r.advantages.map { " " + cell(String(format: "%+.4f", $0[t])) }.joined()) + "\n"
            }
        }
        return out
    }

    /// The JSON form: `{"source", "step", "methods", "skipped", "rows": [{"group", "reward", "pieces", "credit": {label: [..]}}]}`.
    public func json() throws -> Data {
        let object: [String: Any] = [
            "source": source, "step": step, "methods": methods,
            "skipped": skipped.map { ["label": $0.label, "reason": $0.reason] },
            "rows": rows.map { r -> [String: Any] in
                var row: [String: Any] = ["group": r.group, "reward": r.reward, "pieces": r.pieces,
                                          "credit": Dictionary(uniqueKeysWithValues: zip(methods, r.advantages))]
                if let m = r.actionMask { row["action_mask"] = m }
                return row
            },
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    /// An HTML section: per response, one line of tokens per method, coloured on one scale per
    /// response so the methods' magnitudes compare; hovering a token shows its credit.
    public var html: String {
        let groups = Set(rows.map(\.group)).count
        var h = "<h2>Credit side by side</h2>\n<p class=sub>The same rollouts (\(Report.escape(source)), step \(step), \(groups) whole group\(groups == 1 ? "" : "s")) "
            + "scored by each method: a token's colour is its advantage × weight, <span class=\"k pos\">positive</span> or <span class=\"k neg\">negative</span>, "
            + "on one scale per response. Every method scored only these groups, so batch-wide statistics see only them.</p>\n"
        for (label, reason) in skipped { h += "<p class=sub>Not scored: \(Report.escape(label)): \(Report.escape(reason))</p>\n" }
        for r in rows {
            let scale = Swift.max(r.advantages.flatMap { $0.map(abs) }.max() ?? 0, 1e-9)
            h += "<div class=sample><div class=meta>group \(r.group) · reward \(String(format: "%.3f", r.reward))</div><table class=side>"
            for (m, adv) in zip(methods, r.advantages) {
                let spans = r.pieces.indices.map { t -> String in
                    if let mask = r.actionMask, t < mask.count, !mask[t] {
                        return "<span class=\"tok obs\">\(Report.escape(r.pieces[t]).replacingOccurrences(of: "\n", with: "↵<br>"))</span>"
                    }
                    return Report.tokenSpan(r.pieces[t], advantage: adv[t], logprob: t < r.logprobs.count ? r.logprobs[t] : nil, entropy: t < r.entropies.count ? r.entropies[t] : nil, scale: scale)
                }
                h += "<tr><th>\(Report.escape(m))</th><td class=tokens>\(spans.joined())</td></tr>"
            }
            h += "</table></div>\n"
        }
        return h
    }

    /// A page of its own (`tokenwise credit --compare --html`).
    public var page: String {
        Report.page(html).replacingOccurrences(of: "<title>Tokenwise report</title>", with: "<title>Tokenwise credit side by side</title>")
    }
}
