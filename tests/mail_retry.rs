//! Mail survives a server that is down: retried with backoff until it comes up and then
//! delivered exactly once, and kept across a restart of the daemon (a new mailer on the
//! reopened sled database sends what the old one could not).

mod mail_common;

use std::time::Duration;

use mail_common::*;
use vaced::mail::Mailer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_then_up_mail_arrives_once() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let maildir = dir.path().join("maildir");
    let (_db, tree) = open_tree(dir.path());
    let running = Running::start(smtp_settings(port, None), tree);

    let n = done("job-000042/done", &["ann@example.org"], None);
    assert!(running.mailer.enqueue(n).await.expect("enqueue"));
    // Attempts now, after ~1 s and ~2 s all fail: nobody listens.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(running.mailer.pending().expect("pending"), 1);

    let server = SmtpServer::start(port, &maildir, None).await;
    wait_for_mails(&server.maildir, 1, Duration::from_secs(8)).await;
    // Give a duplicate the chance to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mailer = running.stop().await;
    assert_eq!(mails(&server.maildir).len(), 1, "delivered exactly once");
    assert_eq!(mailer.pending().expect("pending"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_mail_survives_a_restart() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let maildir = dir.path().join("maildir");

    {
        let (db, tree) = open_tree(dir.path());
        let running = Running::start(smtp_settings(port, None), tree);
        let first = failed("job-000043/failed", &["ann@example.org"]);
        let second = done("job-000042/done", &["bob@example.org"], None);
        assert!(running.mailer.enqueue(first).await.expect("enqueue"));
        assert!(running.mailer.enqueue(second).await.expect("enqueue"));
        // Let at least one delivery attempt fail against the closed port.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mailer = running.stop().await;
        assert_eq!(mailer.pending().expect("pending"), 2);
        drop(mailer);
        drop(db);
    }

    let server = SmtpServer::start(port, &maildir, None).await;
    let (_db, tree) = open_tree(dir.path());
    let running = Running::start(smtp_settings(port, None), tree);
    // The failed attempt scheduled a retry about a second out; both go then.
    let mails = wait_for_mails(&server.maildir, 2, Duration::from_secs(8)).await;
    let mailer = running.stop().await;
    let mut subjects: Vec<_> = mails
        .iter()
        .map(|m| {
            Parsed::new(m)
                .header("Subject")
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "[vaced] FAILED: city-night (job-000043)",
            "[vaced] done: beach-sunset (job-000042)"
        ]
    );
    assert_eq!(mailer.pending().expect("pending"), 0);
}

#[tokio::test]
async fn enqueued_mail_is_on_disk_before_enqueue_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (_db, tree) = open_tree(dir.path());
        let mailer = Mailer::new(smtp_settings(free_port(), None), tree).expect("mailer");
        let n = done("job-000042/done", &["ann@example.org"], None);
        assert!(mailer.enqueue(n).await.expect("enqueue"));
    }
    let (_db, tree) = open_tree(dir.path());
    let mailer = Mailer::new(smtp_settings(free_port(), None), tree).expect("mailer");
    assert_eq!(mailer.pending().expect("pending"), 1);
}
