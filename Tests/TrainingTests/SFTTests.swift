import Foundation
import Models
import Objectives
import Torch
import XCTest
@testable import Training

/// Supervised fine-tuning: which tokens are targets, the loss against a forward pass written out
/// here, packing and micro-batches that leave the loss unchanged, and runs from YAML.
final class SFTTests: FolderTestCase {
    let chatLines = [
        #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}"#,
        #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "6"}]}"#,
    ]

    func tokens(_ config: SFTLoss.Config = .init(), system: String? = nil) throws -> (SFTTokens, Pretrained) {
        let p = try Pretrained.tinyRandom()
        return (try SFTTokens(tokenizer: p.tokenizer, chat: try p.chatTemplate(), config: config, system: system), p)
    }

    func example(_ line: String) throws -> Example { try Dataset.parse(Data(line.utf8)).0 }

    /// The text of an example's target tokens, and of all its tokens.
    func texts(_ x: SFTExample, _ p: Pretrained) -> (targets: String, all: String) {
        (p.tokenizer.decode(zip(x.tokens, x.targets).filter(\.1).map(\.0)), p.tokenizer.decode(x.tokens))
    }

    func testAPromptCompletionLineLearnsItsCompletionAndTheEndToken() throws {
        let (t, p) = try tokens(system: "S")
        let x = try t.tokens(try example(#"{"prompt": "2+2?", "completion": "4"}"#))
        XCTAssertEqual(texts(x, p).all, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>")
        XCTAssertEqual(texts(x, p).targets, "4<|im_end|>")
        // completion_only_loss false: every token but the first, which nothing predicts.
        let (all, _) = try tokens(.init(completionOnlyLoss: false))
        let y = try all.tokens(try example(#"{"prompt": "2+2?", "completion": "4"}"#))
        XCTAssertEqual(y.targets, [false] + Array(repeating: true, count: y.tokens.count - 1))
    }

    func testAChatLineLearnsEveryAssistantTurnAndRendersAsTheTemplateDoes() throws {
        let (t, p) = try tokens()
        let x = try t.tokens(try example(chatLines[1]))
        XCTAssertEqual(texts(x, p).targets, "4<|im_end|>6<|im_end|>")
        let messages = [("system", "Be brief."), ("user", "2+2?"), ("assistant", "4"), ("user", "And 3+3?"), ("assistant", "6")].map { ChatMessage(role: $0.0, content: $0.1) }
        XCTAssertEqual(texts(x, p).all + "\n", try p.chatTemplate().render(messages, addGenerationPrompt: false))
        // assistant_only_loss false: the whole dialogue.
        let (all, _) = try tokens(.init(assistantOnlyLoss: false))
        let y = try all.tokens(try example(chatLines[1]))
        XCTAssertEqual(y.tokens, x.tokens)
        XCTAssertEqual(y.targets, [false] + Array(repeating: true, count: y.tokens.count - 1))
    }

    /// TRL's conversational prompt/completion: a list prompt (an earlier assistant turn in it is
    /// context, not a target) and a completion of one assistant message.
    func testConversationalPromptAndCompletionAsTRLWritesThem() throws {
        let (t, p) = try tokens(system: "S")
        let line = #"{"prompt": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}], "completion": [{"role": "assistant", "content": "6"}]}"#
        let x = try t.tokens(try example(line))
        XCTAssertEqual(texts(x, p).targets, "6<|im_end|>")
        XCTAssertEqual(texts(x, p).all, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
                       + "<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n6<|im_end|>")
        // A conversational prompt alone is an RL chat prompt.
        guard case .chat(let messages, let answer) = try example(#"{"prompt": [{"role": "user", "content": "Hi"}], "answer": "1"}"#) else { return XCTFail("not chat") }
        XCTAssertEqual(messages.map(\.content), ["Hi"])
        XCTAssertEqual(answer, "1")
        let bad = [#"{"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "user", "content": "x"}]}"#: "a list of one assistant message, got [\"user\"]",
                   #"{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x"}], "completion": "y"}"#: "'prompt' ends with an assistant turn",
                   #"{"prompt": "Hi", "messages": [{"role": "user", "content": "Hi"}]}"#: "has both 'messages' and 'prompt'",
                   #"{"prompt": [{"role": "robot", "content": "Hi"}]}"#: "prompt[0].role 'robot' is not system, user or assistant"]
        for (l, message) in bad {
            XCTAssertThrowsError(try example(l), l) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }

    func testLinesSFTCannotLearnFromAreRefused() throws {
        let (t, _) = try tokens()
        let cases = [#"{"messages": [{"role": "user", "content": "Hi"}]}"#: "must end with an assistant turn",
                     #"{"messages": [{"role": "assistant", "content": "Hi"}]}"#: "needs a turn before the first assistant turn",
                     #"{"prompt": "Hi"}"#: "give 'completion' with the 'prompt'",
                     #"{"prompt": "Hi", "chosen": "a", "rejected": "b"}"#: "not a {prompt, chosen, rejected} pair"]
        for (line, message) in cases {
            XCTAssertThrowsError(try t.tokens(try example(line)), line) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        XCTAssertThrowsError(try example(#"{"prompt": "Hi", "completion": "a", "answer": "a"}"#)) { XCTAssertTrue("\($0)".contains("give one"), "\($0)") }
        XCTAssertThrowsError(try example(#"{"prompt": "Hi", "completion": "a"}"#).taskSample(chat: try Pretrained.tinyRandom().chatTemplate())) {
            XCTAssertTrue("\($0)".contains("objective: {name: sft}"), "\($0)")
        }
    }

    /// Two sequences packed into one row get exactly the hidden states each gets alone.
    func testPackedRowsGiveEachSequenceItsOwnStates() throws {
        let m = try Pretrained.tinyRandom().model
        let a: [Int64] = [5, 9, 33, 71, 2], b: [Int64] = [44, 12, 8]
        try withTorchErrors {
            let alone = try [a, b].map { try m.hidden(Tensor($0, shape: [1, $0.count])).floats() }
            let packed = try m.hidden(Tensor(a + b + [0, 0], shape: [1, 10]), segments: [[5, 3]]).floats()
            let width = 64
            for (x, y) in zip(alone[0] + alone[1], packed.prefix(8 * width)) { XCTAssertEqual(x, y, accuracy: 1e-5) }
            XCTAssertThrowsError(try m.hidden(Tensor(a, shape: [1, 5]), segments: [[4, 3]]))
        }
    }

    func sftFile(_ lines: [String]? = nil, name: String = "sft.jsonl") throws -> URL {
        let url = root.appendingPathComponent(name)
        let text = lines ?? (0..<12).map { i in
            i % 3 == 0 ? #"{"messages": [{"role": "user", "content": "Name \#(i)"}, {"role": "assistant", "content": "It is \#(i)."}]}"#
                : #"{"prompt": "Count to \#(i % 5)", "completion": "\#((0...(i % 5)).map(String.init).joined(separator: " "))"}"#
        }
        try Data(text.joined(separator: "\n").utf8).write(to: url)
        return url
    }

    /// The default file's twelve lines and one long line, so that row lengths vary.
    func trainer(_ config: SFTLoss.Config, microBatch: Int = 0) throws -> (SFTTrainer, [SFTExample]) {
        let p = try Pretrained.tinyRandom(seed: 4)
        var data = RunConfig.DataSection()
        let lines = try String(contentsOf: try sftFile(), encoding: .utf8).split(separator: "\n").map(String.init)
        data.task = try sftFile(lines + [#"{"prompt": "Spell it", "completion": "\#(String(repeating: "ab ", count: 40))"}"#], name: "varied.jsonl").path
        data.evalSize = 0
        let d = try TaskData.loadSFT(data, config: config, tokenizer: p.tokenizer, chat: try p.chatTemplate(), context: 512)
        let t = try SFTTrainer(model: p.model, config: config, lora: LoRA.Config(), lr: 1e-2, weightDecay: 0, maxGradNorm: 1e9, microBatch: microBatch, seed: 1)
        return (t, d.trainSFT)
    }

    /// The step's loss is Σ −log p(target) / #targets, here from full logits of each example alone.
    func testTheLossIsTheMeanTargetNLLAndPackingOrMicroBatchesDoNotChangeIt() throws {
        let (plain, examples) = try trainer(.init())
        var nll = 0.0, count = 0
        try withTorchErrors {
            try withNoGrad {
                for x in examples {
                    let logp = try plain.model(Tensor(x.tokens.map(Int64.init), shape: [1, x.tokens.count])).to(dtype: .float32).logSoftmax(dim: -1).doubles()
                    let v = plain.model.config.vocabSize
                    for p in 1..<x.tokens.count where x.targets[p] { nll -= logp[(p - 1) * v + x.tokens[p]]; count += 1 }
                }
            }
        }
        let a = try plain.step(examples)
        XCTAssertEqual(a["loss"]!, nll / Double(count), accuracy: 1e-5)
        XCTAssertEqual(a["tokens"], Double(count))
        XCTAssertEqual(a["examples"], 13)
        let (packed, _) = try trainer(.init(maxLength: 256, packing: true))
        let (micro, _) = try trainer(.init(), microBatch: 3)
        for other in [try packed.step(examples), try micro.step(examples)] {
            XCTAssertEqual(other["loss"]!, a["loss"]!, accuracy: 1e-5)
            XCTAssertEqual(other["grad_norm"]!, a["grad_norm"]!, accuracy: 1e-4 * a["grad_norm"]!)
            XCTAssertEqual(other["token_accuracy"], a["token_accuracy"])
        }
        // Packing leaves fewer rows and less padding.
        let p = try packed.step(examples)
        XCTAssertLessThan(p["rows"]!, 13)
        XCTAssertLessThan(p["padding_tokens"]!, a["padding_tokens"]!)
        XCTAssertTrue(packed.rows(examples).allSatisfy { $0.reduce(0) { $0 + $1.tokens.count } <= 256 })
        XCTAssertEqual(packed.rows(examples).flatMap { $0 }.count, 13)
    }

    /// DFT by hand on one target of logits z = (1, 2, 0), y = 1: p = softmax(z), the term is
    /// −p_y log p_y, and its gradient is p_y times NLL's, p_y (softmax(z) − e_y).
    func testDFTWeighsEachTokensTermByItsProbability() throws {
        try withTorchErrors {
            let z = [1.0, 2.0, 0.0], e = z.map { Foundation.exp($0) }, p = e.map { $0 / e.reduce(0, +) }
            for type in SFTLoss.LossType.allCases {
                let logits = Tensor(z, shape: [1, 3])
                logits.requiresGrad = true
                let (loss, correct) = try SFTLoss.sums(logits: logits, targets: Tensor([Int64(1)]), type: type)
                loss.backward()
                let scale = type == .dft ? p[1] : 1
                XCTAssertEqual(try loss.item(), -scale * Foundation.log(p[1]), accuracy: 1e-6, type.rawValue)
                for (g, k) in zip(try logits.grad!.doubles(), 0..<3) { XCTAssertEqual(g, scale * (p[k] - (k == 1 ? 1 : 0)), accuracy: 1e-6, type.rawValue) }
                XCTAssertEqual(correct, 1)
            }
        }
        // In a run, DFT's step loss is its own; held-out figures stay the plain likelihood.
        let (dft, examples) = try trainer(.init(lossType: .dft))
        let (plain, _) = try trainer(.init())
        XCTAssertEqual(try dft.evaluate(examples).loss!.mean, try plain.evaluate(examples).loss!.mean, accuracy: 1e-6)
        let (a, b) = (try dft.step(examples), try plain.step(examples))
        XCTAssertLessThan(a["loss"]!, b["loss"]!)
    }

    /// Σ y / Σ n with the delta-method interval, by hand: y = (2, 3, 7), n = (1, 2, 3): r = 2,
    /// residuals (0, −1, 1), Σ² = 2, k = 3, n̄ = 2: se = √(2 / (3·2·4)) = 0.2887, t(2) = 4.303.
    func testTheRatioEstimateByHand() {
        let e = Estimate(ratioOf: [2, 3, 7], to: [1, 2, 3])
        XCTAssertEqual(e.mean, 2, accuracy: 1e-12)
        XCTAssertEqual(e.ci95, 4.302653 * (2.0 / 24).squareRoot(), accuracy: 1e-3)
    }

    func sftConfig(steps: Int = 3) throws -> RunConfig {
        try RunConfig.load(yaml: """
            data: {task: \(try sftFile().path), eval_size: 3}
            objective: {name: sft, max_length: 128}
            train: {steps: \(steps), prompts_per_step: 4}
            optim: {lr: 0.05}
            output: {checkpoint_every: 1, keep_checkpoints: 5, report: false, save_model: false}
            """, base: Preset.tiny.config)
    }

    func testAnSFTRunLowersItsHeldOutLossAndResumesAsIfUninterrupted() throws {
        let c = try sftConfig(steps: 4)
        let dir = root.appendingPathComponent("run")
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        let evals = JSONLines.read(dir.appendingPathComponent("eval.jsonl"))
        func loss(_ e: [String: Any], _ k: String = "mean") -> Double { ((e["loss"] as? [String: Any])?[k] as? NSNumber)?.doubleValue ?? .nan }
        XCTAssertEqual(evals.compactMap { $0["phase"] as? String }, ["before", "after"])
        // Lower beyond both 95% intervals.
        XCTAssertLessThan(loss(evals[1]) + loss(evals[1], "ci95"), loss(evals[0]) - loss(evals[0], "ci95"),
                          "held-out loss \(loss(evals[0])) ± \(loss(evals[0], "ci95")) → \(loss(evals[1])) ± \(loss(evals[1], "ci95"))")
        XCTAssertEqual(((evals[0]["reward"] as? [String: Any])?["mean"] as? NSNumber)?.doubleValue ?? .nan, -loss(evals[0]), accuracy: 1e-9)
        // The report draws the fine-tuning curves and the held-out loss.
        let html = try Report.render(run: dir)
        XCTAssertTrue(html.contains("token accuracy (fine-tuning)") && html.contains("<tr><td>loss</td>") && html.contains("objective sft"))
        // The written config reads back as the same objective.
        let text = try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)
        XCTAssertEqual(try RunConfig.load(yaml: text).sft, c.sft)
        // Cut after step 2, resumed: the same steps.
        let cut = root.appendingPathComponent("cut")
        try TrainingRun.start(config: c, dir: cut, console: .quiet).runSteps(upTo: 2)
        let resumed = try TrainingRun.resume(dir: cut, console: .quiet)
        XCTAssertEqual(resumed.startStep, 2)
        try resumed.run()
        XCTAssertEqual(replayableMetrics(cut), replayableMetrics(dir))
    }

    func testSFTConfigsThatCannotWorkAreRefusedBeforeAFolderExists() throws {
        let bad = ["train: {max_rollout_tokens: 100}": "objective 'sft' samples none",
                   "reward: {terms: [{type: correct}]}": "'reward' scores sampled responses",
                   "critic: {lora: {r: 4}}\ncredit: {method: gae}": "'critic' trains with RL; the objective is 'sft'",
                   "objective: {name: sft, max_length: 1}": "'max_length' must be at least 2",
                   "objective: {name: sft, max_length: 4096}": "'max_length' is 4096 tokens, more than the model's context (512)",
                   "objective: {name: sft, packed: true}": "unknown key 'packed'",
                   "objective: {name: sfft}": "expected one of 'dpo', 'ipo', 'tdpo1', 'tdpo2', 'tgdpo', 'sparsepo', 'weighted_dpo', 'fdpo', 'treg', 'sft'",
                   "data: {task: arithmetic}": "not the procedural task 'arithmetic'",
                   "objective: {name: sft, max_length: 8}": "sft.jsonl:1: no token to learn is left within max_length (8)"]
        let base = try sftConfig()
        for (extra, message) in bad {
            let dir = root.appendingPathComponent("bad")
            XCTAssertThrowsError(try TrainingRun.start(config: try RunConfig.load(yaml: extra, base: base), dir: dir, console: .quiet), extra) {
                XCTAssertTrue("\($0)".contains(message), "\(extra): \($0)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path), extra)
        }
        // A chat line without a reply names its line.
        var c = base
        c.data.task = try sftFile(chatLines + [#"{"messages": [{"role": "user", "content": "Hi"}]}"#], name: "short.jsonl").path
        XCTAssertThrowsError(try TrainingRun.start(config: c, dir: root.appendingPathComponent("bad"), console: .quiet)) {
            XCTAssertTrue("\($0)".contains("short.jsonl:3: objective 'sft': a chat example must end with an assistant turn"), "\($0)")
        }
    }

    /// A file's own column names map to the prompt and the completion; only SFT reads a completion column.
    func testCompletionFieldMapsAColumnAndOnlySFTReadsIt() throws {
        let p = try Pretrained.tinyRandom()
        var data = RunConfig.DataSection()
        data.task = try sftFile([#"{"question": "2+2?", "response": "4"}"#, #"{"question": "3+3?", "response": "6"}"#]).path
        data.evalSize = 0
        data.promptField = "question"
        data.completionField = "response"
        let d = try TaskData.loadSFT(data, config: .init(), tokenizer: p.tokenizer, chat: try p.chatTemplate(), context: 512)
        XCTAssertEqual(Set(d.trainSFT.map { p.tokenizer.decode(zip($0.tokens, $0.targets).filter(\.1).map(\.0)) }), ["4<|im_end|>", "6<|im_end|>"])
        var rl = Preset.tiny.config
        rl.data = data
        XCTAssertThrowsError(try rl.validate()) { XCTAssertTrue("\($0)".contains("'data.completion_field' names the column of supervised completions, which RL does not read"), "\($0)") }
    }

    /// Too-long examples keep their start and are counted in a note.
    func testExamplesLongerThanMaxLengthAreCutAndCounted() throws {
        let p = try Pretrained.tinyRandom()
        var data = RunConfig.DataSection()
        data.task = try sftFile([#"{"prompt": "a", "completion": "\#(String(repeating: "x", count: 80))"}"#, #"{"prompt": "b", "completion": "y"}"#]).path
        data.evalSize = 0
        let d = try TaskData.loadSFT(data, config: .init(maxLength: 40), tokenizer: p.tokenizer, chat: try p.chatTemplate(), context: 512)
        XCTAssertEqual(d.trainSFT.map(\.tokens.count).max(), 40)
        XCTAssertTrue(d.notes.contains { $0.contains("1 of 2 examples are longer than objective.max_length (40 tokens)") }, "\(d.notes)")
    }
}
