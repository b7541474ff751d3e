//! History across an upgrade that starts a logged table over (`--drop-data`): what was there
//! before belongs to the old layout, so reads, past reads and restores start after it.

mod common;

use common::*;
use interstice::core::storage::history::{self, HistoryError, HistoryQuery};
use interstice::{Database, EngineConfig, Modules, Storage, StorageConfig};

fn add(modules: &mut Modules, db: &mut Database, storage: &mut Storage, name: &str) -> u64 {
    let handle = modules.reducer("versioned", "add").unwrap();
    let mut args = Vec::new();
    interstice::abi::codec::write_str(&mut args, name);
    modules.call_reducer(db, handle, &args).unwrap();
    storage.commit(db).unwrap();
    db.journal_mut().unwrap().next_seq() - 1
}

fn names(modules: &mut Modules, db: &mut Database) -> Vec<String> {
    let names = modules
        .call_query(db, modules.query("versioned", "names").unwrap(), &[])
        .unwrap();
    interstice::IntersticeType::from_bytes(&names).unwrap()
}

#[test]
fn a_table_started_over_by_an_upgrade_has_its_history_from_then_on() {
    let project = tempfile::tempdir().unwrap();
    let v1 = versioned_module(project.path(), "", "");
    // A new field that is not an Option: the rows cannot carry over.
    let v2 = versioned_module(project.path(), "    pub weight: u64,\n", ", weight: 1");
    let dir = tempfile::tempdir().unwrap();
    let mut modules = Modules::new(EngineConfig::default()).unwrap();
    let mut db = Database::default();
    let (mut storage, _) =
        Storage::open(StorageConfig::new(dir.path()), &mut modules, &mut db).unwrap();
    storage.load_module(&mut modules, &mut db, &v1).unwrap();
    let before = add(&mut modules, &mut db, &mut storage, "a");
    add(&mut modules, &mut db, &mut storage, "b");
    storage
        .upgrade_module(&mut modules, &mut db, &v2, true)
        .expect("upgraded, dropping the rows");
    let after = add(&mut modules, &mut db, &mut storage, "c");
    assert_eq!(names(&mut modules, &mut db), ["c"]);

    // The table's history is the new table's.
    let query = HistoryQuery {
        module: "versioned",
        table: "item",
        key: None,
        from_seq: 0,
        to_seq: u64::MAX,
        limit: 100,
    };
    let versions = storage
        .history(&db, &query)
        .expect("history after the upgrade");
    let seqs: Vec<u64> = versions.iter().map(|v| v.seq).collect();
    assert_eq!(seqs, [after], "only the version made since");
    // A past point after the upgrade reads the new table; one before it is refused.
    let now = storage
        .table_as_of(&db, "versioned", "item", after)
        .expect("as of the last add");
    assert_eq!(now.len(), 1);
    match storage.table_as_of(&db, "versioned", "item", before) {
        Err(e @ HistoryError::StartedOver { .. }) => {
            assert!(e.to_string().contains("started over"), "{e}")
        }
        other => panic!("a point before the upgrade: {other:?}"),
    }
    drop(storage);

    // A restore after the upgrade holds the new table only, and starts.
    let target = tempfile::tempdir().unwrap();
    let restored_into = target.path().join("node");
    let schemas: Vec<_> = modules.schemas().map(|s| (**s).clone()).collect();
    // One before it held rows today's code cannot hold: refused, saying why.
    let too_early = history::restore(
        dir.path(),
        &history::logged_tables_of(&schemas),
        before,
        &target.path().join("early"),
    )
    .expect_err("a point before the upgrade");
    assert!(
        too_early.to_string().contains("started over"),
        "{too_early}"
    );
    history::restore(
        dir.path(),
        &history::logged_tables_of(&schemas),
        after,
        &restored_into,
    )
    .expect("restored");
    let mut modules = Modules::new(EngineConfig::default()).unwrap();
    let mut db = Database::default();
    let _opened = Storage::open(StorageConfig::new(&restored_into), &mut modules, &mut db)
        .expect("the restored node opens");
    assert_eq!(names(&mut modules, &mut db), ["c"]);
}
