import Foundation
import Testing
@testable import Environments

/// FrozenLake and Sokoban against hand-played episodes, their generators' guarantees, and action parsing.
@Suite struct GridWorldTests {
    let lake = ["SFFF", "FHFH", "FFFH", "HFFG"]

    @Test func movesAreReadFromTheActionText() {
        #expect(Move.parse("up") == .up)
        #expect(Move.parse(" Left. ") == .left)
        #expect(Move.parse("I think <action>DOWN</action> is best") == .down)
        #expect(Move.parse("move up") == nil)
        #expect(Move.parse("<action>jump</action>") == nil)
        #expect(Move.parse("") == nil)
        // Not strict: the first move word in a loose answer.
        #expect(Move.parse("what do I do is I go up", strict: false) == .up)
        #expect(Move.parse("it's left, then down", strict: false) == .left)
        #expect(Move.parse("upward", strict: false) == nil)
        #expect(Move.parse("To move a directionally", strict: false) == nil)
    }

    @Test func frozenLakeHandPlayed() throws {
        let env = try FrozenLake(.init(map: lake))
        let start = try env.reset(seed: 1)
        #expect(start.text == "PFFF\nFHFH\nFFFH\nHFFG\nP: row 1, column 1. G: row 4, column 4.\n" + FrozenLake.question)
        #expect(start.stateKey == "0,0")
        var last: StepOutcome?
        for (k, move) in ["down", "down", "right", "right", "down", "right"].enumerated() {
            last = try env.step(move)
            #expect(last!.valid)
            #expect(last!.done == (k == 5), "move \(k)")
        }
        #expect(last == StepOutcome(observation: nil, reward: 1, done: true, success: true, info: ["moved": "right"]))
        // Into the hole at (1, 1): done, no reward.
        _ = try env.reset(seed: 1)
        #expect(try env.step("right").observation == Observation(text: "SPFF\nFHFH\nFFFH\nHFFG\nP: row 1, column 2. G: row 4, column 4.", stateKey: "0,1"))
        let fall = try env.step("down")
        #expect(fall.done && !fall.success && fall.reward == 0 && fall.observation == nil)
        // The edge stops a move; a word that is not a move costs the penalty and changes nothing.
        _ = try env.reset(seed: 1)
        #expect(try env.step("left").observation?.stateKey == "0,0")
        #expect(try env.step("I would go right").observation?.stateKey == "0,1", "loose answers move unless strict_actions")
        _ = try env.reset(seed: 1)
        let bad = try env.step("jump")
        #expect(!bad.valid && !bad.done && bad.reward == -0.1 && bad.observation?.stateKey == "0,0")
    }

    /// `distance_reward`: each move pays the distance to G it closed; a wall, a step back and a hole
    /// are hand-counted, and the success path's shaping sums to the start's distance (6 × 0.1).
    @Test func frozenLakeDistanceRewardIsADifferenceOfPotentials() throws {
        let env = try FrozenLake(.init(distanceReward: 0.1, map: lake))
        _ = try env.reset(seed: 1)
        var rewards = [Double]()
        for move in ["down", "down", "right", "right", "down", "right"] { rewards.append(try env.step(move).reward) }
        #expect(zip(rewards, [0.1, 0.1, 0.1, 0.1, 0.1, 1.1]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(rewards)")
        _ = try env.reset(seed: 1)
        #expect(try env.step("left").reward == 0, "a wall leaves the distance as it is")
        #expect(abs(try env.step("right").reward - 0.1) < 1e-12)
        #expect(abs(try env.step("left").reward + 0.1) < 1e-12, "a step away costs as much")
        _ = try env.reset(seed: 1)
        _ = try env.step("right")
        let fall = try env.step("down")
        #expect(fall.done && !fall.success && abs(fall.reward - 0.1) < 1e-12, "a hole ends the episode with the move's shaping only")
        #expect(throws: EnvironmentError("frozenlake: 'distance_reward' must be in [0, 1] (0: none), got -0.5")) {
            try FrozenLake(.init(distanceReward: -0.5))
        }
        // Off by default: the plain 0/1 reward.
        let plain = try FrozenLake(.init(map: lake))
        _ = try plain.reset(seed: 1)
        #expect(try plain.step("down").reward == 0)
    }

    @Test func slipperyIceSlidesAThirdOfTheTimeEachWay() throws {
        let env = try FrozenLake(.init(slippery: true, map: ["SFFFFFFF"] + Array(repeating: "FFFFFFFF", count: 6) + ["FFFFFFFG"]))
        var counts: [String: Int] = [:]
        for seed in 0..<600 {
            _ = try env.reset(seed: UInt64(seed))
            _ = try env.step("down")
            _ = try env.step("right")   // from (1, 0) or (0, 0): intended right, or up / down
            counts[try env.step("down").info["moved"]!, default: 0] += 1
        }
        for (move, n) in counts { #expect(abs(Double(n) / 600 - 1.0 / 3) < 0.07, "\(move): \(n)") }
        #expect(Set(counts.keys) == ["down", "left", "right"])
    }

    @Test func slipsAreDrawnPerEpisodeOnTheSeedsMap() throws {
        let env = try FrozenLake(.init(size: 6, slippery: true, frozenProbability: 1))
        func slips(_ seed: UInt64, _ episode: UInt64) throws -> (map: String, moved: [String]) {
            let map = try env.reset(seed: seed, episode: episode).text
            return (map, try (0..<12).map { _ in try env.step("down").info["moved"] ?? "" })
        }
        let a = try slips(7, 0), again = try slips(7, 0)
        #expect(a.moved == again.moved, "one seed and episode replay exactly")
        var distinct = Set([a.moved])
        for episode in 1..<8 {
            let b = try slips(7, UInt64(episode))
            #expect(b.map == a.map, "the seed alone draws the map")
            distinct.insert(b.moved)
        }
        #expect(distinct.count >= 7, "episodes of one seed slip differently: \(distinct.count) distinct of 8")
    }

    @Test func randomLakesAlwaysHaveAPathAndRepeatBySeed() throws {
        for size in 4...8 {
            let env = try FrozenLake(.init(size: size))
            for seed in 0..<40 {
                let a = try env.reset(seed: UInt64(seed)).text
                #expect(FrozenLake.hasPath(env.map), "size \(size) seed \(seed)")
                #expect(try env.reset(seed: UInt64(seed)).text == a)
            }
        }
        #expect(throws: EnvironmentError("frozenlake: 'size' must be 4…8, got 9")) { try FrozenLake(.init(size: 9)) }
        #expect(throws: EnvironmentError("frozenlake: 'map' must use S, F, H, G only, start with S at the top left and have one G")) {
            try FrozenLake(.init(map: ["SF", "FX"]))
        }
    }

    @Test func sokobanHandPlayed() throws {
        let text = "#######\n#PX_O_#\n#######"
        let level = try #require(Sokoban.parse(text))
        #expect(Sokoban.render(level) == text)
        #expect(Sokoban.solve(level, limit: 1000) == [.right, .right])
        let env = try Sokoban()
        _ = env.reset(level: level)
        let first = try env.step("right")
        #expect(first.observation?.text == "#######\n#_PXO_#\n#######\n" + Sokoban.question)
        let second = try env.step("right")
        #expect(second.done && second.success && second.reward == 1)
        // A box against a wall does not move; pulling is impossible.
        _ = env.reset(level: try #require(Sokoban.parse("#####\n#PX##\n#_O_#\n#####")))
        let blocked = try env.step("right")
        #expect(blocked.valid && !blocked.done && blocked.info["blocked"] == "right")
        #expect(Sokoban.solve(try #require(Sokoban.parse("#####\n#PX##\n#_O_#\n#####")), limit: 10_000) == nil)
        #expect(Sokoban.parse("#P#\n#X") == nil)
    }

    @Test func shapedRewardsAsGymSokoban() throws {
        let env = try Sokoban(.init(shaped: true))
        _ = env.reset(level: try #require(Sokoban.parse("#######\n#PX_O_#\n#######")))
        #expect(abs(try env.step("right").reward - -0.1) < 1e-12)
        #expect(abs(try env.step("right").reward - (-0.1 + 1 + 10)) < 1e-12)
    }

    /// Every generated room, over sizes and box counts, is solvable by the breadth-first solver and
    /// starts unsolved; the same seed gives the same room.
    @Test func everyGeneratedRoomIsSolvable() throws {
        for (size, boxes) in [(4, 1), (5, 1), (5, 2), (6, 2)] {
            let env = try Sokoban(.init(size: size, boxes: boxes))
            for seed in 0..<25 {
                let start = try env.reset(seed: UInt64(seed))
                let level = try #require(env.level)
                #expect(!level.solved)
                let path = try #require(Sokoban.solve(level, limit: 200_000), "size \(size) boxes \(boxes) seed \(seed)")
                var outcome: StepOutcome?
                for m in path { outcome = try env.step(m.rawValue) }
                #expect(outcome?.success == true, "replaying the solution solves it")
                #expect(try env.reset(seed: UInt64(seed)) == start)
            }
        }
    }
}
