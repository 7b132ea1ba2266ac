import Foundation
import XCTest
@testable import Models
@testable import Torch
@testable import Training

/// `model.init_from`: a new run that starts from another run's checkpoint with changed settings.
final class ForkTests: FolderTestCase {

    func config(steps: Int = 4) -> RunConfig {
        var c = Preset.tiny.config
        c.train.steps = steps
        c.output.checkpointEvery = 2
        c.output.saveModel = false
        c.output.report = false
        c.optim.lr = 1e-2
        return c
    }

    func adapter(_ dir: URL) throws -> [String: [Float]] {
        let file = try Safetensors.File(url: dir.appendingPathComponent("adapter_model.safetensors"))
        return try withTorchErrors { try file.entries.keys.reduce(into: [:]) { $0[$1] = try file.tensor($1).toArray(Float.self) } }
    }

    func testAForkStartsFromTheCheckpointsWeightsWithItsOwnSettings() throws {
        let a = root.appendingPathComponent("a")
        try TrainingRun.start(config: config(), dir: a, console: .quiet).run()
        let step2 = Checkpoint.folder(a, step: 2)
        var c = config(steps: 2)
        c.optim.lr = 5e-3
        c.model.initFrom = step2.path
        let b = root.appendingPathComponent("b")
        let fork = try TrainingRun.start(config: c, dir: b, console: .quiet)
        // The fork's adapter is step 2's, not a fresh one (whose B matrices are 0) and not step 4's.
        let start = try withTorchErrors { try XCTUnwrap(fork.pretrained.model.lora).peftTensors.mapValues { try $0.toArray(Float.self) } }
        XCTAssertEqual(start, try adapter(step2))
        XCTAssertNotEqual(start, try adapter(Checkpoint.folder(a, step: 4)))
        XCTAssertEqual(fork.forkNotes.first, "starting from the weights of \(step2.path) (step 2); the optimizer state starts fresh")
        try fork.run()
        XCTAssertEqual(JSONLines.read(b.appendingPathComponent("metrics.jsonl")).count, 2)
        let written = try RunConfig.load(yaml: try String(contentsOf: b.appendingPathComponent("config.yaml"), encoding: .utf8), written: true)
        XCTAssertEqual(written.model.initFrom, step2.path)
        XCTAssertEqual(written.optim.lr, 5e-3)
    }

    func testBadForksAreRefusedBeforeTheFolderIsMade() throws {
        let a = root.appendingPathComponent("a")
        try TrainingRun.start(config: config(steps: 2), dir: a, console: .quiet).run()
        let step2 = Checkpoint.folder(a, step: 2)
        func error(_ from: URL, _ change: (inout RunConfig) -> Void = { _ in }) -> String {
            var c = config(steps: 1)
            c.model.initFrom = from.path
            change(&c)
            let dir = root.appendingPathComponent("bad-\(UUID().uuidString)")
            defer { XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path), "a refused fork leaves no folder") }
            do { _ = try TrainingRun.start(config: c, dir: dir, console: .quiet); return "no error" } catch { return "\(error)" }
        }
        let missing = a.appendingPathComponent("checkpoints/step-9")
        XCTAssertEqual(error(missing), "model.init_from \(missing.path): no such checkpoint folder (give RUN/checkpoints/step-N)")
        XCTAssertEqual(error(step2) { $0.model.lora = nil },
                       "model.init_from \(step2.path): a LoRA checkpoint (no model.safetensors), but this run trains every weight (set model.lora to its adapters to fork it)")
        XCTAssertTrue(error(step2) { $0.model.lora?.rank = 4 }.contains("has shape"), error(step2) { $0.model.lora?.rank = 4 })
        // A damaged checkpoint is not forked from.
        let file = step2.appendingPathComponent("adapter_model.safetensors")
        let bytes = try Data(contentsOf: file)
        try bytes.prefix(bytes.count - 7).write(to: file)
        XCTAssertEqual(error(step2), "model.init_from \(step2.path): step-2: adapter_model.safetensors has the wrong size (cut short?)")
    }
}
