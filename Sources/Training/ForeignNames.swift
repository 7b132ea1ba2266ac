/// What TRL (`GRPOConfig` and its `TrainingArguments`), verl (its trainer YAML) and OpenRLHF (its
/// command-line flags) call a Tokenwise option: the manual's table, and the hint an unknown key gets
/// when it is one of their names.
public enum ForeignNames {
    public struct Row: Sendable {
        public let ours: String, trl: String?, verl: String?, openrlhf: String?
        /// Where the other tool's option means something a little different.
        public let note: String?
    }

    public static let rows: [Row] = [
        Row(ours: "optim.lr", trl: "learning_rate", verl: "actor_rollout_ref.actor.optim.lr", openrlhf: "--actor_learning_rate", note: nil),
        Row(ours: "optim.weight_decay", trl: "weight_decay", verl: "actor_rollout_ref.actor.optim.weight_decay", openrlhf: "--l2", note: nil),
        Row(ours: "optim.max_grad_norm", trl: "max_grad_norm", verl: "actor_rollout_ref.actor.grad_clip", openrlhf: "--max_norm", note: nil),
        Row(ours: "optim.warmup_steps", trl: "warmup_steps", verl: "actor_rollout_ref.actor.optim.lr_warmup_steps", openrlhf: nil,
            note: "OpenRLHF gives a ratio, --lr_warmup_ratio"),
        Row(ours: "optim.schedule", trl: "lr_scheduler_type", verl: "actor_rollout_ref.actor.optim.warmup_style", openrlhf: nil, note: nil),
        Row(ours: "train.steps", trl: "max_steps", verl: "trainer.total_training_steps", openrlhf: nil, note: "OpenRLHF counts --num_episodes over the prompt set"),
        Row(ours: "train.samples_per_prompt", trl: "num_generations", verl: "actor_rollout_ref.rollout.n", openrlhf: "--n_samples_per_prompt", note: nil),
        Row(ours: "train.prompts_per_step", trl: nil, verl: "data.train_batch_size", openrlhf: "--rollout_batch_size",
            note: "TRL sizes a step in completions (per_device_train_batch_size × devices × gradient steps)"),
        Row(ours: "train.epochs", trl: "num_iterations", verl: "actor_rollout_ref.actor.ppo_epochs", openrlhf: "--max_epochs",
            note: "TRL's num_train_epochs means passes over the dataset, not PPO epochs"),
        Row(ours: "train.mini_batches", trl: nil, verl: "actor_rollout_ref.actor.ppo_mini_batch_size", openrlhf: "--train_batch_size",
            note: "verl and OpenRLHF give the mini-batch's size; Tokenwise gives how many mini-batches a step splits into"),
        Row(ours: "train.micro_batch", trl: nil, verl: "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", openrlhf: "--micro_train_batch_size", note: nil),
        Row(ours: "train.dynamic_sampling", trl: nil, verl: "algorithm.filter_groups.enable", openrlhf: "--dynamic_filtering", note: nil),
        Row(ours: "rollout.max_new_tokens", trl: "max_completion_length", verl: "data.max_response_length", openrlhf: "--generate_max_len", note: nil),
        Row(ours: "rollout.temperature", trl: "temperature", verl: "actor_rollout_ref.rollout.temperature", openrlhf: "--temperature", note: nil),
        Row(ours: "rollout.top_p", trl: "top_p", verl: "actor_rollout_ref.rollout.top_p", openrlhf: "--top_p", note: nil),
        Row(ours: "objective.kl_coef", trl: "beta", verl: "actor_rollout_ref.actor.kl_loss_coef", openrlhf: "--init_kl_coef",
            note: "OpenRLHF's coefficient is a KL penalty in the reward unless --use_kl_loss; Tokenwise's KL in the reward is credit.params.kl_coef"),
        Row(ours: "objective.kl_estimator", trl: nil, verl: "actor_rollout_ref.actor.kl_loss_type", openrlhf: "--kl_estimator", note: nil),
        Row(ours: "objective.eps_low", trl: "epsilon", verl: "actor_rollout_ref.actor.clip_ratio_low", openrlhf: "--eps_clip", note: nil),
        Row(ours: "objective.eps_high", trl: "epsilon_high", verl: "actor_rollout_ref.actor.clip_ratio_high", openrlhf: nil, note: nil),
        Row(ours: "objective.aggregation", trl: "loss_type", verl: "actor_rollout_ref.actor.loss_agg_mode", openrlhf: nil,
            note: "values: token_mean (TRL dapo, verl token-mean), seq_mean_token_mean (TRL grpo), seq_mean_token_sum_norm (TRL dr_grpo)"),
        Row(ours: "objective.entropy_coef", trl: nil, verl: "actor_rollout_ref.actor.entropy_coeff", openrlhf: "--entropy_loss_coef", note: nil),
        Row(ours: "credit.params.std_normalize", trl: "scale_rewards", verl: "algorithm.norm_adv_by_std_in_grpo", openrlhf: nil, note: nil),
        Row(ours: "credit.method", trl: nil, verl: "algorithm.adv_estimator", openrlhf: "--advantage_estimator", note: nil),
        Row(ours: "output.checkpoint_every", trl: "save_steps", verl: "trainer.save_freq", openrlhf: "--save_steps", note: nil),
        Row(ours: "output.keep_checkpoints", trl: "save_total_limit", verl: "trainer.max_actor_ckpt_to_keep", openrlhf: "--max_ckpt_num", note: nil),
        Row(ours: "eval.every", trl: "eval_steps", verl: "trainer.test_freq", openrlhf: "--eval_steps", note: nil),
        Row(ours: "train.seed", trl: "seed", verl: nil, openrlhf: "--seed", note: "rollout.seed seeds the sampling"),
    ]

    /// The Tokenwise key a foreign option name stands for, with whose name it is: matched on the
    /// whole name (`learning_rate`, `--eps_clip`, `actor_rollout_ref.actor.kl_loss_coef`) or, for
    /// verl, on its last part when that part is not a Tokenwise name too.
    public static func hint(for key: String) -> String? {
        let bare = key.hasPrefix("--") ? String(key.dropFirst(2)) : key
        let last = String(bare.split(separator: ".").last ?? "")
        if ["actor_rollout_ref", "algorithm", "trainer"].contains(bare) {
            return "`\(bare)` is a section of verl's config; docs/config.md maps verl's names to Tokenwise's"
        }
        for r in rows {
            if let t = r.trl, t == bare || t == last { return "TRL's `\(t)` is `\(r.ours)` here" }
            if let o = r.openrlhf, o.dropFirst(2) == bare || o.dropFirst(2) == last { return "OpenRLHF's `\(o)` is `\(r.ours)` here" }
            if let v = r.verl, v == bare || (v.split(separator: ".").last.map(String.init) == last && !ours.contains(last)) {
                return "verl's `\(v)` is `\(r.ours)` here"
            }
        }
        return nil
    }

    /// The last parts of Tokenwise's own keys, which never count as foreign.
    static let ours: Set<String> = Set(rows.map { String($0.ours.split(separator: ".").last!) } + ["lr", "temperature", "top_p", "seed", "n"])

    /// The manual's table.
    public static var markdown: String {
        func cell(_ s: String?) -> String { s.map { "`\($0)`" } ?? "—" }
        var out = "| Tokenwise | TRL | verl | OpenRLHF | note |\n| --- | --- | --- | --- | --- |\n"
        for r in rows { out += "| `\(r.ours)` | \(cell(r.trl)) | \(cell(r.verl)) | \(cell(r.openrlhf)) | \(r.note ?? "") |\n" }
        return out
    }
}
