//! The spool directory: durable writes, reading back, journal, listing,
//! removal, quarantine, locking, group commit.

use oxim_spool::*;
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

fn envelope(gen: &IdGenerator, rcpts: &[&str]) -> Envelope {
    let mut env = Envelope::new(gen.next(), "CALLER@myhost.test.ex");
    env.login = "CALLER".into();
    env.uid = 1000;
    env.gid = 1000;
    env.received_time = 1_700_000_000;
    env.protocol = Some("local".into());
    env.recipients = rcpts.iter().map(|r| Recipient::new(*r)).collect();
    env
}

fn headers() -> Vec<Header> {
    vec![
        Header::new("Received: from CALLER by myhost.test.ex with local (oxim)\n"),
        Header::new("Subject: test\n"),
    ]
}

/// Names in input/ that are not message files.
fn stray_files(spool: &Spool) -> Vec<String> {
    std::fs::read_dir(spool.input_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !(n.ends_with("-H") || n.ends_with("-D")))
        .collect()
}

#[test]
fn open_creates_layout_with_restrictive_modes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("spool");
    let spool = Spool::open(&root).unwrap();
    for sub in ["input", "msglog", "db"] {
        let m = std::fs::metadata(root.join(sub)).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o777, 0o750, "{sub}");
    }
    assert_eq!(spool.root(), root);
    // Opening again is fine.
    Spool::open(&root).unwrap();
}

#[test]
fn write_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@test.ex", "b@test.ex"]);
    let hs = headers();
    let body = b"line one\nline two\n";
    spool.write_bytes(&env, &hs, body).unwrap();

    let id = env.id;
    let d = std::fs::read(spool.data_path(&id)).unwrap();
    assert_eq!(d, [format!("{id}-D\n").as_bytes(), body].concat());
    let m = std::fs::metadata(spool.header_path(&id)).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o640);

    let msg = spool.read(&id).unwrap();
    assert_eq!(msg.envelope, env);
    assert_eq!(msg.headers, hs);
    assert_eq!(msg.body_len, body.len() as u64);
    assert_eq!(msg.size(), header_size(&hs) + 1 + body.len() as u64);
    let (mut f, len) = spool.open_body(&id).unwrap();
    let mut got = Vec::new();
    f.read_to_end(&mut got).unwrap();
    assert_eq!(got, body);
    assert_eq!(len, body.len() as u64);
    assert!(stray_files(&spool).is_empty());
}

#[test]
fn write_refuses_existing_id_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Long);
    let env = envelope(&gen, &["a@test.ex"]);
    spool.write_bytes(&env, &headers(), b"x\n").unwrap();
    assert!(matches!(
        spool.write_bytes(&env, &headers(), b"y\n"),
        Err(SpoolError::Exists(_))
    ));
    assert!(stray_files(&spool).is_empty());
    // The original is untouched.
    assert_eq!(spool.open_body(&env.id).unwrap().1, 2);
}

#[test]
fn failed_body_read_leaves_nothing() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("client went away"))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@test.ex"]);
    let err = spool.write(&env, &headers(), &mut Failing).unwrap_err();
    assert!(err.to_string().contains("client went away"), "{err}");
    assert!(!spool.exists(&env.id));
    assert!(std::fs::read_dir(spool.input_dir())
        .unwrap()
        .next()
        .is_none());
    assert!(spool.list().unwrap().is_empty());
}

#[test]
fn list_is_in_queue_order_and_ignores_junk() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let mut ids = Vec::new();
    for (t, pid) in [(300u64, 5u64), (100, 9), (200, 1), (100, 2)] {
        let mut env = envelope(&IdGenerator::new(IdFormat::Classic), &["a@x"]);
        env.id = MessageId::from_parts(IdFormat::Classic, 1_700_000_000 + t, pid, 0);
        spool.write_bytes(&env, &headers(), b"").unwrap();
        ids.push(env.id);
    }
    // Junk that must not be listed.
    std::fs::write(spool.input_dir().join("tmp-10HmaX-0005vi-00-H"), "x").unwrap();
    std::fs::write(spool.input_dir().join("notanid-H"), "x").unwrap();
    std::fs::write(
        spool.input_dir().join(format!(
            "{}-D",
            MessageId::from_parts(IdFormat::Classic, 1, 1, 1)
        )),
        "x",
    )
    .unwrap();
    let listed = spool.list().unwrap();
    let mut expect = ids.clone();
    expect.sort();
    assert_eq!(listed, expect);
    let times: Vec<u64> = listed.iter().map(|i| i.time()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(listed[0].middle(), 2);
}

#[test]
fn journal_marks_delivered_and_rewrite_folds_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@x", "b@x", "c@x"]);
    let id = env.id;
    spool.write_bytes(&env, &headers(), b"body\n").unwrap();

    spool.mark_delivered(&id, &["b@x"]).unwrap();
    spool.mark_delivered(&id, &["child@y"]).unwrap();
    // A torn final line (crash mid-append) is ignored.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(spool.journal_path(&id))
        .unwrap()
        .write_all(b"c@")
        .unwrap();
    let msg = spool.read(&id).unwrap();
    let done: Vec<bool> = msg.envelope.recipients.iter().map(|r| r.done).collect();
    assert_eq!(done, [false, true, false]);
    assert_eq!(msg.envelope.non_recipients, ["child@y"]);
    assert_eq!(msg.envelope.pending_recipients().count(), 2);

    let mut env2 = msg.envelope.clone();
    env2.warning_count = 1;
    spool.rewrite_header(&env2, &msg.headers).unwrap();
    assert!(!spool.journal_path(&id).exists());
    let again = spool.read(&id).unwrap();
    assert_eq!(again.envelope, env2);
    assert!(stray_files(&spool).is_empty());

    // The -H file records delivered addresses in its non-recipients tree.
    let text = std::fs::read_to_string(spool.header_path(&id)).unwrap();
    assert!(
        text.contains(" b@x\n") && text.contains(" child@y\n"),
        "{text}"
    );
}

#[test]
fn remove_takes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@x"]);
    let id = env.id;
    spool.write_bytes(&env, &headers(), b"body\n").unwrap();
    spool.mark_delivered(&id, &["a@x"]).unwrap();
    spool
        .append_msglog(&id, "2024-01-01 00:00:00 Received from x")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(spool.msglog_path(&id)).unwrap(),
        "2024-01-01 00:00:00 Received from x\n"
    );
    spool.remove(&id).unwrap();
    for p in [
        spool.header_path(&id),
        spool.data_path(&id),
        spool.journal_path(&id),
        spool.msglog_path(&id),
    ] {
        assert!(!p.exists(), "{}", p.display());
    }
    assert!(matches!(spool.remove(&id), Err(SpoolError::NotFound(_))));
    assert!(matches!(spool.read(&id), Err(SpoolError::NotFound(_))));
}

#[test]
fn unreadable_message_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@x"]);
    let id = env.id;
    spool.write_bytes(&env, &headers(), b"body\n").unwrap();
    // Corrupt the -H file.
    std::fs::write(spool.header_path(&id), format!("{id}-H\nCALLER x\n")).unwrap();
    let err = spool.read(&id).unwrap_err();
    assert!(matches!(err, SpoolError::Format { .. }), "{err}");
    let qdir = spool.quarantine(&id, &err.to_string()).unwrap();
    assert!(!spool.exists(&id));
    assert!(spool.list().unwrap().is_empty());
    assert!(qdir.join(format!("{id}-H")).exists());
    assert!(qdir.join(format!("{id}-D")).exists());
    let reason = std::fs::read_to_string(qdir.join(format!("{id}.reason"))).unwrap();
    assert!(reason.contains("bad login/uid/gid line"), "{reason}");
}

#[test]
fn id_line_mismatch_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@x"]);
    spool.write_bytes(&env, &headers(), b"").unwrap();
    let other = gen.next();
    std::fs::rename(spool.header_path(&env.id), spool.header_path(&other)).unwrap();
    assert!(matches!(
        spool.read(&other),
        Err(SpoolError::IdMismatch { .. })
    ));
}

#[test]
fn lock_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@x"]);
    spool.write_bytes(&env, &headers(), b"").unwrap();
    let l1 = spool.lock(&env.id).unwrap().expect("first lock");
    assert_eq!(l1.id(), env.id);
    assert!(spool.lock(&env.id).unwrap().is_none());
    drop(l1);
    assert!(spool.lock(&env.id).unwrap().is_some());
    assert!(matches!(
        spool.lock(&gen.next()),
        Err(SpoolError::NotFound(_))
    ));
}

#[test]
fn stale_temps_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@x"]);
    spool.write_bytes(&env, &headers(), b"kept\n").unwrap();
    spool.mark_delivered(&env.id, &["a@x"]).unwrap();
    std::fs::write(spool.input_dir().join("tmp-10HmaX-0005vi-00-D"), "x").unwrap();
    // Orphans: -D and -J without -H.
    std::fs::write(spool.input_dir().join("10HmaY-0005vi-00-D"), "x").unwrap();
    std::fs::write(spool.input_dir().join("10HmaZ-0005vi-00-J"), "x").unwrap();
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(spool.remove_stale_temps(hour).unwrap(), 0);
    assert_eq!(
        spool.remove_stale_temps(std::time::Duration::ZERO).unwrap(),
        3
    );
    let mut left: Vec<String> = std::fs::read_dir(spool.input_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let id = env.id;
    assert_eq!(
        left,
        [format!("{id}-D"), format!("{id}-H"), format!("{id}-J")]
    );
}

#[test]
fn bp_listing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);
    let mut env = envelope(
        &gen,
        &[
            "red.king@looking-glass.fict.example",
            "white.rabbit@wonderland.fict.example",
        ],
    );
    env.sender = "alice@wonderland.fict.example".into();
    let body = vec![b'x'; 2900];
    spool
        .write_bytes(&env, &[Header::new("Subject: x\n")], &body)
        .unwrap();
    spool
        .mark_delivered(&env.id, &["white.rabbit@wonderland.fict.example"])
        .unwrap();
    let msg = spool.read(&env.id).unwrap();
    // 12 (header) + 1 + 2900 = 2913 bytes = 2.8K
    let out = bp_format(&msg, env.received_time + 25 * 60 + 10, BpMode::All);
    assert_eq!(
        out,
        format!(
            "25m  2.8K {} <alice@wonderland.fict.example>\n          red.king@looking-glass.fict.example\n        D white.rabbit@wonderland.fict.example\n\n",
            env.id
        )
    );
    let out = bp_format(&msg, env.received_time + 25 * 60, BpMode::Undelivered);
    assert!(!out.contains("white.rabbit"));
    let mut frozen = msg.clone();
    frozen.envelope.frozen = Some(1);
    assert!(bp_format(&frozen, 0, BpMode::All)
        .lines()
        .next()
        .unwrap()
        .ends_with("> *** frozen ***"));
}

#[test]
fn group_commit_blocking_and_async() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let options = WriterOptions {
        sync: SyncMode::PerFile,
        ..WriterOptions::default()
    };
    let writer = Arc::new(SpoolWriter::new(spool.clone(), options).unwrap());
    let gen = Arc::new(IdGenerator::new(IdFormat::Classic));

    // Many threads at once.
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (w, g, sp) = (Arc::clone(&writer), Arc::clone(&gen), spool.clone());
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for j in 0..20 {
                    let env = envelope(&g, &["a@x"]);
                    let body = format!("thread {i} msg {j}\n").into_bytes();
                    w.write_blocking(env.clone(), headers(), body).unwrap();
                    // Once write returns the message is there.
                    assert!(sp.exists(&env.id));
                    ids.push(env.id);
                }
                ids
            })
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        for id in h.join().unwrap() {
            assert!(spool.exists(&id));
            all.insert(id);
        }
    }
    assert_eq!(all.len(), 320);

    // Async writers on a runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let ids = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let (w, g) = (Arc::clone(&writer), Arc::clone(&gen));
            set.spawn(async move {
                let env = envelope(&g, &["b@x"]);
                let id = env.id;
                w.write(env, headers(), b"async\n".to_vec()).await.unwrap();
                id
            });
        }
        let mut ids = Vec::new();
        while let Some(r) = set.join_next().await {
            ids.push(r.unwrap());
        }
        ids
    });
    for id in &ids {
        let msg = spool.read(id).unwrap();
        assert_eq!(msg.body_len, 6);
    }
    assert_eq!(spool.list().unwrap().len(), 420);
    assert!(stray_files(&spool).is_empty());
    let stats = writer.stats();
    assert_eq!(stats.messages, 420);
    assert!(stats.batches <= 420);
    assert_eq!(stats.syncfs_batches, 0, "per-file mode never calls syncfs");
    // A failing message in a batch fails alone.
    let dup = envelope(&gen, &["c@x"]);
    writer
        .write_blocking(dup.clone(), headers(), vec![])
        .unwrap();
    assert!(matches!(
        writer.write_blocking(dup, headers(), vec![]),
        Err(SpoolError::Exists(_))
    ));
}

#[test]
fn syncfs_mode_works() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let writer = SpoolWriter::new(
        spool.clone(),
        WriterOptions {
            sync: SyncMode::Syncfs,
            max_wait: std::time::Duration::from_millis(1),
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let gen = IdGenerator::new(IdFormat::Long);
    let env = envelope(&gen, &["a@x"]);
    writer
        .write_blocking(env.clone(), headers(), b"hi\n".to_vec())
        .unwrap();
    assert_eq!(spool.read(&env.id).unwrap().envelope, env);
    let stats = writer.stats();
    assert_eq!((stats.batches, stats.syncfs_batches), (1, 1));
    drop(writer);
}

/// While messages are being written, every message that `list()` shows is
/// complete: its `-H` parses and its `-D` is all there. (The `-H` file is
/// renamed into place last, after both files are synced.)
#[test]
fn listed_messages_are_always_complete() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let writer = Arc::new(SpoolWriter::new(spool.clone(), WriterOptions::default()).unwrap());
    let gen = Arc::new(IdGenerator::new(IdFormat::Classic));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let body = vec![b'y'; 100_000];
    let checker = {
        let (spool, stop, len) = (spool.clone(), Arc::clone(&stop), body.len() as u64);
        std::thread::spawn(move || {
            let mut checked = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for id in spool.list().unwrap() {
                    let msg = spool.read(&id).unwrap();
                    assert_eq!(msg.body_len, len);
                    checked += 1;
                }
            }
            checked
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (w, g, b) = (Arc::clone(&writer), Arc::clone(&gen), body.clone());
            std::thread::spawn(move || {
                for _ in 0..15 {
                    w.write_blocking(envelope(&g, &["a@x"]), headers(), b.clone())
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let checked = checker.join().unwrap();
    assert!(checked > 0);
    assert_eq!(spool.list().unwrap().len(), 60);
}

#[test]
fn streamed_data_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let gen = IdGenerator::new(IdFormat::Classic);

    // Direct write.
    let env = envelope(&gen, &["a@x"]);
    let mut data = spool.create_data(&env.id).unwrap();
    for i in 0..1000 {
        writeln!(data, "line {i}").unwrap();
    }
    assert_eq!(data.id(), env.id);
    let len = data.body_len();
    assert!(!spool.exists(&env.id));
    spool.write_data(&env, &headers(), data).unwrap();
    let msg = spool.read(&env.id).unwrap();
    assert_eq!(msg.body_len, len);
    let (mut f, _) = spool.open_body(&env.id).unwrap();
    let mut body = String::new();
    f.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("line 0\n") && body.ends_with("line 999\n"));

    // Through the group-commit writer.
    let writer = SpoolWriter::new(spool.clone(), WriterOptions::default()).unwrap();
    let env2 = envelope(&gen, &["b@x"]);
    let mut data = spool.create_data(&env2.id).unwrap();
    data.write_all(b"streamed\n").unwrap();
    writer
        .write_data_blocking(env2.clone(), headers(), data)
        .unwrap();
    assert_eq!(spool.read(&env2.id).unwrap().body_len, 9);

    // Abandoned data files leave nothing behind.
    let env3 = envelope(&gen, &["c@x"]);
    let mut data = spool.create_data(&env3.id).unwrap();
    data.write_all(b"partial").unwrap();
    drop(data);
    // A data file for another id is refused.
    let data = spool.create_data(&gen.next()).unwrap();
    assert!(matches!(
        spool.write_data(&env3, &headers(), data),
        Err(SpoolError::IdMismatch { .. })
    ));
    assert!(stray_files(&spool).is_empty());
    assert_eq!(spool.list().unwrap().len(), 2);
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Spool>();
    check::<SpoolWriter>();
    check::<IdGenerator>();
    check::<MessageId>();
    check::<SpoolMessage>();
    check::<SpoolError>();
    fn check_send<T: Send>() {}
    check_send::<DataFile>();
    check_send::<MessageLock>();
}

/// A writer process killed at an arbitrary moment (SIGKILL) never leaves a
/// half-written message: every listed message reads back complete, and the
/// only debris are temporary files, which `remove_stale_temps` clears.
#[test]
fn killed_writer_leaves_only_complete_messages() {
    const CHILD: &str = "OXIM_SPOOL_KILL_CHILD_DIR";
    if let Ok(dir) = std::env::var(CHILD) {
        // Child: write messages until killed.
        let spool = Spool::open(&dir).unwrap();
        let writer = Arc::new(SpoolWriter::new(spool, WriterOptions::default()).unwrap());
        let gen = Arc::new(IdGenerator::new(IdFormat::Classic));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (w, g) = (Arc::clone(&writer), Arc::clone(&gen));
                std::thread::spawn(move || loop {
                    w.write_blocking(envelope(&g, &["a@x"]), headers(), vec![b'z'; 50_000])
                        .unwrap();
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut total = 0;
    for round in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "killed_writer_leaves_only_complete_messages",
                "--nocapture",
            ])
            .env(CHILD, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150 + 70 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        for id in spool.list().unwrap() {
            let msg = spool.read(&id).unwrap();
            assert_eq!(msg.body_len, 50_000, "{id} incomplete");
            assert_eq!(msg.envelope.recipients.len(), 1);
            total += 1;
        }
        spool.remove_stale_temps(std::time::Duration::ZERO).unwrap();
        let stray: Vec<String> = std::fs::read_dir(spool.input_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| {
                // Only complete messages remain: a -H file with its -D.
                let id = n.strip_suffix("-H").or_else(|| n.strip_suffix("-D"));
                match id.and_then(|i| i.parse::<MessageId>().ok()) {
                    Some(id) => !(spool.header_path(&id).exists() && spool.data_path(&id).exists()),
                    None => true,
                }
            })
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    }
    assert!(
        total > 0,
        "the child never wrote a message before being killed"
    );
}
