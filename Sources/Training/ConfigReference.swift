import Foundation

/// `docs/config.md`: the config reference written from the same structs and comments as
/// `--print-config`, so the manual cannot drift from what the loader reads (a test compares them).
public enum ConfigReference {
    public static func markdown() throws -> String {
        var out = """
            # Run config reference

            Generated from the code (`ConfigReference.markdown`, the same structs and comments as
            `tokenwise train --print-config`); regenerate with `TOKENWISE_WRITE_DOCS=1 swift test --filter DocsTests`.
            A config file names only what it changes; `--set section.key=value` overrides one key; unknown keys
            and values of the wrong type are errors naming the file, line and key.

            ## Presets

            | preset | what it is |
            | --- | --- |

            """
        for p in Preset.allCases { out += "| `\(p.rawValue)` | \(p.summary.replacingOccurrences(of: "|", with: "\\|")) |\n" }
        out += """

            ## Every key, with the default preset's values

            Keys shown as `# key: ~` are unset unless a run sets them; the note says what unset means.

            ```yaml

            """
        out += try Preset.default.template()
        out += "```\n"
        out += """

            ## Names from TRL, verl and OpenRLHF

            The same options under the names TRL's `GRPOConfig`, verl's trainer YAML and OpenRLHF's flags give them. Tokenwise
            reads only its own names; a config that uses one of these gets an error naming the key to use.


            """
        out += ForeignNames.markdown
        return out
    }
}
