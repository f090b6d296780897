//! Every command's `--help` ends with examples, and every example parses: a flag renamed
//! without its example fails here, not in a newcomer's terminal.

use clap::{CommandFactory, Parser};
use dsrctl::cli::Cli;

/// Every command with its path (`["task", "done"]`), subcommands included.
fn commands(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let mut p = path.clone();
        p.push(sub.get_name().to_owned());
        if sub.has_subcommands() {
            commands(sub, p.clone(), out);
        }
        out.push((p, sub.clone()));
    }
}

/// The words of an example line: quotes respected, a `# comment` and a `> redirect` cut.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut quote, mut any) = (String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '#' | '>') => break,
            (None, '"' | '\'') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (_, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

#[test]
fn every_command_has_examples_that_parse() {
    let mut all = Vec::new();
    commands(&Cli::command(), Vec::new(), &mut all);
    assert!(all.len() > 25, "{}", all.len());
    let mut checked = 0;
    for (path, cmd) in &all {
        let mut cmd = cmd.clone();
        let help = cmd.render_help().to_string();
        let examples: Vec<&str> = help
            .split_once("Examples:\n")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("`dsrctl {}` has no examples:\n{help}", path.join(" ")))
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .collect();
        if cmd.has_subcommands() {
            // A group's examples show its subcommands.
            assert!(!examples.is_empty(), "{}", path.join(" "));
        }
        for line in examples {
            let words = words(line.trim());
            assert_eq!(words[0], "dsrctl", "{line}");
            assert_eq!(
                words[1..=path.len()],
                path[..],
                "an example of `dsrctl {}` runs another command: {line}",
                path.join(" ")
            );
            if let Err(e) = Cli::try_parse_from(&words) {
                panic!("`{line}` does not parse: {e}");
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn words_split_like_a_shell() {
    assert_eq!(
        words(r#"dsrctl run x.yaml --approve "Dana (DPO)"  # comment"#),
        ["dsrctl", "run", "x.yaml", "--approve", "Dana (DPO)"]
    );
    assert_eq!(
        words("dsrctl schema playbook > p.json"),
        ["dsrctl", "schema", "playbook"]
    );
}

#[test]
fn every_command_is_described_in_words_of_its_own() {
    let mut all = Vec::new();
    commands(&Cli::command(), Vec::new(), &mut all);
    for (path, cmd) in &all {
        let name = path.join(" ");
        let about = cmd
            .get_about()
            .map(ToString::to_string)
            .unwrap_or_else(|| panic!("`dsrctl {name}` has no description"));
        // A bare "`dsrctl x`" is the arguments' type name showing through, not a
        // description; a description naming another command's action was misplaced.
        assert!(
            !about.starts_with('`') && about.split_whitespace().count() >= 2,
            "`dsrctl {name}` is described as {about:?}"
        );
    }
    let about = |name: &str| {
        all.iter()
            .find(|(p, _)| p == &[name.to_owned()])
            .and_then(|(_, c)| c.get_about().map(ToString::to_string))
            .unwrap_or_default()
    };
    assert!(
        about("show").starts_with("Show a saved plan"),
        "{}",
        about("show")
    );
    assert!(
        about("apply").starts_with("Apply a saved plan"),
        "{}",
        about("apply")
    );
}
