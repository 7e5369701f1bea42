//! The commit log (`SyncMode::Journal`): one append and one fdatasync per
//! group; what a crash leaves is replayed by `commitlog::recover`.

use oxim_spool::*;
use std::path::PathBuf;
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
    vec![Header::new("Subject: test\n")]
}

fn journal_writer(spool: &Spool) -> SpoolWriter {
    SpoolWriter::new(
        spool.clone(),
        WriterOptions {
            sync: SyncMode::Journal,
            ..WriterOptions::default()
        },
    )
    .unwrap()
}

fn segments(spool: &Spool) -> Vec<PathBuf> {
    std::fs::read_dir(spool.root().join(commitlog::DIR_NAME))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The writer's segment copied under another name: what the disk holds of
/// it if the process died now (the copy has no owner, so it is replayed).
fn crash_copy(spool: &Spool) -> PathBuf {
    let segs = segments(spool);
    assert_eq!(segs.len(), 1, "{segs:?}");
    let copy = segs[0].with_file_name("0000000001-00000000");
    std::fs::copy(&segs[0], &copy).unwrap();
    copy
}

#[test]
fn groups_cost_one_log_sync_and_no_file_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let writer = Arc::new(journal_writer(&spool));
    let gen = Arc::new(IdGenerator::new(IdFormat::Classic));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (w, g) = (Arc::clone(&writer), Arc::clone(&gen));
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let env = envelope(&g, &["a@x"]);
                    w.write_blocking(env, headers(), b"body\n".to_vec())
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(spool.list().unwrap().len(), 200);
    let st = writer.stats();
    assert_eq!(st.messages, 200);
    assert_eq!(st.journal_batches, st.batches);
    assert_eq!((st.fdatasyncs, st.dir_fsyncs, st.syncfs_batches), (0, 0, 0));
    assert_eq!(segments(&spool).len(), 1);
    // Closing syncs the 200 messages' files once and deletes the segment.
    writer.close_journal();
    let st = writer.stats();
    assert_eq!(st.fdatasyncs, 400);
    assert!(segments(&spool).is_empty());
    // Later writes sync their own files.
    let env = envelope(&gen, &["b@x"]);
    writer
        .write_blocking(env.clone(), headers(), b"late\n".to_vec())
        .unwrap();
    assert_eq!(spool.read(&env.id).unwrap().body_len, 5);
    assert!(segments(&spool).is_empty());
}

#[test]
fn recover_restores_lost_files_and_skips_removed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let writer = journal_writer(&spool);
    let gen = IdGenerator::new(IdFormat::Classic);
    let envs: Vec<Envelope> = (0..6).map(|_| envelope(&gen, &["a@x"])).collect();
    for (i, env) in envs.iter().enumerate() {
        let body = format!("body {i}\n").into_bytes();
        writer.write_blocking(env.clone(), headers(), body).unwrap();
    }
    let copy = crash_copy(&spool);
    // Message 0 delivered and removed: noted in every segment, the copy
    // included.
    spool.remove(&envs[0].id).unwrap();
    // The writer goes away cleanly (its own segment is deleted) ...
    drop(writer);
    assert_eq!(segments(&spool), vec![copy.clone()]);
    // ... then the files a power failure could lose are damaged.
    std::fs::remove_file(spool.header_path(&envs[1].id)).unwrap();
    std::fs::remove_file(spool.data_path(&envs[1].id)).unwrap();
    std::fs::write(spool.header_path(&envs[2].id), b"").unwrap();
    std::fs::remove_file(spool.data_path(&envs[3].id)).unwrap();
    std::fs::write(spool.data_path(&envs[4].id), b"garbage").unwrap();
    // A torn last append.
    let whole = std::fs::metadata(&copy).unwrap().len();
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.extend_from_slice(b"OXCLM\x40\x00\x00\x00\x01\x02\x03\x04partial");
    std::fs::write(&copy, &bytes).unwrap();

    let r = commitlog::recover(&spool).unwrap();
    assert_eq!(r.segments, 1);
    let mut restored = r.restored.clone();
    restored.sort();
    let mut want: Vec<MessageId> = envs[1..5].iter().map(|e| e.id).collect();
    want.sort();
    assert_eq!(restored, want);
    assert_eq!(r.synced, 1, "message 5 was intact");
    assert_eq!(r.skipped_bytes, bytes.len() as u64 - whole);
    assert!(segments(&spool).is_empty());
    assert!(!spool.exists(&envs[0].id), "a removed message came back");
    for (i, env) in envs.iter().enumerate().skip(1) {
        let msg = spool.read(&env.id).unwrap();
        assert_eq!(msg.envelope, *env);
        let body = std::fs::read(spool.data_path(&env.id)).unwrap();
        assert_eq!(body, format!("{}-D\nbody {i}\n", env.id).into_bytes());
    }
    let names: Vec<String> = std::fs::read_dir(spool.input_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // Nothing left to do the second time.
    assert_eq!(commitlog::recover(&spool).unwrap(), Default::default());
}

#[test]
fn a_live_segment_is_left_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let writer = journal_writer(&spool);
    let gen = IdGenerator::new(IdFormat::Classic);
    let env = envelope(&gen, &["a@x"]);
    writer
        .write_blocking(env.clone(), headers(), b"x\n".to_vec())
        .unwrap();
    std::fs::remove_file(spool.header_path(&env.id)).unwrap();
    // The writer holds its segment's lock: a replay now must not touch it.
    assert_eq!(commitlog::recover(&spool).unwrap(), Default::default());
    assert_eq!(segments(&spool).len(), 1);
    assert!(!spool.exists(&env.id));
}
