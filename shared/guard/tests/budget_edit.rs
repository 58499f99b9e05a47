//! The one path every budget writer takes: validation against the stored budget,
//! then the store's optimistic lock.

use chrono::{TimeZone, Utc};
use dowguard_guard::FailureKind;
use dowguard_guard::budget_edit::{BudgetEdit, EditError, Prepared, commit, prepare};
use dowguard_guard::memory::MemoryStore;

fn new_budget() -> BudgetEdit {
    BudgetEdit {
        id: "checkout-daily".into(),
        scope: Some("function:checkout".into()),
        period: Some("day".into()),
        amount: Some("240".into()),
        owner: Some("finance@example.com".into()),
        ..BudgetEdit::default()
    }
}

async fn write(store: &MemoryStore, edit: &BudgetEdit) -> Result<u64, String> {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .unwrap_or_default();
    match prepare(store, edit).await.map_err(|e| e.to_string())? {
        Prepared::Unchanged(v) => Ok(v.version),
        Prepared::Write { budget, expected, .. } => commit(store, budget, expected, "finance", at)
            .await
            .map(|v| v.version)
            .map_err(|e| e.to_string()),
    }
}

#[tokio::test]
async fn a_budget_is_created_changed_kept_when_unchanged_and_refused_when_stale() {
    let store = MemoryStore::default();
    assert_eq!(write(&store, &new_budget()).await, Ok(1));
    let amount = |a: &str, v: Option<u64>| BudgetEdit {
        id: "checkout-daily".into(),
        amount: Some(a.into()),
        if_version: v,
        ..BudgetEdit::default()
    };
    assert_eq!(write(&store, &amount("300", Some(1))).await, Ok(2));
    assert!(
        matches!(prepare(&store, &amount("300", None)).await, Ok(Prepared::Unchanged(v)) if v.version == 2)
    );
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let Ok(Prepared::Write { budget, expected, .. }) = prepare(&store, &amount("400", Some(1))).await else {
        panic!("a change from version 1 is prepared");
    };
    let stale = commit(&store, budget, expected, "finance", at).await;
    assert!(stale.is_err_and(|e| e.kind == FailureKind::Conflict));
}

#[tokio::test]
async fn invalid_missing_existing_and_removed_budgets_are_refused_with_their_field() {
    let store = MemoryStore::default();
    let mut bad = new_budget();
    bad.amount = Some("lots".into());
    assert!(matches!(prepare(&store, &bad).await, Err(EditError::Invalid(e)) if e.field == "amount"));
    let mut no_owner = new_budget();
    no_owner.owner = None;
    assert!(matches!(
        prepare(&store, &no_owner).await,
        Err(EditError::Missing { field: "owner", .. })
    ));
    let mut gone = new_budget();
    gone.if_version = Some(3);
    assert!(matches!(
        prepare(&store, &gone).await,
        Err(EditError::Removed { from: 3, .. })
    ));
    assert_eq!(write(&store, &new_budget()).await, Ok(1));
    let mut again = new_budget();
    again.if_version = Some(0);
    assert!(matches!(
        prepare(&store, &again).await,
        Err(EditError::Exists { version: 1, .. })
    ));
}
