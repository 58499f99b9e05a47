//! Changing a budget: the one path every writer takes (`dowguard budgets set`, the
//! console's widget). Some fields of an edit are given, the others are kept from the
//! stored budget; the result goes through the domain's parser ([`Budget::parse`]),
//! so nothing invalid is written, and is stored with the store's optimistic lock, so
//! a change made from a stale version is refused.
//!
//! Two steps, so that a caller can learn who it is between them (the CLI asks STS
//! only once the input is known to be valid): [`prepare`] reads and validates,
//! [`commit`] writes.

use chrono::{DateTime, Utc};
use dowguard_domain::{Budget, BudgetError, BudgetId, BudgetSpec, Floors};

use crate::ports::{BudgetStore, PortError, Versioned};

/// The fields of a budget to set; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetEdit {
    /// The budget's name.
    pub id: String,
    /// `account`, `tag:KEY=VALUE` or a target.
    pub scope: Option<String>,
    /// `day` or `month`.
    pub period: Option<String>,
    /// Dollars, e.g. `240` or `$1,200.50`.
    pub amount: Option<String>,
    /// Burn-rate multiples, a watch level then the throttle levels.
    pub thresholds: Option<Vec<String>>,
    /// `enforce` or `dry-run`.
    pub mode: Option<String>,
    /// Who owns the budget.
    pub owner: Option<String>,
    /// An SNS topic ARN; `none` removes it.
    pub topic: Option<String>,
    /// The least reserved concurrency on covered functions.
    pub floor_concurrency: Option<u32>,
    /// The least rate on stages and plans.
    pub floor_rate: Option<u32>,
    /// The least burst on stages and plans.
    pub floor_burst: Option<u32>,
    /// Watch and report only.
    pub protected: Option<bool>,
    /// The version the change was made from (`Some(0)`: the budget must not exist).
    pub if_version: Option<u64>,
}

/// Why an edit was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// A field is invalid.
    #[error("invalid budget: {0}")]
    Invalid(BudgetError),
    /// A new budget lacks a field it needs.
    #[error("invalid budget: budget field `{field}`: a new budget needs one ({example})")]
    Missing {
        /// The field.
        field: &'static str,
        /// An example value.
        example: &'static str,
    },
    /// A budget of that name is stored but cannot be read.
    #[error("budget {id} is stored but unreadable ({why}): fix or remove that item in the table first")]
    Unreadable {
        /// The budget.
        id: BudgetId,
        /// What is wrong with the item.
        why: String,
    },
    /// The edit was for a new budget, and one exists.
    #[error("budget {id} already exists (version {version})")]
    Exists {
        /// The budget.
        id: BudgetId,
        /// Its stored version.
        version: u64,
    },
    /// The edit was made from a version of a budget that no longer exists.
    #[error("budget {id} does not exist, but the change was made from version {from}: someone removed it")]
    Removed {
        /// The budget.
        id: BudgetId,
        /// The version the change was made from.
        from: u64,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(PortError),
}

/// What [`prepare`] found to do.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// The stored budget already says this (and no version was asked for).
    Unchanged(Versioned<Budget>),
    /// A write to make.
    Write {
        /// The budget to store.
        budget: Budget,
        /// The version the store must still hold (`None`: must not exist).
        expected: Option<u64>,
        /// Whether it replaces a stored budget.
        existed: bool,
    },
}

/// The stored budget named `id`, if any; a stored one that cannot be read is an
/// error, never taken for a missing one (and overwritten as new).
///
/// # Errors
///
/// [`EditError::Store`] when the store fails, [`EditError::Unreadable`].
pub async fn find<S: BudgetStore>(store: &S, id: &BudgetId) -> Result<Option<Versioned<Budget>>, EditError> {
    let listed = store.list_budgets().await.map_err(EditError::Store)?;
    if let Some(found) = listed.items.into_iter().find(|b| b.value.id == *id) {
        return Ok(Some(found));
    }
    let key = format!("B#{id}");
    if let Some(item) = listed.unreadable.iter().find(|u| u.key.ends_with(&key)) {
        return Err(EditError::Unreadable {
            id: id.clone(),
            why: item.why.clone(),
        });
    }
    Ok(None)
}

fn blank(id: &BudgetId, edit: &BudgetEdit) -> Result<BudgetSpec, EditError> {
    let missing = [
        (
            "scope",
            edit.scope.is_none(),
            "account, tag:KEY=VALUE or a target such as function:NAME",
        ),
        ("period", edit.period.is_none(), "day or month"),
        ("amount", edit.amount.is_none(), "dollars, e.g. 240"),
        (
            "owner",
            edit.owner.is_none(),
            "a person or team, e.g. finance@example.com",
        ),
    ];
    if let Some((field, _, example)) = missing.into_iter().find(|(_, absent, _)| *absent) {
        return Err(EditError::Missing { field, example });
    }
    Ok(BudgetSpec {
        id: id.to_string(),
        scope: String::new(),
        period: String::new(),
        amount: String::new(),
        thresholds: vec![],
        mode: String::new(),
        owner: String::new(),
        topic: None,
        floors: Floors::default(),
        protected: false,
    })
}

/// `spec` with the edit's given fields set.
fn apply(mut spec: BudgetSpec, edit: &BudgetEdit) -> BudgetSpec {
    let set = |field: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            field.clone_from(v);
        }
    };
    set(&mut spec.scope, &edit.scope);
    set(&mut spec.period, &edit.period);
    set(&mut spec.amount, &edit.amount);
    set(&mut spec.mode, &edit.mode);
    set(&mut spec.owner, &edit.owner);
    if let Some(v) = &edit.thresholds {
        spec.thresholds.clone_from(v);
    }
    if let Some(v) = &edit.topic {
        spec.topic = (!v.eq_ignore_ascii_case("none")).then(|| v.clone());
    }
    if let Some(v) = edit.floor_concurrency {
        spec.floors.concurrency = v;
    }
    if let Some(v) = edit.floor_rate {
        spec.floors.rate = v;
    }
    if let Some(v) = edit.floor_burst {
        spec.floors.burst = v;
    }
    if let Some(v) = edit.protected {
        spec.protected = v;
    }
    spec
}

/// Reads the stored budget and validates the edit against it: what to write, or
/// why nothing may be.
///
/// # Errors
///
/// [`EditError`]: an invalid or missing field, an unreadable stored budget, a
/// version that does not match what is stored, or a failing store.
pub async fn prepare<S: BudgetStore>(store: &S, edit: &BudgetEdit) -> Result<Prepared, EditError> {
    let id = BudgetId::parse(&edit.id).map_err(EditError::Invalid)?;
    let existing = find(store, &id).await?;
    let spec = match &existing {
        Some(v) => BudgetSpec::from(v.value.clone()),
        None => blank(&id, edit)?,
    };
    let budget = Budget::parse(apply(spec, edit)).map_err(EditError::Invalid)?;
    let expected = match (&existing, edit.if_version) {
        (Some(v), Some(0)) => {
            return Err(EditError::Exists {
                id,
                version: v.version,
            });
        }
        (Some(v), None) => Some(v.version),
        (Some(_), Some(n)) => Some(n),
        (None, None | Some(0)) => None,
        (None, Some(n)) => return Err(EditError::Removed { id, from: n }),
    };
    if let Some(v) = existing
        .as_ref()
        .filter(|v| v.value == budget && edit.if_version.is_none())
    {
        return Ok(Prepared::Unchanged(v.clone()));
    }
    Ok(Prepared::Write {
        budget,
        expected,
        existed: existing.is_some(),
    })
}

/// Writes a prepared budget as `actor` at `at`, with the store's optimistic lock:
/// the stored budget with its new version.
///
/// # Errors
///
/// The store's [`PortError`]; a [`crate::FailureKind::Conflict`] when someone
/// changed the budget since it was read (nothing was written).
pub async fn commit<S: BudgetStore>(
    store: &S,
    budget: Budget,
    expected: Option<u64>,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Versioned<Budget>, PortError> {
    let version = store.put_budget(&budget, expected, actor, at).await?;
    Ok(Versioned {
        value: budget,
        version,
    })
}
