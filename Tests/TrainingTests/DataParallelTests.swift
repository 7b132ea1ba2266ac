import XCTest
@testable import Training

final class DataParallelTests: XCTestCase {
    func testTorchrunsContractIsReadAndEveryBadVariableNamed() throws {
        XCTAssertNil(try DistributedEnvironment.read([:]))
        let e = try XCTUnwrap(try DistributedEnvironment.read(["WORLD_SIZE": "4", "RANK": "3", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1",
                                                               "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "29400",
                                                               "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "2",
                                                               "TOKENWISE_DIST_TIMEOUT": "90"]))
        XCTAssertEqual(e, DistributedEnvironment(rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddress: "10.0.0.5", masterPort: 29400,
                                                 agentStore: true, restartCount: 2, timeout: 90))
        XCTAssertFalse(e.loopback)
        // Without torchrun's optional variables: one machine, loopback, rank 0 hosts the store.
        let plain = try XCTUnwrap(try DistributedEnvironment.read(["WORLD_SIZE": "2", "RANK": "1"]))
        XCTAssertEqual([plain.localRank, plain.localWorldSize, plain.masterPort], [1, 2, 29500])
        XCTAssertTrue(plain.loopback)
        XCTAssertFalse(plain.agentStore)
        for (env, message) in [
            (["WORLD_SIZE": "2"], "RANK is not set (WORLD_SIZE is, so this process is one rank of a distributed run"),
            (["WORLD_SIZE": "two", "RANK": "0"], "WORLD_SIZE='two' is not an integer in 1…65536"),
            (["WORLD_SIZE": "2", "RANK": "2"], "RANK='2' is not an integer in 0…1"),
            (["WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "70000"], "MASTER_PORT='70000' is not an integer in 1…65535"),
            (["WORLD_SIZE": "2", "RANK": "0", "TOKENWISE_DIST_TIMEOUT": "-1"], "TOKENWISE_DIST_TIMEOUT='-1' is not a positive number of seconds"),
        ] {
            XCTAssertThrowsError(try DistributedEnvironment.read(env)) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }

    func testStepMetricsMergeAsOneProcessWouldCompute() {
        // Rank 0: rewards [1, 0] (mean 0.5, std 0.5); rank 1: rewards [1, 1, 1, 0] (mean 0.75, std √0.1875).
        let a: [String: Double] = ["reward_mean": 0.5, "reward_std": 0.5, "groups_sampled": 1, "rollout_seconds": 2, "lr": 1e-3, "rollout_tokens_per_second": 10]
        let b: [String: Double] = ["reward_mean": 0.75, "reward_std": 0.1875.squareRoot(), "groups_sampled": 2, "rollout_seconds": 3, "lr": 1e-3,
                                   "rollout_tokens_per_second": 30]
        let m = MetricMerge.step([a, b], weights: [2, 4])
        // All six rewards [1, 0, 1, 1, 1, 0]: mean 4/6, population std √(4/6 − 16/36) = √(2/9).
        XCTAssertEqual(m["reward_mean"]!, 4.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(m["reward_std"]!, (2.0 / 9).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(m["groups_sampled"], 3)
        XCTAssertEqual(m["rollout_seconds"], 3)
        XCTAssertEqual(m["rollout_tokens_per_second"], 40)
        XCTAssertEqual(m["lr"], 1e-3)
        // An update's parts add up; its extremes are over ranks.
        let u = MetricMerge.update([["loss": 0.25, "ratio_max": 1.5, "ratio_min": 0.9], ["loss": 0.5, "ratio_max": 1.2, "ratio_min": 0.7]])
        XCTAssertEqual(u, ["loss": 0.75, "ratio_max": 1.5, "ratio_min": 0.7])
    }
}
