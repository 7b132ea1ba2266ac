import Credit
import Rollout

/// Tree rollouts (SPO-tree): each prompt's group is the leaves of one sampled tree, so responses
/// share real prefixes. As a source it samples the trees; as a provider it supplies each
/// trajectory's `tree_path` and node starts (`segments`).
struct TreeRollouts: RolloutSource, InputProvider {
    let sampler: Sampler
    let tree: TreeConfig

    func rollouts(_ prompts: [[Int]], _ sampling: SamplingConfig, _ schedule: TemperatureSchedule) throws -> [Rolled] {
        try prompts.enumerated().flatMap { p, prompt in
            try sampler.sampleTree(prompt: prompt, config: sampling, tree: tree, schedule: schedule).trajectories.map { t in
                var c = t.completion
                c.promptIndex = p
                return Rolled(completion: c, treePath: t.path, segments: t.segmentStarts)
            }
        }
    }

    func provide(_ inputs: inout StepInputs) throws {
        let rolled = inputs.rollouts.rolled
        inputs.fill { t, i in
            t.treePath = rolled[i].treePath
            t.segments = rolled[i].segments
        }
    }
}
