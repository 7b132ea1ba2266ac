import Foundation
import Rewards

/// Data-parallel dynamic sampling. Every rank samples its share of each refill round and keeps
/// the groups whose rewards differ; the rounds' counts go to every rank, so all ranks draw the
/// same refills and stop at the same round (`StepRollouts.collect`). The kept groups then sit on
/// the ranks that sampled them, out of one process's order (round by round), so `spread` gathers
/// them and gives each rank a contiguous share of that order: credit, mini-batches and the update
/// see the groups one process would, in its order.
extension StepRollouts {
    /// One kept group, as it travels between ranks.
    struct KeptGroup: Codable {
        var round: Int, group: Int
        var sample: TaskSample
        var prompt: [Int]
        var rolled: [Rolled]
        var scores: [RewardScore]
    }

    /// Keeps only this rank's share of every rank's kept groups (in one process's order); returns
    /// how many groups the step keeps over all ranks.
    @discardableResult
    mutating func spread(_ dp: DataParallel) throws -> Int {
        let mine = kept.map { p in
            KeptGroup(round: roundOf[p], group: groupOf[p], sample: samples[p], prompt: prompts[p], rolled: rolloutsOf[p].map { rolled[$0] },
                      scores: rolloutsOf[p].map { scores[$0] })
        }
        let all = try dp.gather(mine)
        let order = keptPerRound.indices.flatMap { k in all.flatMap { $0.filter { $0.round == k } } }
        let share = dp.share(order.count)
        var out = StepRollouts()
        out.seconds = seconds
        out.extra = extra
        out.keptPerRound = keptPerRound
        for (p, g) in order[share].enumerated() {
            out.samples.append(g.sample)
            out.prompts.append(g.prompt)
            out.roundOf.append(g.round)
            out.groupOf.append(g.group)
            out.rolloutsOf.append(Array(out.rolled.count..<(out.rolled.count + g.rolled.count)))
            for var one in g.rolled {
                one.completion.promptIndex = p
                out.rolled.append(one)
            }
            out.scores += g.scores
            out.kept.append(p)
        }
        self = out
        return order.count
    }
}
