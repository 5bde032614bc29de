//! Mail when the SMTP server is down: the job still finishes, the mail waits in the queue
//! database (across a daemon crash) and is delivered once the server is back.
#![cfg(feature = "ffmpeg")]

mod daemon_common;

use std::time::Duration;

use daemon_common::*;

const QUICK: &str = r#"{"version": 1, "prompt": "a red ball", "model": "tiny", "steps": 2, "frames": 9, "seed": 21, "notify": ["director@studio.example"], "inputs": {"video": "source.mp4", "mask": "mask.png"}}"#;

#[test]
fn a_mail_server_down_during_the_job_gets_the_mail_when_it_is_back() {
    let port = free_port();
    let env = Env::new(&format!(
        "[mail]\nsmtp = \"smtp://127.0.0.1:{port}\"\nretry_initial = \"1s\"\nretry_max = \"2s\"\n"
    ));
    let daemon = env.start(&[]);
    env.submit(&env.job_folder("ball", "inpainting", QUICK), "ball");
    env.wait_done("ball", Duration::from_secs(120));
    wait_for(
        "the mail to wait for the server",
        Duration::from_secs(10),
        || env.status()["pending_mail"] == 1,
    );

    // The daemon crashes while the mail is undelivered; nothing is lost.
    daemon.kill();
    let smtp = Smtp::start(port, &env.root.path().join("maildir"));
    let daemon = env.start(&[]);
    wait_for("the mail", Duration::from_secs(30), || {
        !smtp.mails().is_empty()
    });
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("done: ball") && mails[0].contains("director@studio.example"),
        "{}",
        mails[0]
    );
    wait_for("the mail queue to empty", Duration::from_secs(10), || {
        env.status()["pending_mail"] == 0
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.mails().len(), 1, "the mail was sent twice");
    assert!(daemon.stop());
}
