import Foundation
import Yams

/// The report's settings table: the headline settings of a run, and every other setting of its
/// config.yaml whose value differs from Tokenwise's defaults, each next to the default.
extension Report {
    static let headlineSettings = ["model.path", "model.lora.r", "credit.method", "optim.lr", "train.steps", "train.prompts_per_step",
                                   "train.samples_per_prompt", "rollout.max_new_tokens", "rollout.temperature", "objective.kl_coef"]

    /// Every leaf of a YAML value as (dotted path, text); a list of scalars is one leaf.
    static func leaves(_ node: Any?, _ prefix: String = "") -> [(String, String)] {
        switch node {
        case let map as [String: Any]:
            return map.keys.sorted().flatMap { leaves(map[$0], prefix.isEmpty ? $0 : prefix + "." + $0) }
        case let list as [Any] where list.allSatisfy({ !($0 is [String: Any]) && !($0 is [Any]) }):
            return [(prefix, "[" + list.map(text).joined(separator: ", ") + "]")]
        case let list as [Any]:
            return list.enumerated().flatMap { leaves($0.element, "\(prefix)[\($0.offset)]") }
        default:
            return [(prefix, text(node))]
        }
    }

    static func text(_ v: Any?) -> String {
        switch v {
        case nil, is NSNull: "null"
        case let d as Double: "\(d)"
        default: "\(v!)"
        }
    }

    static func settingsTable(_ yaml: String) -> String {
        guard let run = try? Yams.load(yaml: yaml), let base = try? Yams.load(yaml: RunConfig().yaml()) else { return "" }
        let defaults = Dictionary(leaves(base), uniquingKeysWith: { a, _ in a })
        let rows = leaves(run).filter { headlineSettings.contains($0.0) || defaults[$0.0] != $0.1 }
        guard !rows.isEmpty else { return "" }
        var html = "<h2>Settings</h2>\n<p class=sub>The headline settings, and every other one this run sets away from Tokenwise's defaults.</p>\n"
        html += "<table><tr><th>setting</th><th>this run</th><th>default</th></tr>\n"
        for (key, value) in rows {
            html += "<tr><td><code>\(escape(key))</code></td><td>\(escape(value))</td><td>\(escape(defaults[key] ?? "—"))</td></tr>\n"
        }
        return html + "</table>\n"
    }
}
