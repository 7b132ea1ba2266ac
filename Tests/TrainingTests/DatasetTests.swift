import Foundation
import XCTest
@testable import Models
@testable import Training

final class DatasetTests: XCTestCase {
    func file(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tw-data-\(UUID().uuidString).jsonl")
        try Data(text.utf8).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Users' files carry ids and sources: those columns are allowed, listed, and said once.
    func testExtraColumnsAreReadPastAndNamed() throws {
        let url = try file(#"{"prompt": "1+1?", "answer": "2", "id": 7, "source": "gsm"}"# + "\n" + #"{"prompt": "2+2?", "answer": "4", "split": "a"}"#
                           + "\n" + #"{"prompt": "3+3?", "answer": "6"}"# + "\n" + #"{"prompt": "4+4?", "answer": "8"}"#)
        let d = try Dataset.load(url)
        XCTAssertEqual(d.examples[0], .prompt("1+1?", answer: "2"))
        XCTAssertEqual(d.unusedFields, ["id", "source", "split"])
        var section = RunConfig.DataSection()
        section.task = url.path
        section.evalSize = 0.25
        let data = try TaskData.load(section, reward: nil, chat: .chatML(defaultSystem: nil))
        XCTAssertEqual(data.notes, ["\(url.path): the columns 'id', 'source', 'split' are not read (Tokenwise reads answer, chosen, chosen_kl_weights, "
                                    + "chosen_weights, completion, h_l, h_w, messages, prompt, rejected, rejected_kl_weights, rejected_weights)"])
        // A pair in a prompt file is named by its line (it was only the bare message before).
        let mixed = try file(#"{"prompt": "1+1?"}"# + "\n" + #"{"prompt": "p", "chosen": "a", "rejected": "b"}"#)
        section.task = mixed.path
        section.evalSize = 0
        XCTAssertThrowsError(try TaskData.load(section, reward: nil, chat: .chatML(defaultSystem: nil))) {
            XCTAssertEqual("\($0)", "\(mixed.path):2: a preference pair is not an RL prompt (use a preference objective)")
        }
    }

    /// A file whose columns have other names: data.prompt_field and data.answer_field map them.
    func testColumnsAreMappedToFields() throws {
        let url = try file(#"{"question": "1+1?", "solution": "2", "id": 1}"# + "\n" + #"{"question": "2+2?", "solution": "4", "id": 2}"#)
        let c = try RunConfig.load(yaml: "data: {task: \(url.path), eval_size: 0.5, prompt_field: question, answer_field: solution}")
        XCTAssertEqual(c.data.columns.map(\.column), ["question", "solution"])
        let data = try TaskData.load(c.data, reward: nil, chat: .chatML(defaultSystem: nil))
        XCTAssertEqual(Set((data.train + data.eval).map(\.answer)), ["2", "4"])
        XCTAssertTrue((data.train + data.eval).allSatisfy { $0.prompt.contains("+") })
        XCTAssertEqual(data.notes, ["\(url.path): the columns 'id' are not read (Tokenwise reads answer, chosen, chosen_kl_weights, "
                                    + "chosen_weights, completion, h_l, h_w, messages, prompt, rejected, rejected_kl_weights, rejected_weights)"])
        // Written back and read again, the mapping stays.
        XCTAssertEqual(try RunConfig.load(yaml: try c.yaml()).data, c.data)
        func error(_ text: String, _ yaml: String = "prompt_field: question") -> String {
            do {
                let f = try file(text)
                let c = try RunConfig.load(yaml: "data: {task: \(f.path), eval_size: 0.5, \(yaml)}")
                _ = try TaskData.load(c.data, reward: nil, chat: .chatML(defaultSystem: nil))
                return "no error"
            } catch { return "\(error)".components(separatedBy: ".jsonl").last ?? "" }
        }
        XCTAssertEqual(error(#"{"prompt": "1+1?"}"# + "\n" + #"{"prompt": "2+2?"}"#), ":1: needs 'question' (data.prompt_field)")
        XCTAssertEqual(error(#"{"question": "1+1?", "prompt": "x"}"#), ":1: has both 'question' (data.prompt_field) and 'prompt': drop one")
        XCTAssertThrowsError(try RunConfig.load(yaml: "data: {task: arithmetic, prompt_field: question}")) {
            XCTAssertTrue("\($0)".hasSuffix("'data.prompt_field' and 'data.answer_field' name a JSONL file's columns; 'arithmetic' is a procedural task"), "\($0)")
        }
    }

    func testFormatsAndChatRendering() throws {
        let url = try file("""
        {"prompt": "What is 2+2?", "answer": "4"}

        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}]}
        {"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}
        """)
        let d = try Dataset.load(url)
        XCTAssertEqual(d.examples.count, 3)
        XCTAssertEqual(d.examples[0], .prompt("What is 2+2?", answer: "4"))
        XCTAssertEqual(d.examples[2], .preference(PreferencePair(prompt: "Say hi", chosen: "Hi!", rejected: "No.")))
        XCTAssertEqual(d.lines, [1, 3, 4])
        let chat = ChatTemplate.chatML(defaultSystem: "Default.")
        XCTAssertEqual(try d.examples[0].taskSample(chat: chat),
                       TaskSample(prompt: "<|im_start|>system\nDefault.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", answer: "4", question: "What is 2+2?"))
        let s = try d.examples[1].taskSample(chat: chat)
        XCTAssertEqual(s.answer, "Paris")
        XCTAssertEqual(s.prompt, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertThrowsError(try d.examples[2].taskSample(chat: chat)) {
            XCTAssertEqual("\($0)", "a preference pair is not an RL prompt (use a preference objective)")
        }
    }

    func testSeededSplit() throws {
        let d = Dataset(examples: (0..<100).map { .prompt("q\($0)", answer: nil) })
        let (train, eval) = try d.split(evalFraction: 0.2, seed: 1)
        XCTAssertEqual(train.count, 80)
        XCTAssertEqual(eval.count, 20)
        XCTAssertEqual(Set((train + eval).map { "\($0)" }).count, 100)
        XCTAssertEqual(try d.split(evalFraction: 0.2, seed: 1).eval, eval)
        XCTAssertNotEqual(try d.split(evalFraction: 0.2, seed: 2).eval, eval)
        XCTAssertThrowsError(try d.split(evalFraction: 1, seed: 0)) { XCTAssertEqual("\($0)", "data: eval fraction must be in [0, 1), got 1.0") }
    }

    func testBadLinesNameTheFileAndLine() throws {
        func error(_ text: String) throws -> String {
            let url = try file(text)
            do { _ = try Dataset.load(url); return "no error" } catch { return "\(error)".replacingOccurrences(of: url.path, with: "data.jsonl") }
        }
        XCTAssertEqual(try error("{\"prompt\": \"a\"}\n{not json}\n"), "data.jsonl:2: not a JSON object")
        XCTAssertEqual(try error("{\"prompt\": 3}"), "data.jsonl:1: 'prompt' must be a string")
        XCTAssertEqual(try error("{\"prompt\": \"a\", \"anwser\": \"b\"}"), "data.jsonl:1: unknown field 'anwser': did you mean 'answer'? (fields read: answer, chosen, "
                       + "chosen_kl_weights, chosen_weights, completion, h_l, h_w, messages, prompt, rejected, rejected_kl_weights, rejected_weights; other columns are ignored)")
        XCTAssertEqual(try error("{\"promt\": \"a\", \"id\": 3}"), "data.jsonl:1: unknown field 'promt': did you mean 'prompt'? (fields read: answer, chosen, "
                       + "chosen_kl_weights, chosen_weights, completion, h_l, h_w, messages, prompt, rejected, rejected_kl_weights, rejected_weights; other columns are ignored)")
        let pair = #"{"prompt": "p", "chosen": "a", "rejected": "b", "#
        XCTAssertEqual(try error(pair + #""chosen_weights": [1, "x"], "rejected_weights": [1]}"#),
                       "data.jsonl:1: 'chosen_weights' must be a list of finite numbers (one per response token)")
        XCTAssertEqual(try error(pair + #""chosen_weights": [true], "rejected_weights": [1]}"#),
                       "data.jsonl:1: 'chosen_weights' must be a list of finite numbers (one per response token)")
        XCTAssertEqual(try error(pair + #""chosen_weights": [1]}"#), "data.jsonl:1: give both 'chosen_weights' and 'rejected_weights', or neither")
        XCTAssertEqual(try error(pair + #""chosen_kl_weights": [1], "rejected_kl_weights": [1]}"#),
                       "data.jsonl:1: 'chosen_kl_weights' needs 'chosen_weights' and 'rejected_weights' too")
        let weighted = try Dataset.load(try file(pair + #""chosen_weights": [0.5], "rejected_weights": [2], "chosen_kl_weights": [0], "rejected_kl_weights": [1]}"#))
        XCTAssertEqual(weighted.examples[0], .preference(PreferencePair(prompt: "p", chosen: "a", rejected: "b",
                                                                       weights: TokenWeights(chosen: [0.5], rejected: [2], chosenKL: [0], rejectedKL: [1]))))
        XCTAssertEqual(try error("\n\n{\"chosen\": \"a\", \"rejected\": \"b\"}"), "data.jsonl:3: a preference pair needs 'prompt', 'chosen' and 'rejected'")
        XCTAssertEqual(try error("{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}"), "data.jsonl:1: messages[0].role 'bot' is not system, user or assistant")
        XCTAssertEqual(try error("{\"answer\": \"x\"}"), "data.jsonl:1: needs 'prompt' (or 'messages')")
        XCTAssertEqual(try error("\n"), "data.jsonl: no examples")
        XCTAssertThrowsError(try Dataset.load(URL(fileURLWithPath: "/nonexistent.jsonl"))) {
            XCTAssertEqual("\($0)", "/nonexistent.jsonl: cannot read the dataset")
        }
    }
}
