import Foundation
import XCTest
@testable import Models

final class TokenizerTests: XCTestCase {
    func split(_ p: PreTokenizer, _ s: String) -> [String] { p.split(s).map(String.init) }

    func testPreTokenizers() {
        XCTAssertEqual(split(.gpt2, "Hello world's  end!\n\nok  "), ["Hello", " world", "'s", " ", " end", "!", "\n", "\n", "ok", "  "])
        XCTAssertEqual(split(.gpt2, "a 123 x"), ["a", " 123", " x"])
        XCTAssertEqual(split(.smollm, "a 123 x"), ["a", " ", "1", "2", "3", " x"])
        XCTAssertEqual(split(.gpt2, "\tx  y"), ["\t", "x", " ", " y"])
        XCTAssertEqual(split(.gpt2, " 's"), [" '", "s"])
        XCTAssertEqual(split(.llama3, "I'M 12345 \n\n hi!?\n"), ["I", "'M", " ", "123", "45", " \n\n", " hi", "!?\n"])
        XCTAssertEqual(split(.qwen2, "x 123"), ["x", " ", "1", "2", "3"])
        XCTAssertEqual(split(.gpt2, "東京 café"), ["東京", " café"])
        XCTAssertEqual(split(.gpt2, ""), [])
    }

    func testBPEMergesByRankAndAddedTokens() throws {
        let t = try tinyTokenizer()
        // "hello" merges h+e, l+l, he+ll, hell+o → 262; " world" → Ġw (263), or (264), l, d.
        XCTAssertEqual(t.encode("hello world"), [262, 263, 264, Int(UInt8(ascii: "l")), Int(UInt8(ascii: "d"))])
        XCTAssertEqual(t.encode("<|im_start|>hello<|im_end|>"), [256, 262, 257])
        XCTAssertEqual(t.encode("<|im_start|>", allowSpecial: false).count, 12)
        XCTAssertEqual(t.decode([256, 262, 257]), "<|im_start|>hello<|im_end|>")
        XCTAssertEqual(t.decode([256, 262, 257], skipSpecial: true), "hello")
        XCTAssertEqual(t.piece(263), " w")
        for s in ["", "héllo wörld 🚀", "line\nbreak\ttab  ", "東京", "<|im_end|><|im_end|>x"] {
            XCTAssertEqual(t.decode(t.encode(s)), s)
        }
        XCTAssertThrowsError(try Tokenizer(tokens: ["a"], merges: [], added: [:], special: [], pre: .gpt2, bosId: nil, eosIds: [])) {
            XCTAssertEqual("\($0)", "tokenizer: the vocabulary lacks most byte-level tokens (not a byte-level BPE?)")
        }
    }

    func testStreamingDecodeHoldsPartialCharacters() throws {
        let t = try tinyTokenizer()
        let ids = t.encode("a🚀é")   // 🚀 is 4 single-byte tokens, é 2
        XCTAssertEqual(ids.count, 7)
        var s = StreamDecoder(t)
        var pieces = ids.map { s.push($0) }
        pieces.append(s.finish())
        XCTAssertEqual(pieces, ["a", "", "", "", "🚀", "", "é", ""])
        var cut = StreamDecoder(t)
        _ = cut.push(ids[1])
        XCTAssertEqual(cut.finish(), "\u{FFFD}")
    }

    func testTokenizerJSONRoundTrip() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try tinyTokenizer()
        let url = dir.appendingPathComponent("tokenizer.json")
        try t.tokenizerJSON().write(to: url)
        let u = try Tokenizer.load(tokenizerJSON: url)
        for s in ["hello world", "<|im_start|>x", "12 34 东京"] { XCTAssertEqual(u.encode(s), t.encode(s)) }
        XCTAssertEqual(u.specialIds, t.specialIds)
        // Added tokens are in the model vocabulary too (else `tokenizers` renumbers them).
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let vocab = (written["model"] as! [String: Any])["vocab"] as! [String: Int]
        XCTAssertEqual(vocab["<|im_start|>"], 256)
        XCTAssertEqual(vocab.count, 270)
        // Unsupported pre-tokenizers and models are named.
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        obj["pre_tokenizer"] = ["type": "Metaspace"]
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
        XCTAssertThrowsError(try Tokenizer.load(tokenizerJSON: url)) {
            XCTAssertTrue("\($0)".hasSuffix("pre_tokenizer 'Metaspace' is not supported (supported: GPT-2 ByteLevel, SmolLM2 Digits+ByteLevel, Llama-3 and Qwen2 Split+ByteLevel)"), "\($0)")
        }
        // Ids index the token table: negative ones trapped, 2^62 asked for an exabyte.
        let good = try JSONSerialization.jsonObject(with: t.tokenizerJSON()) as! [String: Any]
        for (field, id) in [("vocab", -1), ("vocab", 1 << 62), ("added", Int.max), ("added", -5)] {
            var bad = good
            if field == "vocab" {
                var model = bad["model"] as! [String: Any]
                var v = model["vocab"] as! [String: Int]
                v["hello"] = id
                model["vocab"] = v
                bad["model"] = model
            } else {
                var added = bad["added_tokens"] as! [[String: Any]]
                added[0]["id"] = id
                bad["added_tokens"] = added
            }
            try JSONSerialization.data(withJSONObject: bad).write(to: url)
            XCTAssertThrowsError(try Tokenizer.load(tokenizerJSON: url)) {
                let what = field == "vocab" ? "model.vocab gives 'hello'" : "added_tokens gives '<|im_start|>'"
                XCTAssertEqual("\($0)", "\(url.path): \(what) the id \(id); ids must be 0…\(2 * (270 + 3) + 1023) for \(270 + 3) tokens")
            }
        }
        obj["model"] = ["type": "Unigram"]
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
        XCTAssertThrowsError(try Tokenizer.load(tokenizerJSON: url)) { XCTAssertEqual("\($0)", "\(url.path): model.type 'Unigram' is not supported (only BPE)") }
    }

    func testChatTemplates() throws {
        let chat = try ChatTemplate(template: chatMLTemplate)
        XCTAssertEqual(chat, .chatML(defaultSystem: "You are tiny."))
        XCTAssertEqual(chat.render([ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true),
                       "<|im_start|>system\nYou are tiny.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(chat.render([ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: false),
                       "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        let qwen = try ChatTemplate(template: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}")
        XCTAssertEqual(qwen, .chatML(defaultSystem: nil))
        let llama = try ChatTemplate(template: "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}")
        XCTAssertEqual(llama.render([ChatMessage(role: "user", content: " Hi ")], addGenerationPrompt: true),
                       "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        // A multi-turn dialogue's continuation after an action: the action's end, the next message, the generation prompt.
        XCTAssertEqual(chat.continuation(ChatMessage(role: "tool", content: " 3 ")), "<|im_end|>\n<|im_start|>tool\n 3 <|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(llama.continuation(ChatMessage(role: "user", content: " obs ")),
                       "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nobs<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        XCTAssertThrowsError(try ChatTemplate(template: "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}")) {
            XCTAssertEqual("\($0)", "chat template not supported (only ChatML and Llama-3 formats): {% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}…")
        }
    }
}
