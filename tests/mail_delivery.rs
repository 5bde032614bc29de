//! What people receive: finished and failed job mails delivered to a real SMTP server
//! (aiosmtpd on loopback), the poster attachment, one mail per idempotency key, a bad
//! recipient that does not hold up the others, and the `.eml` spool for setups without a
//! server.

mod mail_common;

use std::time::Duration;

use mail_common::*;
use vaced::mail::{Mailer, Transport};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_mail_arrives_with_its_poster() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = SmtpServer::start(free_port(), &dir.path().join("maildir"), None).await;
    let poster = dir.path().join("poster.png");
    std::fs::write(&poster, TINY_PNG).expect("writing the poster");
    let (_db, tree) = open_tree(dir.path());
    let running = Running::start(smtp_settings(server.port, None), tree);

    let n = done(
        "job-000042/done",
        &["Ann <ann@example.org>", "bob@example.org"],
        Some(poster),
    );
    assert!(running.mailer.enqueue(n).await.expect("enqueue"));

    let mails = wait_for_mails(&server.maildir, 1, WAIT).await;
    let mail = Parsed::new(&mails[0]);
    assert_eq!(
        mail.header("Subject"),
        Some("[vaced] done: beach-sunset (job-000042)")
    );
    assert_eq!(
        mail.header("X-RcptTo"),
        Some("ann@example.org, bob@example.org")
    );
    let to = mail.header("To").expect("a To header");
    assert!(
        to.contains("ann@example.org") && to.contains("bob@example.org"),
        "{to}"
    );
    assert!(
        mail.header("From")
            .is_some_and(|f| f.contains("vaced@render01.studio"))
    );

    let parts = mail.parts();
    assert_eq!(parts.len(), 2, "text and poster");
    let text = &parts[0];
    assert!(
        text.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    for needle in [
        "/srv/vaced/done/beach-sunset",
        "81",
        "832x480",
        "16",
        "1234",
        "denoise",
        "301.2",
    ] {
        assert!(text.body.contains(needle), "{needle} not in\n{}", text.body);
    }
    let png = &parts[1];
    assert_eq!(png.header("Content-Type"), Some("image/png"));
    let disposition = png.header("Content-Disposition").expect("a disposition");
    assert!(
        disposition.starts_with("attachment") && disposition.contains("poster.png"),
        "{disposition}"
    );
    assert_eq!(png.header("Content-Transfer-Encoding"), Some("base64"));
    assert_eq!(base64_decode(&png.body), TINY_PNG);

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_mail_says_what_went_wrong_and_how_to_fix_it() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = SmtpServer::start(free_port(), &dir.path().join("maildir"), None).await;
    let (_db, tree) = open_tree(dir.path());
    let running = Running::start(smtp_settings(server.port, None), tree);

    let n = failed("job-000043/failed", &["ann@example.org"]);
    assert!(running.mailer.enqueue(n).await.expect("enqueue"));

    let mails = wait_for_mails(&server.maildir, 1, WAIT).await;
    let mail = Parsed::new(&mails[0]);
    assert_eq!(
        mail.header("Subject"),
        Some("[vaced] FAILED: city-night (job-000043)")
    );
    assert!(
        mail.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "no attachment on failure"
    );
    for needle in [
        "/srv/vaced/failed/city-night",
        "source.mp4: no video stream found",
        "re-export the clip as H.264 MP4 and drop the job in again",
        "2 attempts",
    ] {
        assert!(mail.body.contains(needle), "{needle} not in\n{}", mail.body);
    }
    running.stop().await;
    assert_eq!(mails.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_twice_sends_one_mail() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = SmtpServer::start(free_port(), &dir.path().join("maildir"), None).await;
    let (_db, tree) = open_tree(dir.path());
    let mailer = Mailer::new(smtp_settings(server.port, None), tree.clone()).expect("mailer");

    // Twice while pending, before the sender runs...
    let n = done("job-000042/done", &["ann@example.org"], None);
    assert!(mailer.enqueue(n.clone()).await.expect("enqueue"));
    assert!(!mailer.enqueue(n.clone()).await.expect("enqueue again"));
    assert_eq!(mailer.pending().expect("pending"), 1);
    drop(mailer);

    let running = Running::start(smtp_settings(server.port, None), tree);
    wait_for_mails(&server.maildir, 1, WAIT).await;
    // ...and once more after it was delivered.
    assert!(
        !running
            .mailer
            .enqueue(n)
            .await
            .expect("enqueue after delivery")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mailer = running.stop().await;
    assert_eq!(mails(&server.maildir).len(), 1);
    assert_eq!(mailer.pending().expect("pending"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_while_the_server_answers_sends_the_mail_once() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = SmtpServer::start_replying_late(
        free_port(),
        &dir.path().join("maildir"),
        Duration::from_millis(700),
    )
    .await;
    let (_db, tree) = open_tree(dir.path());
    let running = Running::start(smtp_settings(server.port, None), tree.clone());
    let n = done("job-000042/done", &["ann@example.org"], None);
    assert!(running.mailer.enqueue(n).await.expect("enqueue"));

    // The server holds the message and has not said so yet: the daemon is stopped now.
    wait_for_mails(&server.maildir, 1, WAIT).await;
    let mailer = running.stop().await;
    assert_eq!(
        mailer.pending().expect("pending"),
        0,
        "the answer was awaited"
    );
    drop(mailer);

    // A restart does not send it a second time.
    let running = Running::start(smtp_settings(server.port, None), tree);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await;
    assert_eq!(mails(&server.maildir).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_recipient_is_dropped_and_later_mail_still_goes_out() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = SmtpServer::start(free_port(), &dir.path().join("maildir"), None).await;
    let (_db, tree) = open_tree(dir.path());
    let mailer = Mailer::new(smtp_settings(server.port, None), tree.clone()).expect("mailer");
    // The server answers 550 for this one; it is first in the queue.
    let bad = failed("job-000043/failed", &["reject-me@example.org"]);
    let good = done("job-000042/done", &["ann@example.org"], None);
    assert!(mailer.enqueue(bad.clone()).await.expect("enqueue"));
    assert!(mailer.enqueue(good).await.expect("enqueue"));
    drop(mailer);

    let running = Running::start(smtp_settings(server.port, None), tree);
    let mails = wait_for_mails(&server.maildir, 1, WAIT).await;
    assert!(
        Parsed::new(&mails[0])
            .header("Subject")
            .is_some_and(|s| s.contains("done"))
    );
    let deadline = std::time::Instant::now() + WAIT;
    while running.mailer.pending().expect("pending") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the rejected mail was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Dropped for good: enqueueing it again does not retry it.
    assert!(!running.mailer.enqueue(bad).await.expect("enqueue again"));
    running.stop().await;
    assert_eq!(mails.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_writes_a_readable_eml() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("outgoing-mail");
    let poster = dir.path().join("poster.png");
    std::fs::write(&poster, TINY_PNG).expect("writing the poster");
    let (_db, tree) = open_tree(dir.path());
    let running = Running::start(quick_retries(Transport::Spool(spool.clone())), tree);

    let n = done("job-000042/done", &["ann@example.org"], Some(poster));
    assert!(running.mailer.enqueue(n).await.expect("enqueue"));

    let deadline = std::time::Instant::now() + WAIT;
    let eml = loop {
        let found: Vec<_> = std::fs::read_dir(&spool)
            .expect("the spool folder exists")
            .map(|e| e.expect("spool entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        if let [eml] = found.as_slice() {
            break eml.clone();
        }
        assert!(found.len() <= 1, "one .eml expected, found {found:?}");
        assert!(std::time::Instant::now() < deadline, "no .eml in the spool");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    running.stop().await;
    let raw = std::fs::read_to_string(&eml).expect("the .eml is text");
    let mail = Parsed::new(&raw);
    assert_eq!(
        mail.header("Subject"),
        Some("[vaced] done: beach-sunset (job-000042)")
    );
    assert_eq!(mail.header("To"), Some("ann@example.org"));
    let parts = mail.parts();
    assert!(parts[0].body.contains("/srv/vaced/done/beach-sunset"));
    assert_eq!(base64_decode(&parts[1].body), TINY_PNG);
}

#[tokio::test]
async fn invalid_address_is_refused_at_enqueue_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_db, tree) = open_tree(dir.path());
    let mailer = Mailer::new(quick_retries(Transport::Disabled), tree).expect("mailer");
    let n = done("k", &["ann@example.org", "ann at example dot org"], None);
    let err = mailer
        .enqueue(n)
        .await
        .expect_err("bad address")
        .to_string();
    assert!(err.contains("`ann at example dot org`"), "{err}");
}
