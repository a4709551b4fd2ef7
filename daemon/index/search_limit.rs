//! A time limit for one query: segments reached after the deadline are not searched (their
//! part of the answer is empty) and the answer is marked partial, so a pathological query
//! costs at most about one segment past its limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::Weight;
use tantivy::{SegmentOrdinal, SegmentReader};

pub(super) struct Deadline<C> {
    inner: C,
    deadline: Instant,
    cut: AtomicBool,
}

impl<C> Deadline<C> {
    pub fn new(inner: C, deadline: Instant) -> Deadline<C> {
        Deadline {
            inner,
            deadline,
            cut: AtomicBool::new(false),
        }
    }
}

impl<C: Collector> Collector for Deadline<C> {
    type Fruit = (C::Fruit, bool);
    type Child = C::Child;

    fn for_segment(
        &self,
        ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<C::Child> {
        self.inner.for_segment(ord, segment)
    }

    fn check_schema(&self, schema: &tantivy::schema::Schema) -> tantivy::Result<()> {
        self.inner.check_schema(schema)
    }

    fn requires_scoring(&self) -> bool {
        self.inner.requires_scoring()
    }

    fn merge_fruits(
        &self,
        fruits: Vec<<C::Child as SegmentCollector>::Fruit>,
    ) -> tantivy::Result<Self::Fruit> {
        Ok((
            self.inner.merge_fruits(fruits)?,
            self.cut.load(Ordering::Relaxed),
        ))
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<<C::Child as SegmentCollector>::Fruit> {
        if Instant::now() >= self.deadline {
            self.cut.store(true, Ordering::Relaxed);
            // An untouched segment collector: this segment's empty share of the answer.
            return Ok(self.inner.for_segment(ord, segment)?.harvest());
        }
        self.inner.collect_segment(weight, ord, segment)
    }
}
