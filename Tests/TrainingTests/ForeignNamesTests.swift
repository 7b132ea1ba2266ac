import Foundation
import XCTest
@testable import Training

/// A config written with TRL's, verl's or OpenRLHF's names is refused with the key to use, and
/// every Tokenwise key the table names exists.
final class ForeignNamesTests: XCTestCase {
    func error(_ yaml: String) -> String { do { _ = try RunConfig.load(yaml: yaml); return "no error" } catch { return "\(error)" } }

    func testForeignNamesPointToOurs() {
        XCTAssertTrue(error("optim: {learning_rate: 1e-4}").hasSuffix("; TRL's `learning_rate` is `optim.lr` here"), error("optim: {learning_rate: 1e-4}"))
        XCTAssertTrue(error("train: {num_generations: 4}").contains("unknown key 'train.num_generations'"))
        XCTAssertTrue(error("train: {num_generations: 4}").hasSuffix("TRL's `num_generations` is `train.samples_per_prompt` here"))
        XCTAssertTrue(error("max_completion_length: 64").hasSuffix("TRL's `max_completion_length` is `rollout.max_new_tokens` here"))
        XCTAssertTrue(error("objective: {kl_loss_coef: 0.1}").hasSuffix("verl's `actor_rollout_ref.actor.kl_loss_coef` is `objective.kl_coef` here"))
        XCTAssertTrue(error("train: {n_samples_per_prompt: 8}").hasSuffix("OpenRLHF's `--n_samples_per_prompt` is `train.samples_per_prompt` here"))
        XCTAssertTrue(error("actor_rollout_ref: {actor: {ppo_epochs: 2}}").hasSuffix("`actor_rollout_ref` is a section of verl's config; docs/config.md maps verl's names to Tokenwise's"))
        XCTAssertTrue(error("objective: {beta: 0.04}").hasSuffix("TRL's `beta` is `objective.kl_coef` here"))
        // A plain typo gets no hint.
        XCTAssertTrue(error("optim: {lrr: 1}").contains("unknown key 'optim.lrr'"))
        XCTAssertFalse(error("optim: {lrr: 1}").contains(" here"), error("optim: {lrr: 1}"))
    }

    func testEveryTokenwiseKeyInTheTableExists() throws {
        let keys = try RunConfig().flattened().keys
        for r in ForeignNames.rows {
            XCTAssertTrue(keys.contains { $0 == r.ours || $0.hasPrefix(r.ours + ".") } || r.ours.hasPrefix("objective.aggregation"), "\(r.ours) is not a config key")
        }
    }
}
