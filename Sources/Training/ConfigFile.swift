import Foundation
import Credit
import Models
import Rollout
import Torch
import Yams

/// Reading and writing `RunConfig` as YAML.
///
/// The file is merged over the defaults (or a preset) node by node, so it names only what it
/// changes; `--set section.key=value` overrides are merged the same way. A `credit` or `reward`
/// section that names its `method` / `terms` replaces the default one whole (another method's
/// parameters would not fit). Unknown keys are found by encoding the decoded config again: a key in
/// the file that does not come back was not read. Errors name the file, line and key.
extension RunConfig {
    /// The config from YAML `text` (named `file` in errors) over `base`, then `overrides`.
    /// `written`: a run folder's own config.yaml, read by --resume and the report; keys an earlier
    /// version wrote that this run does not read (an agent's prompt task) are dropped, not refused.
    public static func load(yaml text: String, file: String = "config.yaml", base: RunConfig = RunConfig(),
                            overrides: [String] = [], written: Bool = false) throws -> RunConfig {
        var user: Node
        do {
            user = try Yams.compose(yaml: text) ?? Node.mapping(.init([]))
        } catch let e as YamlError {
            throw TrainingError("\(file): \(e)")
        }
        guard user.mapping != nil else { throw TrainingError("\(file): the config must be a mapping of sections (model, data, …)") }
        for o in overrides { try apply(override: o, to: &user) }
        for note in staleCreditParams(&user) { FileHandle.standardError.write(Data("warning: \(file): \(note)\n".utf8)) }
        let merged = merge(try base.node(), user)
        let config: RunConfig
        do {
            config = try YAMLDecoder().decode(RunConfig.self, from: merged)
        } catch let e as DecodingError {
            throw describe(e, file: file, user: user)
        } catch {
            // Module configs throw their own errors (they name the key); add where it is, and the
            // Tokenwise name of a key another trainer names so.
            let text = "\(error)"
            if let r = text.range(of: "unknown key '"), let end = text[r.upperBound...].firstIndex(of: "'"),
               let hint = ForeignNames.hint(for: String(text[r.upperBound..<end])) {
                throw TrainingError("\(file): \(text); \(hint)")
            }
            throw TrainingError("\(file): \(text)")
        }
        if let agent = config.agent {
            if written { user = agent.droppingUnused(user) } else { try agent.checkUnused(user, file: file) }
        }
        try checkUnknownKeys(user, known: try config.node(), path: [], file: file)
        do { try config.validate() } catch { throw TrainingError("\(file): \(error)") }
        return config
    }

    /// The config as YAML (every key resolved), as written into a run folder.
    public func yaml() throws -> String {
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = false
        // Yams writes every Double in scientific notation (1e+0, 3.2e+1); Swift's shortest form reads better.
        return try encoder.encode(self).split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard let sep = line.range(of: ": ", options: .backwards) ?? line.range(of: "- ") else { return String(line) }
            let value = line[sep.upperBound...]
            guard value.contains("e"), value.first.map({ $0.isNumber || $0 == "-" }) == true, let d = Double(value) else { return String(line) }
            return line[..<sep.upperBound] + "\(d)"
        }.joined(separator: "\n")
    }

    func node() throws -> Node {
        guard let n = try Yams.compose(yaml: try yaml()) else { throw TrainingError("config: encoding failed") }
        return n
    }

    /// Drops the credit params that belong to another method than the section's (a template
    /// written for TEMPO and edited to GRPO keeps TEMPO's `td_weight`), saying so; a param no
    /// method has stays, so decoding names it as unknown (a typo).
    static func staleCreditParams(_ user: inout Node) -> [String] {
        guard var top = user.mapping, var credit = top["credit"]?.mapping, let name = credit["method"]?.string,
              CreditMethod(rawValue: name) != nil, var params = credit["params"]?.mapping else { return [] }
        func accepts(_ method: String, _ key: Node, _ value: Node) -> Bool {
            let probe = Node.mapping(.init([(Node("method"), Node(method)), (Node("params"), Node.mapping(.init([(key, value)])))]))
            do { _ = try YAMLDecoder().decode(CreditConfig.self, from: probe); return true } catch {
                return !"\(error)".contains("unknown param '\(key.string ?? "")'")
            }
        }
        var notes: [String] = []
        for (k, v) in params where !accepts(name, k, v) {
            let owners = CreditMethod.allCases.map(\.rawValue).filter { $0 != name && accepts($0, k, v) }
            guard !owners.isEmpty else { continue }
            params[k] = nil
            notes.append("'credit.params.\(k.string ?? "?")' is a param of \(owners.joined(separator: ", ")), not of method '\(name)': left out "
                         + "(a template's params follow the method it was written for)")
        }
        guard !notes.isEmpty else { return [] }
        credit["params"] = Node.mapping(params)
        top["credit"] = Node.mapping(credit)
        user = Node.mapping(top)
        return notes
    }

    /// Every leaf of the config as `section.key[.key…]` → its YAML text (a list on one line).
    public func flattened() throws -> [String: String] {
        var out: [String: String] = [:]
        func walk(_ node: Node, _ path: [String]) throws {
            if let m = node.mapping, !m.isEmpty {
                for (k, v) in m { try walk(v, path + [k.string ?? "?"]) }
            } else if node.sequence != nil {
                out[path.joined(separator: ".")] = try Yams.serialize(node: node).trimmingCharacters(in: .whitespacesAndNewlines)
                    .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            } else {
                out[path.joined(separator: ".")] = node.scalar?.string ?? (node.mapping != nil ? "{}" : "null")
            }
        }
        try walk(try node(), [])
        return out
    }

    /// The keys whose values differ between `self` and `other`, sorted: (key, other's, self's);
    /// a key one side lacks has nil there.
    public func differences(from other: RunConfig) throws -> [(key: String, from: String?, to: String?)] {
        let a = try other.flattened(), b = try flattened()
        return Set(a.keys).union(b.keys).sorted().compactMap { k in a[k] == b[k] ? nil : (k, a[k], b[k]) }
    }

    /// `section.key[.key…]=value`; the value is read as YAML (so `3`, `0.5`, `null`, `[a, b]` work).
    static func apply(override o: String, to root: inout Node) throws {
        guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
            throw TrainingError("--set '\(o)': expected section.key=value")
        }
        let path = o[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard path.count >= 2, !path.contains("") else { throw TrainingError("--set '\(o)': the key must be section.key (e.g. optim.lr=1e-4)") }
        let value: Node
        do { value = try Yams.compose(yaml: String(o[o.index(after: eq)...])) ?? Node("null", Tag(.null)) } catch {
            throw TrainingError("--set '\(o)': the value is not valid YAML")
        }
        func set(_ node: Node, _ rest: ArraySlice<String>) -> Node {
            var m = node.mapping ?? Node.Mapping([])
            let key = rest.first!
            m[Node(key)] = rest.count == 1 ? unmarked(value) : set(m[key] ?? Node.mapping(.init([])), rest.dropFirst())
            return Node.mapping(m)
        }
        root = set(root, path[...])
    }

    /// `node` without source positions: an override's line 1 is not a line of the file.
    static func unmarked(_ node: Node) -> Node {
        switch node {
        case .scalar(let s): return .scalar(.init(s.string, s.tag, s.style))
        case .sequence(let q): return .sequence(.init(q.map(unmarked), q.tag, q.style))
        case .mapping(let m): return .mapping(.init(m.map { (unmarked($0.key), unmarked($0.value)) }, m.tag, m.style))
        case .alias: return node
        }
    }

    /// `over` merged into `base`: mappings key by key, anything else replaced. A credit or reward
    /// section that names its method / terms replaces the base one.
    static func merge(_ base: Node, _ over: Node, path: [String] = []) -> Node {
        guard var b = base.mapping, let o = over.mapping else { return over }
        if path == ["credit"], o["method"] != nil, o["method"]?.string != b["method"]?.string { return over }
        // An objective that names another loss (`name: dpo`, `sft` …) shares no keys with the one it
        // replaces; one without a name changes keys of the base's (e.g. `packing` of preset sft).
        if path == ["objective"], let name = o["name"]?.string, name != b["name"]?.string { return over }
        // vf_clip belongs to the gae target: a critic section that changes the target leaves the base's behind.
        if path == ["critic"], let target = o["target"], target.string != b["target"]?.string { b["vf_clip"] = nil }
        for (k, v) in o {
            let key = k.string ?? ""
            if let existing = b[k], path != ["reward"] {
                b[k] = merge(existing, v, path: path + [key])
            } else {
                b[k] = v
            }
        }
        return Node.mapping(b)
    }

    static func checkUnknownKeys(_ user: Node, known: Node, path: [String], file: String) throws {
        guard let u = user.mapping else { return }
        let k = known.mapping
        for (key, value) in u {
            let name = key.string ?? "?"
            if value.null != nil { continue }
            guard let counterpart = k?[key] else {
                let line = key.mark.map { ":\($0.line)" } ?? ""
                let knownKeys = k.map { $0.keys.compactMap(\.string).joined(separator: ", ") } ?? ""
                let section = path.isEmpty ? "the top level" : "'\(path.joined(separator: "."))'"
                let full = (path + [name]).joined(separator: "."), hint = ForeignNames.hint(for: full).map { "; \($0)" } ?? ""
                throw TrainingError("\(file)\(line): unknown key '\(full)' (known in \(section): \(knownKeys))\(hint)")
            }
            if let us = value.sequence, let ks = counterpart.sequence {
                for (i, (a, b)) in zip(us, ks).enumerated() { try checkUnknownKeys(a, known: b, path: path + [name, String(i)], file: file) }
            } else {
                try checkUnknownKeys(value, known: counterpart, path: path + [name], file: file)
            }
        }
    }

    /// A decoding error as "file:line: 'section.key': what was wrong".
    static func describe(_ e: DecodingError, file: String, user: Node) -> TrainingError {
        let (path, what): ([CodingKey], String) = {
            switch e {
            case .typeMismatch(let t, let c): return (c.codingPath, "expected \(typeName(t))")
            case .valueNotFound(let t, let c): return (c.codingPath, "expected \(typeName(t)), found nothing")
            case .keyNotFound(let k, let c): return (c.codingPath, "missing key '\(k.stringValue)'")
            case .dataCorrupted(let c): return (c.codingPath, c.debugDescription)
            @unknown default: return ([], "\(e)")
            }
        }()
        var node: Node? = user, line: Int? = nil
        for k in path {
            if let i = k.intValue, let s = node?.sequence, i < s.count { node = s[i] } else if let m = node?.mapping {
                if let key = m.keys.first(where: { $0.string == k.stringValue }) { line = key.mark?.line ?? line }
                node = m[k.stringValue]
            } else { node = nil }
        }
        line = node?.mark?.line ?? line
        let key = path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        if case .dataCorrupted = e, let choices = Self.choices[key] {
            return TrainingError("\(file)\(line.map { ":\($0)" } ?? ""): '\(key)' is '\(node?.string ?? "?")'; expected one of \(choices.joined(separator: ", "))")
        }
        return TrainingError("\(file)\(line.map { ":\($0)" } ?? ""): '\(key)': \(what)")
    }

    /// The choices of the keys whose values decode into plain enums (the module configs list
    /// their own choices).
    static let choices: [String: [String]] = [
        "optim.schedule": LRSchedule.Kind.allCases.map(\.rawValue),
        "rollout.temperature_schedule.name": TemperatureScheduleConfig.Name.allCases.map(\.rawValue),
        "rollout.weights": WeightPrecision.allCases.map(\.rawValue),
        "rollout.engine": RolloutEngineKind.allCases.map(\.rawValue),
        "train.dars.schedule": DARSConfig.Schedule.allCases.map(\.rawValue),
    ]

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is Int.Type, is UInt64.Type, is Int?.Type: "an integer"
        case is Double.Type, is Double?.Type: "a number"
        case is Bool.Type: "true or false"
        case is String.Type, is String?.Type: "a string"
        case is Node.Scalar.Type: "one value, not a list or mapping"
        default: "\(t)"
        }
    }
}
