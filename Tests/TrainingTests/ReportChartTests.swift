import Foundation
import XCTest
@testable import Training

/// The report's panels: round ticks, the reward's ± std band, and curves that never move folded
/// into one line.
final class ReportChartTests: FolderTestCase {
    func testTicksAreRound() {
        XCTAssertEqual(Report.ticks(0, 1), [0, 0.5, 1])            // span 1: 0.25 a tick rounds up to 0.5
        XCTAssertEqual(Report.ticks(3, 17), [0, 5, 10, 15, 20])     // 3.5 → 5
        XCTAssertEqual(Report.ticks(1, 16), [0, 5, 10, 15, 20])
        XCTAssertEqual(Report.ticks(-0.03, 0.07), [-0.05, 0, 0.05, 0.1])   // 0.1/4 = 0.025 → 0.05
        XCTAssertEqual(Report.ticks(1, 4), [1, 2, 3, 4])
        // Tiny values keep their ticks (an approximate KL of 1e-13 is not all zeros).
        XCTAssertEqual(Report.ticks(0, 4e-13).map { ($0 * 1e13).rounded() }, [0, 1, 2, 3, 4])
    }

    func testPanelsOfARun() throws {
        let dir = root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("model: {path: tiny-random}\noptim: {lr: 0.005, weight_decay: 0.0}\nrollout: {temperature: 1.0}\n".utf8).write(to: dir.appendingPathComponent("config.yaml"))
        for step in 1...4 {
            try JSONLines.append(["step": step, "reward_mean": 0.1 * Double(step), "reward_std": 0.05, "clip_fraction_low": 0, "clip_fraction_high": 0,
                                  "loss": 1.0 / Double(step), "self_reward_accuracy": 0.5 + 0.1 * Double(step),
                                  "credit_gigpo_step_group_size_mean": 1 + 0.5 * Double(step), "credit_gigpo_step_groups": 3], to: dir.appendingPathComponent("metrics.jsonl"))
        }
        let html = try Report.render(run: dir)
        XCTAssertTrue(html.contains("aria-label=\"reward (mean)\""))
        XCTAssertTrue(html.contains("class=band"), "the reward's ± std band")
        XCTAssertTrue(html.contains("aria-label=\"LaSeR self-reward accuracy\""))
        // Flat for the whole run: one line, no panel.
        XCTAssertFalse(html.contains("aria-label=\"clip fraction (low)\""))
        XCTAssertTrue(html.contains("The same at every step (not drawn): clip fraction (low) 0 · clip fraction (high) 0"), html)
        // Steps along x, round values along y.
        XCTAssertTrue(html.contains(">step</text>"))
        XCTAssertTrue(html.contains("class=ay>0.5</text>"), "a round y tick")
        XCTAssertEqual(html.components(separatedBy: "<polygon").count - 1, 1, "only the reward has a band")
        // The credit method's diagnostics: drawn when they move, folded into the line when flat.
        XCTAssertTrue(html.contains("<h2>Credit diagnostics</h2>"))
        XCTAssertTrue(html.contains("aria-label=\"gigpo step group size mean\""), html)
        XCTAssertTrue(html.contains("gigpo step groups 3"))
        // The settings: headline ones always, others only where they leave the defaults.
        XCTAssertTrue(html.contains("<tr><td><code>model.path</code></td><td>tiny-random</td><td>default</td></tr>"), html)
        XCTAssertTrue(html.contains("<tr><td><code>optim.lr</code></td><td>0.005</td><td>1e-05</td></tr>"), html)
        XCTAssertTrue(html.contains("<tr><td><code>rollout.temperature</code></td><td>1.0</td><td>1.0</td></tr>"), "a headline setting at its default")
        XCTAssertFalse(html.contains("<code>optim.weight_decay</code>"), "a setting at its default is left out")
    }
}
