import Foundation

/// `report.html` for a run folder: one self-contained page (inline CSS and SVG, no script, no
/// network) with the metric curves, the before/after evaluation and sample responses whose tokens
/// are coloured by advantage (hovering a token shows its text, logprob, entropy and advantage).
public enum Report {
    /// Curves drawn when the run recorded them: (metric key, title).
    static let curves: [(String, String)] = [
        ("reward_mean", "reward (mean)"), ("accuracy", "accuracy"), ("response_length", "response length (tokens)"),
        ("entropy", "entropy"), ("kl", "KL to reference"), ("approx_kl", "approx. KL (old → new)"),
        ("clip_fraction_low", "clip fraction (low)"), ("clip_fraction_high", "clip fraction (high)"),
        ("grad_norm", "gradient norm"), ("loss", "loss"), ("lr", "learning rate"),
        ("token_accuracy", "token accuracy (fine-tuning)"), ("reward_accuracy", "pair accuracy (preference)"), ("reward_margin", "implicit reward margin"),
        ("chosen_reward", "chosen implicit reward"), ("rejected_reward", "rejected implicit reward"),
        ("token_reward_mean", "RTO token reward (mean log-ratio)"), ("dars_extra_rollouts", "DARS extra rollouts"),
        ("self_reward_loss", "LaSeR self-reward loss"), ("self_reward_accuracy", "LaSeR self-reward accuracy"),
        ("self_reward_score_right_mean", "LaSeR score, right responses"), ("self_reward_score_wrong_mean", "LaSeR score, wrong responses"),
        ("groups_self_reward_mixed", "LaSeR groups mixed"), ("revision_reward_chosen_mean", "T-REG token reward, chosen"),
        ("revision_reward_rejected_mean", "T-REG token reward, rejected"),
        ("rollout_tokens_per_second", "rollout tokens/s"), ("train_tokens_per_second", "training tokens/s"), ("step_seconds", "seconds per step"),
    ]

    @discardableResult
    public static func write(run dir: URL) throws -> URL {
        let html = try render(run: dir)
        let url = dir.appendingPathComponent("report.html")
        try Data(html.utf8).write(to: url, options: .atomic)
        return url
    }

    public static func render(run dir: URL) throws -> String {
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.yaml").path) else {
            throw TrainingError("\(dir.path): not a run folder (no config.yaml)")
        }
        let config = (try? String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)) ?? ""
        let metrics = JSONLines.read(dir.appendingPathComponent("metrics.jsonl"))
        let evals = JSONLines.read(dir.appendingPathComponent("eval.jsonl"))
        let samples = JSONLines.read(dir.appendingPathComponent("samples.jsonl"))
        var body = "<h1>Tokenwise run <code>\(escape(dir.lastPathComponent))</code></h1>\n"
        body += "<p class=sub>\(metrics.count) steps recorded · \(escape(headline(config)))</p>\n"
        body += evalTable(evals)
        body += "<h2>Training curves</h2>\n<div class=grid>\n"
        var flat = [String]()
        func series(_ key: String) -> [(Double, Double)] {
            metrics.compactMap { m -> (Double, Double)? in
                guard let s = number(m["step"]), let v = number(m[key]), v.isFinite else { return nil }
                return (s, v)
            }
        }
        func panels(_ list: [(String, String)]) {
            for (key, title) in list {
                let points = series(key)
                guard !points.isEmpty else { continue }
                // A curve that never moves is a line of text, not a panel.
                if points.count > 1, let v = points.first?.1, points.allSatisfy({ $0.1 == v }) {
                    flat.append("\(title) \(axis(v))")
                    continue
                }
                // The reward with ± its std over the step's rollouts.
                let std = key == "reward_mean" ? Dictionary(series("reward_std"), uniquingKeysWith: { a, _ in a }) : [:]
                let band = std.isEmpty ? nil : points.compactMap { p in std[p.0].map { (p.0, p.1 - $0, p.1 + $0) } }
                body += chart(title: title, points: points, band: band)
            }
        }
        panels(curves)
        body += "</div>\n"
        // What the credit method reports about its advantages (group sizes, weights, shares), by its own names.
        let credit = Set(metrics.flatMap { $0.keys.filter { $0.hasPrefix("credit_") } }).sorted()
        if !credit.isEmpty {
            body += "<h2>Credit diagnostics</h2>\n<div class=grid>\n"
            panels(credit.map { ($0, String($0.dropFirst(7)).replacingOccurrences(of: "_", with: " ")) })
            body += "</div>\n"
        }
        if !flat.isEmpty { body += "<p class=sub>The same at every step (not drawn): \(escape(flat.joined(separator: " · ")))</p>\n" }
        body += settingsTable(config)
        body += sampleSection(samples)
        body += "<h2>Configuration</h2>\n<details><summary>config.yaml (resolved)</summary><pre>\(escape(config))</pre></details>\n"
        return page(body)
    }

    static func number(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }

    /// Model, method and task, from the run's resolved config.
    static func headline(_ yaml: String) -> String {
        guard let c = try? RunConfig.load(yaml: yaml, written: true) else { return "config.yaml could not be read" }
        let method = c.offline.map { "objective \($0)" } ?? "credit \(c.credit.method.rawValue)"
        return "model \(c.model.path) · \(method) · " + (c.agent.map { "environment \($0.environment.rawValue)" } ?? "task \(c.data.task)")
    }

    static func evalTable(_ evals: [[String: Any]]) -> String {
        guard !evals.isEmpty else { return "<p>No evaluation was recorded.</p>\n" }
        func estimate(_ e: [String: Any], _ path: [String]) -> (Double, Double)? {
            var node: Any? = e
            for p in path { node = (node as? [String: Any])?[p] }
            guard let d = node as? [String: Any], let m = number(d["mean"]), let c = number(d["ci95"]) else { return nil }
            return (m, c)
        }
        var rows: [(String, [String])] = [("reward", ["reward"]), ("loss", ["loss"]), ("accuracy", ["accuracy"])]
        let ks = Set(evals.flatMap { (($0["pass_at_k"] as? [String: Any]) ?? [:]).keys }).compactMap(Int.init).sorted()
        rows += ks.map { ("pass@\($0)", ["pass_at_k", String($0)]) }
        var html = "<h2>Held-out evaluation</h2>\n<table><tr><th></th>"
        for e in evals { html += "<th>\(escape(e["phase"] as? String ?? "?")) (step \(number(e["step"]).map { String(Int($0)) } ?? "?"))</th>" }
        let first = evals.first!, last = evals.last!
        if evals.count > 1 { html += "<th>change</th>" }
        html += "</tr>\n"
        for (name, path) in rows {
            guard evals.contains(where: { estimate($0, path) != nil }) else { continue }
            html += "<tr><td>\(name)</td>"
            for e in evals { html += "<td>\(estimate(e, path).map { String(format: "%.3f ± %.3f", $0.0, $0.1) } ?? "–")</td>" }
            if evals.count > 1, let a = estimate(first, path), let b = estimate(last, path) {
                let d = b.0 - a.0
                // Beyond both intervals: the figures the README's main job is judged by.
                let clear = abs(d) > a.1 + b.1
                html += "<td class=\(d >= 0 ? "up" : "down")>\(String(format: "%+.3f", d))\(clear ? " ✔ beyond the 95% intervals" : "")</td>"
            }
            html += "</tr>\n"
        }
        let n = evals.first.flatMap { number($0["prompts"]) }.map { Int($0) } ?? 0
        let k = evals.first.flatMap { number($0["samples_per_prompt"]) }.map { Int($0) } ?? 0
        return html + "</table>\n<p class=sub>\(n) held-out prompts × \(k) samples; ± is the 95% confidence half-width over prompts.</p>\n"
    }

    static func axis(_ v: Double) -> String {
        if v == 0 { return "0" }
        return abs(v) >= 1000 || abs(v) < 0.01 ? String(format: "%.1e", v) : String(format: "%.3g", v)
    }

    static func sampleSection(_ samples: [[String: Any]]) -> String {
        guard !samples.isEmpty else { return "" }
        let steps = Set(samples.compactMap { number($0["step"]).map { Int($0) } }).sorted()
        // The first step, and the last one whose advantages are not all zero (once every response
        // in a group earns the same reward there is no credit left to show).
        let informative = steps.last { s in
            samples.contains { number($0["step"]).map { Int($0) } == s && ($0["advantages"] as? [Any] ?? []).contains { (number($0) ?? 0) != 0 } }
        }
        let shown = Array(Set([steps.first!, informative ?? steps.last!])).sorted()
        var html = "<h2>Sample responses, tokens coloured by advantage</h2>\n"
        html += "<p class=sub><span class=\"k pos\">positive</span> <span class=\"k neg\">negative</span> advantage; hover a token for its logprob, entropy and advantage.</p>\n"
        for s in shown {
            html += "<h3>step \(s)</h3>\n"
            for r in samples.filter({ number($0["step"]).map { Int($0) } == s }) {
                let pieces = r["pieces"] as? [String] ?? [], adv = (r["advantages"] as? [Any] ?? []).compactMap(number)
                let lps = (r["logprobs"] as? [Any] ?? []).compactMap(number), ents = (r["entropies"] as? [Any] ?? []).compactMap(number)
                let scale = Swift.max(adv.map(abs).max() ?? 0, 1e-9)
                html += "<div class=sample><div class=meta>reward \(String(format: "%.3f", number(r["reward"]) ?? 0))"
                if let a = r["answer"] as? String { html += " · answer \(escape(a))" }
                html += " · group \(number(r["group"]).map { String(Int($0)) } ?? "?") · \(escape(r["finish_reason"] as? String ?? ""))</div>"
                let span = { (i: Int) -> String in
                    tokenSpan(pieces[i], advantage: i < adv.count ? adv[i] : 0, logprob: i < lps.count ? lps[i] : nil, entropy: i < ents.count ? ents[i] : nil, scale: scale)
                }
                if let turns = r["turns"] as? [[String: Any]], !turns.isEmpty {
                    html += episode(turns, pieces: pieces, prompt: r["prompt"] as? String ?? "", span: span)
                } else {
                    html += "<div class=tokens>" + pieces.indices.map(span).joined() + "</div>"
                }
                html += "</div>\n"
            }
        }
        return html
    }

    /// One token, coloured by its advantage, with its figures on hover.
    static func tokenSpan(_ piece: String, advantage a: Double, logprob: Double?, entropy: Double?, scale: Double) -> String {
        let alpha = String(format: "%.2f", Swift.min(1, abs(a) / scale) * 0.85)
        let color = a >= 0 ? "rgba(37,99,235,\(alpha))" : "rgba(220,38,38,\(alpha))"
        let tip = "token \(debugText(piece)) · logprob \(logprob.map { String(format: "%.3f", $0) } ?? "–")"
            + " · entropy \(entropy.map { String(format: "%.3f", $0) } ?? "–") · advantage \(String(format: "%+.4f", a))"
        return "<span class=tok style=\"background:\(color)\" title=\"\(escape(tip))\">\(escape(piece).replacingOccurrences(of: "\n", with: "↵<br>"))</span>"
    }

    /// An agent's episode as a dialogue: the first observation (the whole first prompt on hover),
    /// then each turn's action, its tokens coloured by advantage, with the environment's reward, and
    /// the observation tokens that follow it greyed (context, no advantage).
    static func episode(_ turns: [[String: Any]], pieces: [String], prompt: String, span: (Int) -> String) -> String {
        var html = "<div class=\"msg user\" title=\"\(escape(prompt))\"><b>observation</b><div class=tokens>\(escape(turns[0]["observation"] as? String ?? ""))</div></div>"
        for (k, turn) in turns.enumerated() {
            let start = Swift.min(Int(number(turn["start"]) ?? 0), pieces.count)
            let end = Swift.min(start + Int(number(turn["length"]) ?? 0), pieces.count)
            let next = k + 1 < turns.count ? Swift.min(Int(number(turns[k + 1]["start"]) ?? 0), pieces.count) : pieces.count
            let valid = turn["valid"] as? Bool ?? true
            html += "<div class=\"msg act\"><b>action \(k + 1)</b> <span class=meta>reward \(String(format: "%.3f", number(turn["reward"]) ?? 0))"
                + (valid ? "" : " · invalid") + " · state \(escape(turn["state_key"] as? String ?? ""))</span><div class=tokens>"
                + (start..<end).map(span).joined() + "</div></div>"
            if end < next {
                html += "<div class=\"msg user\"><b>observation</b><div class=tokens>" + pieces[end..<next].map {
                    "<span class=\"tok obs\">\(escape($0).replacingOccurrences(of: "\n", with: "↵<br>"))</span>"
                }.joined() + "</div></div>"
            }
        }
        return html
    }

    static func debugText(_ s: String) -> String {
        "“" + s.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t") + "”"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func page(_ body: String) -> String {
        """
        <!doctype html>
        <html lang=en><head><meta charset=utf-8><title>Tokenwise report</title>
        <style>
        body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1100px;color:#111;padding:0 16px}
        h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px} h3{font-size:14px;margin:16px 0 6px}
        .sub{color:#555;margin:4px 0 12px} code{font-size:13px}
        table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:4px 10px;text-align:right} td:first-child{text-align:left}
        .up{color:#166534} .down{color:#991b1b}
        .grid{display:flex;flex-wrap:wrap;gap:10px} figure{margin:0;border:1px solid #e5e5e5;border-radius:6px;background:#fafafa}
        .t{font-size:12px;font-weight:600;fill:#222} .ay{font-size:10px;fill:#666;text-anchor:end} .ax{font-size:10px;fill:#666} .axr{font-size:10px;fill:#666;text-anchor:end} .axc{font-size:10px;fill:#666;text-anchor:middle}
        .frame{fill:#fff;stroke:#ddd} .line{fill:none;stroke:#2563eb;stroke-width:1.6} .dot{fill:#2563eb}
        .grid line{stroke:#eee} .band{fill:rgba(37,99,235,.15);stroke:none}
        .sample{border:1px solid #e5e5e5;border-radius:6px;margin:8px 0;padding:6px 8px} .meta{color:#555;font-size:12px;margin-bottom:4px}
        .tokens{font:13px/1.9 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap;word-break:break-word}
        .tok{border-radius:3px;padding:1px 0} .tok:hover{outline:1px solid #111} .obs{color:#9ca3af}
        .msg{border-left:3px solid #d1d5db;margin:4px 0;padding:2px 8px} .msg.act{border-color:#2563eb} .msg b{font-size:12px;color:#555}
        .k{padding:1px 6px;border-radius:3px} .pos{background:rgba(37,99,235,.6)} .neg{background:rgba(220,38,38,.6)}
        .side{width:100%} .side td{text-align:left;border:none;padding:2px 6px;width:99%} .side th{width:1%;text-align:right;border:none;font-size:12px;color:#555;vertical-align:top;white-space:nowrap;padding:4px 6px}
        pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px}
        </style></head><body>
        \(body)
        </body></html>
        """
    }
}
