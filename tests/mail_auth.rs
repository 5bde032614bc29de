//! SMTP AUTH against a real server that requires it: the password comes from a password
//! file, the right one delivers, a wrong one keeps the mail queued (retried and logged, no
//! panic, no drop) until the settings are fixed.

mod mail_common;

use std::time::Duration;

use mail_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_file_logs_in_and_delivers() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = SmtpServer::start(
        free_port(),
        &dir.path().join("maildir"),
        Some(("vaced", "s3cret pass")),
    )
    .await;
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, "s3cret pass\n").expect("writing the password file");
    let (_db, tree) = open_tree(dir.path());
    let running = Running::start(
        smtp_settings(server.port, Some(("vaced", &password_file))),
        tree,
    );

    let n = done("job-000042/done", &["ann@example.org"], None);
    assert!(running.mailer.enqueue(n).await.expect("enqueue"));
    let mails = wait_for_mails(&server.maildir, 1, Duration::from_secs(10)).await;
    running.stop().await;
    assert!(
        Parsed::new(&mails[0])
            .header("Subject")
            .is_some_and(|s| s.contains("beach-sunset"))
    );
}

// Current-thread, so the captured logs include the sender loop's.
#[tokio::test]
async fn wrong_password_keeps_the_mail_until_fixed() {
    let logs = CapturedLogs::default();
    let _capture = logs.start();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = SmtpServer::start(
        free_port(),
        &dir.path().join("maildir"),
        Some(("vaced", "right")),
    )
    .await;
    let wrong = dir.path().join("wrong-password");
    std::fs::write(&wrong, "wrong\n").expect("writing the password file");
    let right = dir.path().join("right-password");
    std::fs::write(&right, "right\n").expect("writing the password file");

    let (_db, tree) = open_tree(dir.path());
    let running = Running::start(
        smtp_settings(server.port, Some(("vaced", &wrong))),
        tree.clone(),
    );
    let n = done("job-000042/done", &["ann@example.org"], None);
    assert!(running.mailer.enqueue(n).await.expect("enqueue"));
    // The first attempt and the retry after ~1 s are both refused (535).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mailer = running.stop().await;
    assert!(mails(&server.maildir).is_empty());
    assert_eq!(mailer.pending().expect("pending"), 1, "not dropped");
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("will retry") && text.contains("535"),
        "the operator sees why: {text}"
    );
    assert!(!text.contains("ERROR"), "nothing dropped: {text}");
    drop(mailer);

    let running = Running::start(smtp_settings(server.port, Some(("vaced", &right))), tree);
    wait_for_mails(&server.maildir, 1, Duration::from_secs(8)).await;
    let mailer = running.stop().await;
    assert_eq!(mailer.pending().expect("pending"), 0);
}
