//! The daemon end to end, driven like a user: job folders dropped into its inbox come out
//! in the outbox (or the failed folder) with a mail, and bad jobs never stop it.
#![cfg(feature = "ffmpeg")]

mod daemon_common;

use std::io::Write;
use std::time::Duration;

use daemon_common::*;

const QUICK: &str = r#"{"version": 1, "prompt": "a red ball rolling across a meadow", "model": "tiny", "steps": 2, "frames": 9, "seed": 5, "inputs": {"video": "source.mp4", "mask": "mask.png"}}"#;

#[test]
fn a_dropped_job_is_rendered_published_and_mailed() {
    let port = free_port();
    let env = Env::new(&format!(
        "[mail]\nsmtp = \"smtp://127.0.0.1:{port}\"\nretry_initial = \"1s\"\nretry_max = \"2s\"\n"
    ));
    let smtp = Smtp::start(port, &env.root.path().join("maildir"));
    let daemon = env.start(&[]);
    let job = env.job_folder("inpaint-1", "inpainting", QUICK);
    env.submit(&job, "inpaint-1");

    let out = env.wait_done("inpaint-1", Duration::from_secs(120));
    let info = vaced::media::video::probe(&out.join("result.mp4")).unwrap();
    assert_eq!((info.frames, info.width_px, info.height_px), (9, 128, 80));
    for file in ["poster.png", "contact-sheet.png", "report.json", "job.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(
        !env.outbox.join("inpaint-1.status.json").exists(),
        "the status file outlived the job"
    );
    assert!(
        !env.inbox.join("inpaint-1").exists(),
        "the job stayed in the inbox"
    );

    wait_for("the mail", Duration::from_secs(30), || {
        !smtp.mails().is_empty()
    });
    let mail = &smtp.mails()[0];
    assert!(mail.contains("done: inpaint-1"), "{mail}");
    assert!(mail.contains("ops@studio.example"), "{mail}");
    assert!(
        mail.contains("image/png") && mail.contains("poster.png"),
        "poster not attached:\n{mail}"
    );
    assert!(daemon.stop(), "the daemon did not exit cleanly on SIGTERM");
}

#[test]
fn bad_jobs_fail_with_specific_messages_and_the_daemon_keeps_going() {
    let env = Env::new("");
    let _daemon = env.start(&[]);
    let cases = [
        (
            "malformed",
            r#"{"version": 1, "prompt": "x", "model": "tiny",}"#,
            "not valid JSON",
        ),
        (
            "missing-file",
            r#"{"version": 1, "prompt": "x", "model": "tiny", "inputs": {"video": "take-2.mp4"}}"#,
            "`take-2.mp4` does not exist in the job folder",
        ),
        (
            "escape",
            r#"{"version": 1, "prompt": "x", "model": "tiny", "inputs": {"video": "../../etc/passwd"}}"#,
            "leaves the job folder",
        ),
    ];
    for (name, manifest, _) in cases {
        env.submit(&env.job_folder(name, "inpainting", manifest), name);
    }
    env.submit(&env.job_folder("good", "inpainting", QUICK), "good");
    for (name, _, message) in cases {
        let error = env.wait_failed(name, Duration::from_secs(60));
        assert_eq!(error["state"], "failed");
        let why = error["why"].as_str().unwrap();
        assert!(why.contains(message), "{name}: {why}");
        assert!(
            error["how_to_fix"]
                .as_str()
                .unwrap()
                .contains("drop the folder again"),
            "{name}: {error}"
        );
        // The user's files come back beside the report.
        assert!(
            env.failed.join(name).join("job.json").is_file(),
            "{name}: manifest not kept"
        );
        assert!(
            env.failed.join(name).join("log.txt").is_file(),
            "{name}: log not kept"
        );
    }
    env.wait_done("good", Duration::from_secs(120));
}

#[test]
fn a_slowly_copied_folder_waits_until_it_is_complete_and_part_files_never_start() {
    let env = Env::new("");
    let _daemon = env.start(&[]);
    // Manifest first, then the video growing over ~3 s (longer than the 1.5 s settle would
    // allow if growth were not noticed, each pause shorter than it).
    let slow = env.inbox.join("slow");
    std::fs::create_dir_all(&slow).unwrap();
    std::fs::write(slow.join("job.json"), QUICK).unwrap();
    std::fs::copy(
        format!("{SAMPLES}/inpainting/mask.png"),
        slow.join("mask.png"),
    )
    .unwrap();
    let video = std::fs::read(format!("{SAMPLES}/inpainting/source.mp4")).unwrap();
    let mut file = std::fs::File::create(slow.join("source.mp4")).unwrap();
    for chunk in video.chunks(video.len().div_ceil(6)) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            slow.exists(),
            "the folder was taken while its video was still being written"
        );
    }
    drop(file);
    env.wait_done("slow", Duration::from_secs(120));

    // A folder with a *.part file is never picked up.
    let partial = env.inbox.join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    // Another seed: the same content again would be a duplicate of `slow`.
    std::fs::write(
        partial.join("job.json"),
        QUICK.replace("\"seed\": 5", "\"seed\": 6"),
    )
    .unwrap();
    std::fs::copy(
        format!("{SAMPLES}/inpainting/mask.png"),
        partial.join("mask.png"),
    )
    .unwrap();
    std::fs::write(partial.join("source.mp4.part"), &video[..video.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert!(partial.exists(), "a folder holding a .part file was taken");
    assert!(
        env.job("partial").is_none(),
        "a folder holding a .part file was queued"
    );
    // Finishing the copy releases it.
    std::fs::rename(partial.join("source.mp4.part"), partial.join("source.mp4")).unwrap();
    std::fs::write(partial.join("source.mp4"), &video).unwrap();
    env.wait_done("partial", Duration::from_secs(120));
}

#[test]
fn a_dropped_again_folder_is_reported_as_a_duplicate() {
    let env = Env::new("");
    let _daemon = env.start(&[]);
    let job = env.job_folder("first", "inpainting", QUICK);
    env.submit(&job, "first");
    env.wait_done("first", Duration::from_secs(120));
    env.submit(&job, "again");
    let error = env.wait_failed("again", Duration::from_secs(60));
    let why = error["why"].as_str().unwrap();
    assert!(
        why.contains("identical to job-") && why.contains("`first`"),
        "{why}"
    );
    assert!(!env.outbox.join("again").exists());
}
