import Credit
import Foundation

/// The same recorded rollouts (one step's whole groups from a run's `samples.jsonl`) scored by
/// several credit methods, token by token: where GRPO, TEMPO, PURE … put their credit differently.
/// Every method scores the same batch — the step's recorded groups, not the whole training batch,
/// so statistics a method takes over the batch (whitening, D³S's batch scope) see only these.
public struct CreditSideBySide: Sendable {
    /// A label (an arm's name, or the method's) and the credit config it scores with.
    public struct Method: Sendable {
        public var label: String
        public var config: CreditConfig
        public init(label: String, config: CreditConfig) { self.label = label; self.config = config }
    }

    public struct Row: Sendable {
        public var group: Int
        public var reward: Double
        public var pieces: [String]
        /// The sampled tokens' logprobs and entropies (shown on hover).
        public var logprobs: [Double], entropies: [Double]
        /// Which tokens the policy wrote (nil: all).
        public var actionMask: [Bool]?
        /// Per method (in `methods` order), each token's credit: its advantage times its weight.
        public var advantages: [[Double]]
    }

    public let source: String
    public let step: Int
    public let methods: [String]
    public let rows: [Row]
    /// Methods not scored, with the reason (`lenient` scoring only).
    public let skipped: [(label: String, reason: String)]

    /// Reads `samples.jsonl` (errors name the file and line): every record with its step.
    public static func read(samples url: URL) throws -> [(step: Int, record: SampleRecord)] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw TrainingError("\(url.path): cannot read the file") }
        struct Step: Decodable { var step: Int }
        return try text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { n, line -> (step: Int, record: SampleRecord)? in
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            let data = Data(line.utf8)
            do {
                return (try JSONDecoder().decode(Step.self, from: data).step, try JSONDecoder().decode(SampleRecord.self, from: data))
            } catch {
                throw TrainingError("\(url.path):\(n + 1): not a samples.jsonl record (\((error as? DecodingError).map(DecodingErrorText.describe) ?? "\(error)"))")
            }
        }
    }

    /// The step a side-by-side shows by default: the last one where a recorded group's rewards
    /// differ (elsewhere outcome methods give every token 0), else the last step.
    public static func informativeStep(_ records: [(step: Int, record: SampleRecord)]) -> Int? {
        let steps = Set(records.map(\.step)).sorted()
        return steps.last { s in
            Dictionary(grouping: records.filter { $0.step == s }.map(\.record), by: \.group).values.contains { Set($0.map(\.reward)).count > 1 }
        } ?? steps.last
    }

    /// Scores step `step`'s whole groups with every method. A method reading an input the run did not
    /// record is an error naming it, or (`lenient`) is listed in `skipped` with that reason.
    public init(records: [(step: Int, record: SampleRecord)], step: Int, methods: [Method], source: String, lenient: Bool = false) throws {
        let here = "\(source) step \(step)"
        let atStep = records.filter { $0.step == step }.map(\.record)
        guard !atStep.isEmpty else {
            let steps = Set(records.map(\.step)).sorted()
            throw TrainingError("\(source): no records at step \(step) (steps recorded: \(steps.isEmpty ? "none" : "\(steps.first!)…\(steps.last!)"))")
        }
        guard atStep.allSatisfy({ $0.credit != nil }) else {
            throw TrainingError("\(here): the records carry no credit inputs ('credit'): the run was written by an older Tokenwise; train it again to compare credit on it")
        }
        // Whole groups only, in file order.
        var groups = [[SampleRecord]]()
        for r in atStep { if groups.last?.first?.group == r.group { groups[groups.count - 1].append(r) } else { groups.append([r]) } }
        groups = groups.filter { $0.count == $0[0].credit!.groupSize }
        guard !groups.isEmpty else { throw TrainingError("\(here): no whole group is recorded (raise output.samples_per_step to a group's size)") }
        let batch = CreditBatch(groups: groups.map { g in Credit.Group(id: "p\(g[0].group)", trajectories: g.map(\.trajectory), positionScores: g[0].credit!.positionScores) },
                                progress: groups[0][0].credit!.progress)
        var scored = [(String, [[Double]])](), skipped = [(label: String, reason: String)]()
        for m in methods {
            if let missing = m.config.inputs.sorted().first(where: { i in !groups.allSatisfy { $0.allSatisfy { $0.credit!.has(i) } } }) {
                let why = "\(m.label) (credit.method \(m.config.method.rawValue)) reads \(missing.summary), which \(here) does not record: "
                    + "the run computed none (its own method and options did not read them); compare it on a run that computes them"
                if lenient { skipped.append((m.label, why)); continue }
                throw TrainingError(why)
            }
            do {
                // What the loss receives per token: the advantage times the token's weight (a mask, a TW-GRPO position weight).
                let r = try m.config.estimator.estimate(batch)
                scored.append((m.label, zip(r.advantages.flatMap { $0 }, r.weights.flatMap { $0 }).map { a, w in zip(a, w).map { $0 * $1 } }))
            } catch let e as CreditError { throw TrainingError("\(here): \(m.label): \(e.message)") }
        }
        let flat = groups.flatMap { $0 }
        self.source = source
        self.step = step
        self.methods = scored.map(\.0)
        self.skipped = skipped
        rows = flat.enumerated().map { j, r in
            Row(group: r.group, reward: r.trajectory.reward, pieces: r.pieces, logprobs: r.logprobs, entropies: r.entropies, actionMask: r.actionMask, advantages: scored.map { $0.1[j] })
        }
    }
}
