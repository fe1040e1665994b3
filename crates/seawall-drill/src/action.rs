//! Taking actions and undoing them: every fault put and toxic added is written in a ledger
//! *before* the call (a call whose answer was lost may still have taken effect), and
//! [`Actions::undo_all`] removes whatever is still in it, whatever ended the drill.

use std::sync::Mutex;

use crate::{admin::Admin, chaos::Chaos, scenario::Action};

/// How to undo one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Delete gateway fault `name`.
    Fault {
        /// The fault's name.
        name: String,
    },
    /// Remove toxic `name` from chaos proxy `proxy`.
    Toxic {
        /// The proxy.
        proxy: String,
        /// The toxic.
        name: String,
    },
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undo::Fault { name } => write!(f, "DELETE /faults/{name}"),
            Undo::Toxic { proxy, name } => write!(f, "DELETE /proxies/{proxy}/toxics/{name}"),
        }
    }
}

/// The admin and chaos clients, and the ledger of what is still to undo.
#[derive(Debug)]
pub struct Actions {
    admin: Option<Admin>,
    chaos: Option<Chaos>,
    /// (action name, undo), in the order taken.
    ledger: Mutex<Vec<(String, Undo)>>,
}

impl Actions {
    /// Actions through these clients.
    pub fn new(admin: Option<Admin>, chaos: Option<Chaos>) -> Self {
        Self {
            admin,
            chaos,
            ledger: Mutex::new(Vec::new()),
        }
    }

    fn admin(&self) -> Result<&Admin, String> {
        self.admin
            .as_ref()
            .ok_or_else(|| "no admin API in the target".to_owned())
    }

    fn chaos(&self) -> Result<&Chaos, String> {
        self.chaos
            .as_ref()
            .ok_or_else(|| "no chaos API in the target".to_owned())
    }

    fn remember(&self, action: &str, undo: Undo) {
        if let Ok(mut l) = self.ledger.lock() {
            l.push((action.to_owned(), undo));
        }
    }

    /// Takes `action`; returns what was done.
    pub async fn start(&self, action: &Action) -> Result<String, String> {
        if let Some(f) = &action.fault {
            let name = action.fault_name();
            self.remember(
                &action.name,
                Undo::Fault {
                    name: name.to_owned(),
                },
            );
            self.admin()?
                .put_fault(name, &f.spec)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(format!("PUT /faults/{name}"));
        }
        if let Some(t) = &action.toxic {
            let name = action.toxic_name();
            self.remember(
                &action.name,
                Undo::Toxic {
                    proxy: t.proxy.clone(),
                    name: name.to_owned(),
                },
            );
            self.chaos()?
                .add_toxic(name, t)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(format!(
                "POST /proxies/{}/toxics ({name}, {})",
                t.proxy, t.kind
            ));
        }
        self.admin()?.reload().await.map_err(|e| e.to_string())?;
        Ok("POST /reload".to_owned())
    }

    /// Undoes `action` now (its `for` ran out); returns what was done, if anything.
    pub async fn end(&self, action: &str) -> Vec<(Undo, Result<(), String>)> {
        let mine: Vec<Undo> = match self.ledger.lock() {
            Ok(mut l) => {
                let (mine, rest) = l.drain(..).partition(|(a, _)| a == action);
                *l = rest;
                mine.into_iter().map(|(_, u)| u).collect()
            }
            Err(_) => Vec::new(),
        };
        let mut done = Vec::new();
        for u in mine {
            let r = self.undo(&u).await;
            if r.is_err() {
                // Kept for the final undo, which tries again.
                self.remember(action, u.clone());
            }
            done.push((u, r));
        }
        done
    }

    /// Undoes everything still in the ledger, newest first.
    pub async fn undo_all(&self) -> Vec<(Undo, Result<(), String>)> {
        let all: Vec<Undo> = match self.ledger.lock() {
            Ok(mut l) => l.drain(..).rev().map(|(_, u)| u).collect(),
            Err(_) => Vec::new(),
        };
        let mut done = Vec::new();
        for u in all {
            let r = self.undo(&u).await;
            done.push((u, r));
        }
        done
    }

    async fn undo(&self, u: &Undo) -> Result<(), String> {
        match u {
            Undo::Fault { name } => self.admin()?.delete_fault(name).await,
            Undo::Toxic { proxy, name } => self.chaos()?.remove_toxic(proxy, name).await,
        }
        .map_err(|e| e.to_string())
    }
}
