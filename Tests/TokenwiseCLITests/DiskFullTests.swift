import Foundation
import XCTest

/// A run whose output folder fills up stops with a message that says so, leaves no half-written
/// checkpoint, and keeps the last complete one: copied to a disk with room, the run resumes from it
/// and ends with the same metrics as a run that never ran out of space.
extension CLITests {
    func testFullDiskStopsClearlyAndKeepsTheLastCheckpoint() throws {
        let root = try temporary()
        let disk = root.appendingPathComponent("small-disk")
        try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
        // A 700 KiB tmpfs holds about three checkpoints of the tiny preset.
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=700k", "tmpfs", disk.path]
        mount.standardError = FileHandle.nullDevice
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { throw XCTSkip("mounting a small tmpfs needs root (this is not)") }
        addTeardownBlock {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = [disk.path]
            try? umount.run()
            umount.waitUntilExit()
        }
        let args = ["--preset", "tiny", "--threads", "1", "--quiet", "--set", "train.steps=8", "--set", "output.checkpoint_every=1",
                    "--set", "output.keep_checkpoints=3", "--set", "output.save_model=false", "--set", "eval.before=false"]
        let run = disk.appendingPathComponent("run")
        let full = try tokenwise(["train", "--out", run.path] + args)
        XCTAssertEqual(full.status, 1, full.stderr)
        XCTAssertTrue(full.stderr.contains("the disk is full: step "), full.stderr)
        XCTAssertTrue(full.stderr.contains("No space left on device"), full.stderr)
        XCTAssertTrue(full.stderr.contains("Free space, then continue with: tokenwise train --resume \(run.path)"), full.stderr)
        XCTAssertFalse(full.stderr.contains("NSCocoaErrorDomain"), full.stderr)
        let names = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)
        XCTAssertFalse(names.contains { $0.hasPrefix(".") }, "a half-written checkpoint was left: \(names)")
        let last = try XCTUnwrap(names.compactMap { Int($0.replacingOccurrences(of: "step-", with: "")) }.max())
        XCTAssertTrue(full.stderr.contains("the last complete checkpoint is \(run.path)/checkpoints/step-\(last) (step \(last))"), full.stderr)
        XCTAssertLessThan(last, 8)

        let moved = root.appendingPathComponent("moved")
        try FileManager.default.copyItem(at: run, to: moved)
        let resumed = try tokenwise(["train", "--resume", moved.path, "--threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resuming \(moved.path) after step \(last)"), resumed.stdout)
        let whole = root.appendingPathComponent("whole")
        XCTAssertEqual(try tokenwise(["train", "--out", whole.path] + args).status, 0)
        XCTAssertEqual(replayable(moved).count, 8)
        XCTAssertEqual(replayable(moved), replayable(whole))
    }

    /// At lr 1e3 the gradient norm reached 6.9e18 while the run exited 0 in silence; the warning is
    /// printed under --quiet too (it goes to stderr, progress does not).
    func testAnExplodingGradientIsWarnedAbout() throws {
        let run = try temporary().appendingPathComponent("run")
        let r = try tokenwise(["train", "--preset", "tiny", "--out", run.path, "--quiet", "--threads", "1", "--set", "optim.lr=1e3",
                               "--set", "train.steps=6", "--set", "output.save_model=false", "--set", "eval.before=false"])
        XCTAssertTrue(r.stderr.contains("the run looks divergent; lower optim.lr (1000.0)"), r.stderr)
        XCTAssertEqual(r.stderr.components(separatedBy: "looks divergent").count, 2, "said once")
        let calm = try tokenwise(["train", "--preset", "tiny", "--out", run.path + "-calm", "--quiet", "--threads", "1",
                                  "--set", "output.save_model=false", "--set", "eval.before=false"])
        XCTAssertFalse(calm.stderr.contains("divergent"), calm.stderr)
    }
}
