//! `use_huge_page_cache` in a process of its own (SQLite takes it only before its first
//! connection): stores work the same with the page cache in the region and beyond it.

use learnloop_store::use_huge_page_cache;

#[test]
fn a_store_reads_back_what_it_wrote_through_the_region_and_past_it() {
    // 4 MiB: a few dozen 64 KiB pages, far fewer than the table below needs.
    // SAFETY: the first statement of this test binary's only test: no other thread uses SQLite.
    assert!(
        unsafe { use_huge_page_cache(4 << 20) },
        "accepted before any connection"
    );
    let dir = std::env::temp_dir().join(format!("learnloop-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let mut conn = learnloop_store::open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    let text = |k: i64| format!("{k:08}-").repeat(40);
    {
        let mut insert = tx.prepare("INSERT INTO t VALUES (?1, ?2)").unwrap();
        for k in 0..40_000 {
            insert.execute(rusqlite::params![k, text(k)]).unwrap();
        }
    }
    tx.commit().unwrap();
    drop(conn);
    let conn = learnloop_store::open(&path).unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    assert!(
        pages > 64,
        "the table spans more pages than the region holds ({pages})"
    );
    let mut stmt = conn.prepare("SELECT k, v FROM t ORDER BY k").unwrap();
    let mut n = 0;
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (k, v) = row.unwrap();
        assert_eq!((k, v), (n, text(n)));
        n += 1;
    }
    assert_eq!(n, 40_000);
    // SAFETY: as above (this thread is the only one).
    assert!(
        !unsafe { use_huge_page_cache(4 << 20) },
        "refused once SQLite is initialized"
    );
    drop(stmt);
    drop(conn);
    std::fs::remove_dir_all(&dir).unwrap();
}
