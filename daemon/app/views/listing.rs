//! A short-lived copy of each reviewer's full handoff list, so a queue page polled by many
//! tabs, or by the live update after every event, does not rebuild a list of thousands each
//! time. A copy serves only while no event was announced since it was made, and for at most
//! `FRESH`: a change that raced the copy is seen within that bound at worst.

use crate::app::views::query::{StateFilter, Summary};
use crate::app::App;
use crate::auth::Actor;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FRESH: Duration = Duration::from_millis(500);
/// Copies kept at most (one per reviewer name); past it the table starts over.
const MAX_COPIES: usize = 256;

#[derive(Default)]
pub(in crate::app) struct Listings {
    /// Bumped by every announced event.
    generation: AtomicU64,
    copies: Mutex<HashMap<String, Copy>>,
}

struct Copy {
    generation: u64,
    made: Instant,
    list: Arc<Vec<Summary>>,
}

impl Listings {
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

fn key_of(actor: &Actor) -> String {
    match actor {
        Actor::Reviewer { name, roles } => format!("r:{name}:{}", roles.join(",")),
        Actor::Agent { name, workspaces } => format!("a:{name}:{}", workspaces.join(",")),
    }
}

impl App {
    /// Every handoff the actor may see (as `list(All)`), shared.
    pub fn list_all_shared(&self, actor: &Actor) -> Arc<Vec<Summary>> {
        let listings = &self.inner.views.listings;
        let generation = listings.generation.load(Ordering::Acquire);
        let key = key_of(actor);
        {
            let copies = listings.copies.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = copies.get(&key) {
                if c.generation == generation && c.made.elapsed() < FRESH {
                    return Arc::clone(&c.list);
                }
            }
        }
        let list = Arc::new(self.list(StateFilter::All, actor));
        let mut copies = listings.copies.lock().unwrap_or_else(|e| e.into_inner());
        if copies.len() >= MAX_COPIES {
            copies.clear();
        }
        let copy = Copy {
            generation,
            made: Instant::now(),
            list: Arc::clone(&list),
        };
        copies.insert(key, copy);
        list
    }
}
