//! Policy authoring in pull requests: the Markdown plan, `--detailed-exitcode`, shell
//! completions and the man page.

use github_emulator::FleetSpec;

use crate::util::emu;
use crate::util::rotor::Workspace;

const POLICY: &str = "version: 1\nname: deploy\nowner: security@example.com\nsource:\n  generate: { length: 32 }\nsecrets:\n  DEPLOY_TOKEN: value\ntargets:\n  - org: acme\nschedule:\n  every: 30d\n";

#[tokio::test]
async fn a_markdown_plan_and_terraforms_detailed_exit_codes() {
    let (emu, handle) = emu::start(FleetSpec::generate(&["acme"], 2)).await;
    let ws = Workspace::new(&handle.url, emu::DEFAULT_TOKEN, None);
    ws.write_policy("deploy.yaml", POLICY);

    let run = ws
        .run(&["plan", "--output", "markdown", "--detailed-exitcode"])
        .await
        .expect_code(2);
    assert!(run.stdout.starts_with("### rotor plan\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("| `deploy` | generate (not stored) | no version yet"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("<details><summary><code>deploy</code> — owner security@example.com</summary>"));
    assert!(
        run.stdout
            .contains("| acme/svc-0002 | `DEPLOY_TOKEN` | create |"),
        "{}",
        run.stdout
    );

    ws.run(&["apply"]).await.expect_code(0);
    let value = emu
        .decrypted(
            &github_emulator::Scope::Repo {
                owner: "acme".into(),
                repo: "svc-0001".into(),
                app: github_emulator::App::Actions,
            },
            "DEPLOY_TOKEN",
        )
        .unwrap();
    let run = ws
        .run(&["plan", "--output", "markdown", "--detailed-exitcode"])
        .await
        .expect_code(0);
    assert!(run.stdout.contains("| unchanged |"), "{}", run.stdout);
    assert!(!run.stdout.contains(&value), "never a value");
    // Without the flag, a plan with changes is still 0.
    ws.write_policy(
        "deploy.yaml",
        &POLICY.replace("every: 30d", "every: 30d\n  max_age: 1s"),
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ws.run(&["plan"]).await.expect_code(0);
    ws.run(&["plan", "--detailed-exitcode"])
        .await
        .expect_code(2);

    // Bad input stays apart from "changes pending".
    ws.write_policy("broken.yaml", "version: 2\n");
    let run = ws
        .run(&["plan", "--detailed-exitcode"])
        .await
        .expect_code(3);
    assert!(
        run.stderr.contains("broken.yaml:1:10: E0101"),
        "{}",
        run.stderr
    );
    ws.run(&["plan"]).await.expect_code(2);
}

#[tokio::test]
async fn shell_completions_and_a_man_page() {
    let ws = Workspace::new("http://127.0.0.1:9", "t", None);
    for (shell, marker) in [
        ("bash", "complete -F _rotor"),
        ("zsh", "#compdef rotor"),
        ("fish", "complete -c rotor"),
    ] {
        let run = ws.run(&["completions", shell]).await.expect_code(0);
        assert!(
            run.stdout.contains(marker),
            "{shell}: {}",
            &run.stdout[..run.stdout.len().min(300)]
        );
        assert!(run.stdout.contains("detailed-exitcode"), "{shell}");
    }
    let run = ws.run(&["man"]).await.expect_code(0);
    assert!(run.stdout.contains(".TH rotor 1"), "{}", &run.stdout[..200]);
    assert!(run.stdout.contains("completions"));
}
