//! The directory object store: the on-disk layout, key rules and crash leftovers.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use shardline_core::Error;
use shardline_core::ports::ObjectStore;
use shardline_local::DirObjectStore;

#[tokio::test]
async fn objects_are_plain_files_at_bucket_slash_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjectStore::open(&dir.path().join("s3")).unwrap();
    store.ensure_bucket("lake").await.unwrap();
    store
        .put(
            "lake",
            "metrics/year=2026/x.parquet",
            Bytes::from_static(b"PAR1"),
            "x",
        )
        .await
        .unwrap();
    let path = dir.path().join("s3/lake/metrics/year=2026/x.parquet");
    assert_eq!(std::fs::read(&path).unwrap(), b"PAR1");
    assert_eq!(
        store.local_path("lake", "metrics/year=2026/x.parquet"),
        Some(path)
    );
    assert_eq!(store.local_path("lake", "../escape"), None);
    // No temporary files are left behind after a put.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("s3/lake/metrics/year=2026"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["x.parquet"]);
    // Deleting the last object prunes the empty directories, not the bucket.
    store
        .delete("lake", "metrics/year=2026/x.parquet")
        .await
        .unwrap();
    assert!(!dir.path().join("s3/lake/metrics").exists());
    assert!(dir.path().join("s3/lake").is_dir());
}

#[tokio::test]
async fn temp_files_of_interrupted_puts_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    let store = DirObjectStore::open(&root).unwrap();
    store.ensure_bucket("lake").await.unwrap();
    for i in 0..3 {
        store
            .put("lake", &format!("a/{i}"), Bytes::from(vec![i; 64]), "x")
            .await
            .unwrap();
    }
    let temp = root.join(".shardline-tmp");
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "puts leave no temp file"
    );
    // A crash interrupted two puts: their temporary files stay behind.
    std::fs::write(temp.join(".shardline-tmp-1f2e"), b"partial").unwrap();
    std::fs::write(temp.join(".shardline-tmp-3d4c"), vec![7; 4096]).unwrap();
    drop(store);
    let store = DirObjectStore::open(&root).unwrap();
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "open removed them"
    );
    for i in 0..3 {
        let got = store.get("lake", &format!("a/{i}")).await.unwrap();
        assert_eq!(got, Some(Bytes::from(vec![i; 64])), "object {i} intact");
    }
}

#[tokio::test]
async fn temp_files_earlier_versions_left_beside_objects_are_swept_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    // A tree as earlier versions left it: objects with a temp file beside them, no temp dir.
    std::fs::create_dir_all(root.join("lake/m/year=2026")).unwrap();
    std::fs::write(root.join("lake/m/year=2026/x.parquet"), b"PAR1").unwrap();
    std::fs::write(root.join("lake/m/year=2026/.shardline-tmp-99aa"), b"part").unwrap();
    std::fs::write(root.join("lake/.shardline-tmp-77bb"), b"part").unwrap();
    let store = DirObjectStore::open(&root).unwrap();
    assert!(!root.join("lake/m/year=2026/.shardline-tmp-99aa").exists());
    assert!(!root.join("lake/.shardline-tmp-77bb").exists());
    assert!(root.join(".shardline-tmp").is_dir());
    let keys: Vec<String> = store
        .list("lake", "")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, vec!["m/year=2026/x.parquet"]);
}

#[tokio::test]
async fn temp_files_left_by_a_crash_are_never_listed_or_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjectStore::open(dir.path()).unwrap();
    store.ensure_bucket("lake").await.unwrap();
    store
        .put("lake", "a/b", Bytes::from_static(b"whole"), "x")
        .await
        .unwrap();
    // Left by an earlier version while this store is open.
    std::fs::write(
        dir.path().join("lake/a/.shardline-tmp-0123abcd"),
        b"partial",
    )
    .unwrap();
    let keys: Vec<String> = store
        .list("lake", "")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, vec!["a/b"]);
    let err = store
        .get("lake", "a/.shardline-tmp-0123abcd")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

#[tokio::test]
async fn bad_keys_and_buckets_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirObjectStore::open(dir.path()).unwrap();
    store.ensure_bucket("lake").await.unwrap();
    let cases = [
        ("../etc/passwd", "'..'"),
        ("/abs/path", "must not start with '/'"),
        ("a//b", "empty path segment"),
        ("a/b/", "empty path segment"),
        ("", "1 to 1024 bytes"),
        ("a/./b", "'.' and '..'"),
    ];
    for (key, why) in cases {
        let err = store.put("lake", key, Bytes::new(), "x").await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidArgument(_)), "{key:?}: {err:?}");
        assert!(
            msg.contains(why) && msg.contains(&format!("{key:?}")),
            "{key:?}: {msg}"
        );
    }
    let err = store.ensure_bucket("Bad_Bucket").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("bucket name \"Bad_Bucket\" is invalid"),
        "{err}"
    );
    let err = store
        .put("nobucket", "k", Bytes::new(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("ensure_bucket"), "{err}");
    // Nothing escaped the root.
    assert!(!dir.path().parent().unwrap().join("etc").exists());
}
