import Credit
import Foundation
import Models
import Torch

/// A run's checkpoints: `checkpoints/step-N/` in Hugging Face format (a PEFT adapter, or the whole
/// model when every weight trains) plus `optimizer.safetensors`, `trainer_state.json` and, written
/// last, `manifest.json` with every file's size and FNV-1a hash. A checkpoint is built in a
/// temporary folder and renamed into place, so a crash never leaves a half one under its name; a
/// damaged one (a file changed, cut short or missing) fails `verify` and is skipped.
public enum Checkpoint {
    public struct State: Codable, Equatable, Sendable {
        public var step: Int
        public var seed: UInt64
        /// The trainer's entropy statistics for the next step's adaptive temperature.
        public var entropyStatistics: HAPO.EntropyStatistics?
        /// What the steps so far spent of the run's budgets (absent in older checkpoints: 0).
        public var rolloutTokens: Double?
        public var seconds: Double?
        /// AEPO's threshold and per-bucket α after this step.
        var aepo: AEPO.State?

        public init(step: Int, seed: UInt64, entropyStatistics: HAPO.EntropyStatistics? = nil, rolloutTokens: Double? = nil, seconds: Double? = nil) {
            self.step = step; self.seed = seed; self.entropyStatistics = entropyStatistics
            self.rolloutTokens = rolloutTokens; self.seconds = seconds
        }

        enum CodingKeys: String, CodingKey { case step, seed, rolloutTokens = "rollout_tokens", seconds, entropyStatistics = "entropy_statistics", aepo }
    }

    public static func folder(_ run: URL, step: Int) -> URL { run.appendingPathComponent("checkpoints/step-\(step)") }

    /// Writes the trained weights and the optimizer state as `checkpoints/step-<step>`.
    public static func write(run: URL, state: State, pretrained: Pretrained, optimizer: AdamW, critic: Critic? = nil) throws {
        try write(run: run, state: state, pretrained: pretrained, optimizer: optimizer, critic: critic, prm: nil)
    }

    /// … with iStar's process reward model beside the policy (`prm.safetensors`).
    static func write(run: URL, state: State, pretrained: Pretrained, optimizer: AdamW, critic: Critic?, prm: ImplicitPRM?) throws {
        let step = state.step
        let fm = FileManager.default
        let parent = run.appendingPathComponent("checkpoints")
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = parent.appendingPathComponent(".step-\(step).tmp")
        try? fm.removeItem(at: tmp)
        do {
            try fill(tmp, state: state, pretrained: pretrained, optimizer: optimizer, critic: critic, prm: prm)
        } catch {
            // A failed write (a full disk) leaves nothing half-made beside the complete checkpoints.
            try? fm.removeItem(at: tmp)
            throw error
        }
        let final = folder(run, step: step)
        try? fm.removeItem(at: final)
        try fm.moveItem(at: tmp, to: final)
    }

    static func fill(_ tmp: URL, state: State, pretrained: Pretrained, optimizer: AdamW, critic: Critic?, prm: ImplicitPRM? = nil) throws {
        if let lora = pretrained.model.lora {
            try lora.save(to: tmp)
        } else {
            try pretrained.save(to: tmp)
        }
        try optimizer.save(to: tmp.appendingPathComponent("optimizer.safetensors"))
        try critic?.save(to: tmp)
        try prm?.save(to: tmp)
        try JSONEncoder().encode(state).write(to: tmp.appendingPathComponent("trainer_state.json"))
        var files: [String: [String: String]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: tmp.path).sorted() {
            let url = tmp.appendingPathComponent(name)
            files[name] = ["bytes": String(try size(url)), "fnv1a64": try hash(url)]
        }
        try JSONSerialization.data(withJSONObject: ["files": files], options: [.prettyPrinted, .sortedKeys])
            .write(to: tmp.appendingPathComponent("manifest.json"))
    }

    /// The checkpoint's state, or an error saying what is wrong with it.
    public static func verify(_ dir: URL) throws -> State {
        let manifestURL = dir.appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: manifestURL.path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let files = obj["files"] as? [String: [String: String]] else {
            throw TrainingError("\(dir.lastPathComponent): manifest.json is missing or unreadable (an unfinished checkpoint)")
        }
        for (name, entry) in files.sorted(by: { $0.key < $1.key }) {
            let url = dir.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { throw TrainingError("\(dir.lastPathComponent): \(name) is missing") }
            guard String(try size(url)) == entry["bytes"] else { throw TrainingError("\(dir.lastPathComponent): \(name) has the wrong size (cut short?)") }
            guard try hash(url) == entry["fnv1a64"] else { throw TrainingError("\(dir.lastPathComponent): \(name) does not match its hash (damaged)") }
        }
        guard let stateData = FileManager.default.contents(atPath: dir.appendingPathComponent("trainer_state.json").path),
              let state = try? JSONDecoder().decode(State.self, from: stateData) else {
            throw TrainingError("\(dir.lastPathComponent): trainer_state.json is unreadable")
        }
        guard "step-\(state.step)" == dir.lastPathComponent else {
            throw TrainingError("\(dir.lastPathComponent): trainer_state.json says step \(state.step)")
        }
        return state
    }

    /// The steps that have a `checkpoints/step-N` folder, newest first (intact or not).
    static func steps(run: URL) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)) ?? []
        return names.compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted(by: >)
    }

    /// The newest checkpoint that verifies; `notice` hears about each damaged one skipped.
    public static func latest(run: URL, notice: (String) -> Void) -> (URL, State)? {
        for s in steps(run: run) {
            let dir = folder(run, step: s)
            do {
                return (dir, try verify(dir))
            } catch {
                notice("checkpoint \(error); using an earlier one")
            }
        }
        return nil
    }

    /// Loads the weights and optimizer state of `dir` into the model and optimizer (in place).
    public static func restore(_ dir: URL, pretrained: Pretrained, optimizer: AdamW, critic: Critic? = nil) throws {
        try restore(dir, pretrained: pretrained, optimizer: optimizer, critic: critic, prm: nil)
    }

    static func restore(_ dir: URL, pretrained: Pretrained, optimizer: AdamW, critic: Critic?, prm: ImplicitPRM?) throws {
        try loadWeights(dir, pretrained: pretrained)
        try optimizer.load(from: dir.appendingPathComponent("optimizer.safetensors"))
        try critic?.restore(from: dir)
        try prm?.restore(from: dir)
    }

    /// A new run starting from another run's checkpoint (`model.init_from`, a fork): its policy
    /// weights (and the critic's, when both runs have one), not its optimizer state or step.
    /// Returns what the run should be told.
    public static func fork(_ dir: URL, pretrained: Pretrained, critic: Critic?) throws -> [String] {
        func fail(_ why: String) -> TrainingError { TrainingError("model.init_from \(dir.path): \(why)") }
        guard FileManager.default.fileExists(atPath: dir.path) else { throw fail("no such checkpoint folder (give RUN/checkpoints/step-N)") }
        let state: State
        do { state = try verify(dir) } catch { throw fail("\(error)") }
        func has(_ name: String) -> Bool { FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) }
        if pretrained.model.lora != nil, !has("adapter_model.safetensors") {
            throw fail("a full-weight checkpoint (no adapter_model.safetensors), but this run trains LoRA adapters (set model.lora: null to fork it)")
        }
        if pretrained.model.lora == nil, !has("model.safetensors") {
            throw fail("a LoRA checkpoint (no model.safetensors), but this run trains every weight (set model.lora to its adapters to fork it)")
        }
        do { try loadWeights(dir, pretrained: pretrained) } catch { throw fail("\(error)") }
        var notes = ["starting from the weights of \(dir.path) (step \(state.step)); the optimizer state starts fresh"]
        if let critic {
            if has(Critic.file) {
                do { try critic.restore(from: dir, optimizer: false) } catch { throw fail("\(error)") }
            } else {
                notes.append("\(dir.path) has no critic: the run's critic starts from its initialisation")
            }
        }
        return notes
    }

    /// The policy's weights of `dir`: its PEFT adapter, or the whole model.
    static func loadWeights(_ dir: URL, pretrained: Pretrained) throws {
        try withTorchErrors {
            if let lora = pretrained.model.lora {
                try lora.loadWeights(from: dir)
            } else {
                let file = try Safetensors.File(url: dir.appendingPathComponent("model.safetensors"))
                for (name, target) in pretrained.model.weights {
                    guard file.entries[name] != nil else { continue }   // tied weights are saved once
                    let t = try file.tensor(name)
                    guard t.shape == target.shape else { throw TrainingError("\(file.url.path): '\(name)' has shape \(t.shape), the run needs \(target.shape)") }
                    withNoGrad { target.copy(from: t.to(dtype: target.dtype)) }
                }
            }
        }
    }

    /// Keeps the newest `keep` checkpoints that verify and deletes the ones older than those, so a
    /// damaged newer folder never costs an intact one. `written` is a step just written (and
    /// hashed), which is not read back again.
    public static func prune(run: URL, keep: Int, written: Int? = nil) {
        var intact = 0
        for s in steps(run: run) {
            if intact >= keep {
                try? FileManager.default.removeItem(at: folder(run, step: s))
            } else if s == written || (try? verify(folder(run, step: s))) != nil {
                intact += 1
            }
        }
    }

    static func size(_ url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? -1
    }

    /// FNV-1a over the file's bytes (catches truncation and flipped bytes; not a security hash).
    static func hash(_ url: URL) throws -> String {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        data.withUnsafeBytes { raw in
            for b in raw.bindMemory(to: UInt8.self) { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        }
        return String(h, radix: 16)
    }
}
