//! `ocibench completions bash|zsh|fish` and `ocibench man`, judged by the programs that
//! will read them: each shell parses its script (and bash and fish, asked to complete
//! `ocibench `, offer every subcommand); groff renders every page without a warning
//! and `man -l` shows every subcommand and every global flag.
//!
//! The subcommands and global flags expected are read from `ocibench --help`, so a
//! subcommand added later is checked without editing this file.

use std::path::Path;
use std::process::Command;

use crate::support::tools::{self, run_stdout};
use crate::support::{Output, TestContext};

/// The subcommands and the global long flags `ocibench --help` lists (not `help`).
fn help_listing(ctx: &TestContext) -> (Vec<String>, Vec<String>) {
    let help = ctx.run(["--help"]).success().stdout;
    let mut section = "";
    let (mut commands, mut flags) = (Vec::new(), Vec::new());
    for line in help.lines() {
        if !line.starts_with(' ') {
            section = line;
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        match section {
            "Commands:" if first != "help" && !first.is_empty() => commands.push(first.to_string()),
            "Options:" => {
                if let Some(long) = line.split_whitespace().find(|w| w.starts_with("--")) {
                    flags.push(long.trim_end_matches(',').to_string());
                }
            }
            _ => {}
        }
    }
    assert!(commands.len() >= 8, "{help}");
    assert!(flags.iter().any(|f| f == "--verbose"), "{help}");
    (commands, flags)
}

fn script(ctx: &TestContext, shell: &str) -> std::path::PathBuf {
    let out = ctx.run(["completions", shell]).success();
    assert_eq!(out.stderr, "", "{shell}");
    let path = ctx.path(&format!("ocibench.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

#[track_caller]
fn parses(cmd: &mut Command) {
    let out = Output::of(cmd);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}: {}\n{}",
        out.command,
        out.status,
        out.stderr
    );
}

#[test]
fn completion_scripts_parse_and_offer_every_subcommand() {
    let ctx = TestContext::new();
    let (commands, _) = help_listing(&ctx);

    let bash = script(&ctx, "bash");
    parses(tools::command("bash", "bash").arg("-n").arg(&bash));
    // Complete `ocibench ` as bash's programmable completion would.
    let offered = run_stdout(tools::command("bash", "bash").arg("-c").arg(format!(
        r#"source '{}'; COMP_WORDS=(ocibench ""); COMP_CWORD=1; COMP_LINE="ocibench "; COMP_POINT=9; _ocibench ocibench "" ocibench; printf '%s\n' "${{COMPREPLY[@]}}""#,
        bash.display()
    )));
    let offered: Vec<&str> = offered.lines().collect();
    for c in &commands {
        assert!(
            offered.contains(&c.as_str()),
            "bash does not offer {c}: {offered:?}"
        );
    }

    let fish = script(&ctx, "fish");
    parses(
        tools::command("fish", "fish")
            .arg("--no-execute")
            .arg(&fish),
    );
    let offered = run_stdout(
        tools::command("fish", "fish")
            .arg("--no-config")
            .arg("-c")
            .arg(format!(
                "source '{}'; complete -C 'ocibench '",
                fish.display()
            )),
    );
    // `NAME<TAB>description` per candidate.
    let offered: Vec<&str> = offered
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    for c in &commands {
        assert!(
            offered.contains(&c.as_str()),
            "fish does not offer {c}: {offered:?}"
        );
    }

    let zsh = script(&ctx, "zsh");
    parses(tools::command("zsh", "zsh").arg("-n").arg(&zsh));
    let text = std::fs::read_to_string(&zsh).unwrap();
    assert!(text.starts_with("#compdef ocibench\n"), "{}", &text[..80]);
    for c in &commands {
        // zsh's `_describe` list: 'NAME:description'.
        assert!(text.contains(&format!("'{c}:")), "zsh script lacks {c}");
    }

    let out = ctx.run(["completions", "tcsh"]).failure(2);
    assert!(
        out.stderr.contains("[possible values: bash, zsh, fish]"),
        "{}",
        out.stderr
    );
}

/// groff's warnings (all of them, `-ww`) on `page`; its output is thrown away (`-z`).
fn groff_warnings(page: &Path) -> String {
    let out = Output::of(
        tools::command("groff", "groff-base")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(page),
    );
    assert!(out.status.success(), "{}", out.stderr);
    out.stderr
}

/// `man -l PAGE` as a reader sees it, plain text at 100 columns.
fn man_text(page: &Path) -> String {
    run_stdout(
        tools::command("man", "man-db")
            .args(["-l", "-P", "cat"])
            .arg(page)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "")
            .env("LANG", "C.UTF-8"),
    )
}

#[test]
fn man_pages_render_cleanly_and_name_every_subcommand_and_global_flag() {
    let ctx = TestContext::new();
    let (commands, flags) = help_listing(&ctx);
    let save = |name: &str, out: Output| {
        assert_eq!(out.stderr, "", "{name}");
        let path = ctx.path(name);
        std::fs::write(&path, &out.stdout).unwrap();
        path
    };

    let top = save("ocibench.1", ctx.run(["man"]).success());
    assert_eq!(groff_warnings(&top), "", "ocibench.1");
    // man-db prints `ocibench-pull(1)` with a hyphen it may render as U+2010.
    let text = man_text(&top).replace('\u{2010}', "-");
    assert!(text.starts_with("ocibench(1)"), "{text}");
    for c in &commands {
        assert!(
            text.contains(&format!("ocibench-{c}(1)")),
            "ocibench(1) lacks {c}:\n{text}"
        );
    }
    for f in &flags {
        assert!(text.contains(f.as_str()), "ocibench(1) lacks {f}:\n{text}");
    }

    for c in &commands {
        let page = save(
            &format!("ocibench-{c}.1"),
            ctx.run(["man", c.as_str()]).success(),
        );
        assert_eq!(groff_warnings(&page), "", "ocibench-{c}.1");
        let text = man_text(&page).replace('\u{2010}', "-");
        assert!(text.starts_with(&format!("ocibench-{c}(1)")), "{text}");
        // Global flags are on every subcommand's page too.
        assert!(text.contains("--verbose"), "ocibench-{c}(1):\n{text}");
    }
    // Nested: `cache prune` has its own page.
    let prune = save(
        "ocibench-cache-prune.1",
        ctx.run(["man", "cache", "prune"]).success(),
    );
    assert!(
        man_text(&prune)
            .replace('\u{2010}', "-")
            .starts_with("ocibench-cache-prune(1)")
    );

    // Every page at once, for a man1 directory: the same bytes as one by one.
    let dir = ctx.path("man1");
    std::fs::create_dir(&dir).unwrap();
    ctx.run(["man", "--output-dir", dir.to_str().unwrap()])
        .success();
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    for c in &commands {
        assert!(written.contains(&format!("ocibench-{c}.1")), "{written:?}");
    }
    assert_eq!(
        std::fs::read(dir.join("ocibench.1")).unwrap(),
        std::fs::read(&top).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.join("ocibench-pull.1")).unwrap(),
        std::fs::read(ctx.path("ocibench-pull.1")).unwrap()
    );

    let out = ctx.run(["man", "pul"]).failure(2);
    assert!(
        out.stderr
            .starts_with("error: ocibench has no subcommand \"pul\"\nhint: "),
        "{}",
        out.stderr
    );
}
